"""What the console-script tests share: the installed ``plateseg`` script, a home of
tiny experiments for it, and assertions on what a shell sees (the fixtures over them
are in ``conftest.py``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile

from plateseg.demo import write_demo_experiment
from plateseg.imaging import write_tiff
from plateseg.settings import Settings
from plateseg.store import LocalStore
from tests.reliability.conftest import CliOutcome

#: The console script of this environment (what ``pip install`` put beside python).
PLATESEG = Path(sys.executable).with_name("plateseg")
ONE_WORKER = ["--workers", "1", "--time-scale", "0"]
BROKEN = b"II*\x00 not a TIFF any more"
#: A plate folder and a layout well that are Rich markup (a style tag, a closing tag).
PLATE_FOLDER = "Plate [old]"
MARKUP_WELL = "[/b]"

#: What a shell sees of one ``plateseg`` process (exit code, stdout, stderr).
Outcome = CliOutcome


Script = Callable[[list[str]], Outcome]


def make_home(folder: Path) -> Path:
    """A home with experiments OK (2 good fields), SOME (1 of 2 corrupt), ALL (2 of 2
    corrupt), WELL-MARKUP (layout well ``[/b]``), PLATE-MARKUP (a duplicate field
    under the folder ``Plate [old]``), OPERETTA (OK's images under Operetta names,
    channels ``ch1``/``ch2``), ZSTACK (the same as two planes each: plane 1 the left
    half of the field, plane 2 the right; their maximum is OK's image) and ZFILE (OK's
    names, each file an ImageJ Z-stack of those two planes, as confocal software saves
    one)."""
    store = LocalStore(Settings(home=folder).store_location)
    for experiment in ("OK", "SOME", "ALL", "WELL-MARKUP", "PLATE-MARKUP"):
        write_demo_experiment(store, experiment, size=64, fields=1, wells=["A01", "A12"])
    store.put_bytes("experiments/SOME/P1/P1_A01_s1_w1.tif", BROKEN)
    for well in ("A01", "A12"):
        store.put_bytes(f"experiments/ALL/P1/P1_{well}_s1_w1.tif", BROKEN)
    store.put_bytes(
        "experiments/WELL-MARKUP/layout.csv",
        f"well,control\nA01,neg\n{MARKUP_WELL},pos\n".encode(),
    )
    good = store.get_bytes("experiments/PLATE-MARKUP/P1/P1_A01_s1_w1.tif")
    store.put_bytes(f"experiments/PLATE-MARKUP/{PLATE_FOLDER}/P1_A01_s1_w1.tif", good)
    store.put_bytes(f"experiments/PLATE-MARKUP/{PLATE_FOLDER}/rescan/P1_A1_s1_w1.tif", good)
    for well, column in (("A01", 1), ("A12", 12)):
        for channel in (1, 2):
            image = store.get_bytes(f"experiments/OK/P1/P1_{well}_s1_w{channel}.tif")
            name = f"r01c{column:02d}f01p01-ch{channel}sk1fk1fl1.tiff"
            store.put_bytes(f"experiments/OPERETTA/P1/{name}", image)
            planes = halves(tifffile.imread(io.BytesIO(image)))
            for plane, part in enumerate(planes, start=1):
                name = f"r01c{column:02d}f01p0{plane}-ch{channel}sk1fk1fl1.tiff"
                store.put_bytes(f"experiments/ZSTACK/P1/{name}", write_tiff(part))
            stack = io.BytesIO()
            tifffile.imwrite(stack, np.stack(planes), imagej=True, metadata={"axes": "ZYX"})
            store.put_bytes(f"experiments/ZFILE/P1/P1_{well}_s1_w{channel}.tif", stack.getvalue())
    return folder


def halves(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two planes: the left and the right half of ``pixels`` on its minimum (their
    maximum is ``pixels``)."""
    left, right = np.full_like(pixels, pixels.min()), np.full_like(pixels, pixels.min())
    middle = pixels.shape[1] // 2
    left[:, :middle], right[:, middle:] = pixels[:, :middle], pixels[:, middle:]
    return left, right


def script_on(home: Path) -> Script:
    """``script(args)``: run the installed ``plateseg ARGS`` in a new process on ``home``
    (``PLATESEG_*`` of the test environment dropped, no retry waits)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATESEG_")}
    env.update({"PLATESEG_HOME": str(home), "PLATESEG_TIME_SCALE": "0", "COLUMNS": "200"})

    def run(args: list[str]) -> Outcome:
        done = subprocess.run(
            [str(PLATESEG), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    return run


def no_traceback(outcome: Outcome) -> None:
    assert "Traceback" not in outcome.out + outcome.err, outcome.err


def one_line(outcome: Outcome, code: int, prefix: str, *words: str) -> str:
    """Assert the exit code and ONE stderr line starting with ``prefix``, holding ``words``."""
    assert outcome.code == code, (outcome.code, outcome.out, outcome.err)
    assert len(outcome.error_lines) == 1, outcome.err
    line = outcome.error_lines[0]
    assert line.startswith(prefix), line
    for word in words:
        assert word in line, (word, line)
    no_traceback(outcome)
    return line
