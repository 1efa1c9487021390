"""Fixtures of the reliability tests: bad-input builders, the CLI and the web API.

The bad-input corpus (``test_bad_inputs*.py``) builds every bad file from real bytes
(a real TIFF cut in half, a TIFF whose header declares 10^10 pixels, ...) with the
:class:`BadFiles` builder, runs it through the real pipeline and checks what a user
sees: the CLI's exit code and one-line message (:func:`cli` captures them, as the
``plateseg`` console script runs them), the web API's JSON error, and the run's
failures in the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from fastapi.testclient import TestClient
from PIL import Image

from plateseg.cli import main
from plateseg.settings import Settings
from plateseg.web import WebSettings, create_app

#: Access token of the web API in these tests.
TOKEN = "reliability-token-0123456789"


class BadFiles:
    """Builds image files, good and bad, as bytes.

    Every method returns the bytes of one file; arrays are ``(Y, X)`` unless noted.
    """

    @staticmethod
    def tiff(array: np.ndarray, **options: object) -> bytes:
        """An uncompressed TIFF of ``array`` (``(Y, X)``, ``(Y, X, 3)`` or ``(Z, Y, X)``)."""
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, array, **options)  # type: ignore[arg-type]
        return buffer.getvalue()

    @staticmethod
    def png(array: np.ndarray) -> bytes:
        """A PNG of a ``(Y, X)`` uint8/uint16 array."""
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    def truncated_tiff(self, array: np.ndarray) -> bytes:
        """A real TIFF cut in half (a copy interrupted mid-transfer)."""
        data = self.tiff(array)
        return data[: len(data) // 2]

    @staticmethod
    def tiff_bomb(tmp: Path, side: int = 100_000) -> bytes:
        """A 300-byte TIFF whose header declares ``side`` x ``side`` pixels.

        A real 64x64 zlib TIFF with its ImageWidth/ImageLength tags overwritten:
        decoding it would allocate ``side**2`` bytes.
        """
        path = tmp / "bomb.tif"
        tifffile.imwrite(path, np.zeros((64, 64), np.uint8), compression="zlib")
        with tifffile.TiffFile(path, mode="r+b") as tif:
            tags = tif.pages[0].tags
            tags["ImageWidth"].overwrite(side)
            tags["ImageLength"].overwrite(side)
        return path.read_bytes()

    @staticmethod
    def png_bomb(side: int = 100_000) -> bytes:
        """A valid PNG header declaring ``side`` x ``side`` grey pixels, with a tiny IDAT."""

        def chunk(kind: bytes, data: bytes) -> bytes:
            crc = zlib.crc32(kind + data) & 0xFFFFFFFF
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

        header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
        body = zlib.compress(b"\x00" * (side + 1) * 4, 9)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", body)
            + chunk(b"IEND", b"")
        )


@pytest.fixture(scope="session")
def bad_files() -> BadFiles:
    """The builder of good and bad image files."""
    return BadFiles()


@dataclass(frozen=True)
class CliOutcome:
    """What a user of ``plateseg`` sees: exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        """The non-empty lines of stderr."""
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(args: list[str]) -> CliOutcome:
    """Run ``plateseg ARGS`` in this process exactly as the console script does.

    :func:`plateseg.cli.main` maps every error to an exit code and a line on stderr;
    both consoles write to ``sys.stdout`` / ``sys.stderr`` at print time, so
    redirecting them captures everything a terminal would show.
    """
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code
    return CliOutcome(int(code) if isinstance(code, int) else 1, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def cli() -> Callable[[list[str]], CliOutcome]:
    """``cli(["run", "EXP"])`` → :class:`CliOutcome` (see :func:`run_cli`)."""
    return run_cli


def run_console_script(args: list[str], home: Path) -> CliOutcome:
    """Run the installed ``plateseg`` script in a new process with ``PLATESEG_HOME=home``.

    Unlike :func:`run_cli` this also captures what the engine's worker processes print,
    so it shows everything a user's terminal would. ``PLATESEG_*`` variables of the test
    environment are dropped; retry waits are off.
    """
    script = Path(sys.executable).with_name("plateseg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATESEG_")}
    env.update({"PLATESEG_HOME": str(home), "PLATESEG_TIME_SCALE": "0"})
    done = subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    return CliOutcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="session")
def console_script() -> Callable[[list[str], Path], CliOutcome]:
    """``console_script(["run", "EXP"], home)`` → :class:`CliOutcome` (a real process)."""
    return run_console_script


#: ``once(name, build)``: see :func:`once`.
Once = Callable[[str, Callable[[Path], dict[str, Any]]], tuple[Path, dict[str, Any]]]


@pytest.fixture(scope="session")
def once(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Once:
    """Run an expensive setup once per test session, even across xdist workers.

    ``once(name, build)`` calls ``build(folder)`` in the first process to ask, under a
    file lock, and stores the JSON-able dict it returns; every process gets
    ``(folder, result)``. Tests of one module may land on both workers (``-n 2``), and
    a real run over the corpus is the expensive part: this keeps it to one run.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent

    def run_once(name: str, build: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
        folder = shared / f"once-{name}"
        done = shared / f"once-{name}.json"
        with open(shared / f"once-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not done.exists():
                folder.mkdir(exist_ok=True)
                done.write_text(json.dumps(build(folder)), encoding="utf-8")
        result: dict[str, Any] = json.loads(done.read_text(encoding="utf-8"))
        return folder, result

    return run_once


def home_settings(home: Path) -> Settings:
    """Settings of a fresh home: no retry waits, two engine workers."""
    return Settings(home=home, time_scale=0.0, workers=2)


@pytest.fixture
def web_client(settings: Settings) -> Iterator[TestClient]:
    """The web API on the test's settings (one engine worker: the runs here are tiny),
    authenticated like a script (bearer token)."""
    one_worker = settings.model_copy(update={"workers": 1})
    app = create_app(one_worker, WebSettings(web_token=TOKEN, web_secret="s" * 32))
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client
