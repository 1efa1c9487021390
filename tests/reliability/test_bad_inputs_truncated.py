"""Interrupted copies and oversized files through ``plateseg run``, as a user runs it.

The issue: a TIFF of the right size whose tail is zeros (a pre-allocated copy that was
interrupted) was segmented as "ok" with 30 nuclei instead of 81, and a 3 GB file named
``.tif`` took 3.3 GB of memory. ONE run of the installed console script (its own
process, one engine worker) over experiment TRUNC checks that each is now a per-image
error naming the file and what is wrong, that the good fields and an all-black field
are still segmented, and that nobody sees a traceback.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from plateseg.db.engine import get_engine
from plateseg.demo import write_demo_experiment
from plateseg.imaging import read_image
from plateseg.results import FailureRow, ImageRow, image_table, run_failures
from plateseg.settings import use_settings
from plateseg.store import LocalStore
from tests.reliability.conftest import BadFiles, CliOutcome, Once, home_settings

pytestmark = pytest.mark.xdist_group("bad_inputs")

EXPERIMENT = "TRUNC"
RUN_ID = "truncated"
SIDE = 256


def key(well: str, channel: str = "w1") -> str:
    return f"experiments/{EXPERIMENT}/P1/P1_{well}_s1_{channel}.tif"


def zero_tail(data: bytes, kept: float) -> bytes:
    """The file a pre-allocated copy leaves when it is interrupted after ``kept`` of it."""
    cut = int(len(data) * kept)
    return data[:cut] + bytes(len(data) - cut)


def tiff(array: np.ndarray, **options: Any) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack", **options)
    return buffer.getvalue()


@dataclass(frozen=True)
class Bad:
    well: str
    error: str
    cause: str


#: Per-image errors, by kind: the well, the error class and words of the cause.
BAD = {
    "zero-filled uncompressed TIFF (the issue's case)": Bad(
        "B01", "ImageReadError", "are all zero while the rows above have no zero pixel"
    ),
    "zero-filled Deflate TIFF": Bad("B02", "ImageReadError", "looks like an interrupted copy"),
    "zero-filled PackBits TIFF": Bad(
        "B03", "ImageReadError", "which are all zero (compressed image data never is)"
    ),
    "TIFF cut short": Bad("B04", "ImageReadError", "truncated TIFF: the file is"),
    "3 GB file named .tif": Bad("B05", "ImageShapeError", "the file is 3.00 GB, more than an"),
}


def _write(store: LocalStore) -> None:
    write_demo_experiment(store, EXPERIMENT, size=SIDE, fields=1, wells=["A01", "A12"])
    demo = store.get_bytes(key("A01"))  # Deflate-compressed, as the demo writes it
    nuclei = read_image(demo, "w1")
    w2 = store.get_bytes(key("A01", "w2"))
    files = {
        "B01": zero_tail(tiff(nuclei), 0.45),
        "B02": zero_tail(demo, 0.5),
        "B03": zero_tail(tiff(nuclei, compression="packbits", rowsperstrip=32), 0.5),
        "B04": tiff(nuclei)[: len(tiff(nuclei)) // 2],
        "B05": tiff(nuclei),
        "C01": BadFiles.tiff(np.zeros_like(nuclei)),  # all black: fine
    }
    for well, data in files.items():
        store.put_bytes(key(well), data)
        store.put_bytes(key(well, "w2"), w2)
    with open(store.root / key("B05"), "r+b") as handle:  # sparse: no 3 GB on the disk
        handle.truncate(3 * 10**9)


@dataclass(frozen=True)
class TruncRun:
    cli: CliOutcome
    images: dict[str, ImageRow]
    failures: dict[str, FailureRow]


@pytest.fixture(scope="module")
def trunc(once: Once, console_script: Callable[[list[str], Path], CliOutcome]) -> TruncRun:
    def build(folder: Path) -> dict[str, Any]:
        home = folder / "home"
        _write(LocalStore(home_settings(home).store_location))
        outcome = console_script(["run", EXPERIMENT, "--run-id", RUN_ID, "--workers", "1"], home)
        return {"code": outcome.code, "out": outcome.out, "err": outcome.err}

    folder, outcome = once("truncated", build)
    use_settings(home_settings(folder / "home"))
    try:
        engine = get_engine()
        return TruncRun(
            cli=CliOutcome(**outcome),
            images={row.image_id: row for row in image_table(engine, RUN_ID)},
            failures={row.item_id: row for row in run_failures(engine, RUN_ID)},
        )
    finally:
        use_settings(None)


def test_the_run_succeeds_with_failures_and_shows_no_traceback(trunc: TruncRun) -> None:
    assert trunc.cli.code == 10, trunc.cli.err  # some images failed
    assert f"{len(BAD)} failed" in trunc.cli.out
    assert "Traceback" not in trunc.cli.out + trunc.cli.err
    assert len(trunc.cli.err.splitlines()) == 1  # the CLI's warning; no worker printed


@pytest.mark.parametrize("kind", list(BAD))
def test_an_interrupted_or_oversized_file_is_a_per_image_error(trunc: TruncRun, kind: str) -> None:
    bad = BAD[kind]
    image_id = f"P1_{bad.well}_1"
    failure = trunc.failures[image_id]
    assert failure.error == bad.error
    assert failure.cause.startswith(f"{key(bad.well)}: "), failure.cause
    assert bad.cause in failure.cause, failure.cause
    assert trunc.images[image_id].status == "error"


def test_the_3_gb_file_was_not_read(trunc: TruncRun) -> None:
    assert "it was not read" in trunc.failures["P1_B05_1"].cause


def test_good_and_all_black_fields_are_still_segmented(trunc: TruncRun) -> None:
    for image_id in ("P1_A01_1", "P1_A12_1"):
        row = trunc.images[image_id]
        assert row.status == "ok" and row.object_count > 0
    black = trunc.images["P1_C01_1"]
    assert black.status == "ok" and black.object_count == 0
    assert black.metrics["QC_Empty"] == 1.0
