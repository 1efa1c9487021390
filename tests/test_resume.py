"""Crash safety: SIGKILL a real local run at several points, resume it, compare.

The killed-and-resumed run must leave exactly the database rows (every result table;
timestamps aside) and Parquet parts an uninterrupted run leaves.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from plateseg.demo import write_demo_experiment
from plateseg.errors import ResumeError
from plateseg.map_settings import MapSettings as MapTunables
from plateseg.runs.embedded import journal_path, redrive_local, resume_local, run_local
from plateseg.settings import Settings
from plateseg.store import LocalStore
from tests.snapshots import is_clock_column, without_clock

ROOT = Path(__file__).resolve().parents[1]
WELLS = ["A01", "A02", "B03", "C04", "D05", "E06"]  # 2 fields each: 12 batches of 1
RUN = "R"
START = (
    "from plateseg.map_settings import MapSettings as MapTunables\n"
    "from plateseg.runs.embedded import run_local\n"
    f"run_local('E', run_id={RUN!r}, tunables=MapTunables(items_per_batch=1, max_concurrency=2))\n"
)
RESUME = f"from plateseg.cli import main\nmain(['run', '--resume', {RUN!r}, '--time-scale', '0'])\n"


def make_home(home: Path) -> Settings:
    settings = Settings(home=home, time_scale=0.0, workers=2)
    write_demo_experiment(LocalStore(settings.store_location), "E", size=128, wells=WELLS)
    return settings


def spawn(code: str, settings: Settings) -> subprocess.Popen[bytes]:
    """Run ``code`` in a new session; its stderr goes to ``<home>/stderr-<n>.txt``."""
    env = {
        **os.environ,
        "PLATESEG_HOME": str(settings.home),
        "PLATESEG_TIME_SCALE": "0",
        "PLATESEG_WORKERS": "2",
    }
    with _log(settings).open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            start_new_session=True,  # its own process group: the kill takes the workers too
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def _log(settings: Settings) -> Path:
    n = len(list(settings.home.glob("stderr-*.txt")))
    return settings.home / f"stderr-{n}.txt"


def _last_log(settings: Settings) -> str:
    logs = sorted(settings.home.glob("stderr-*.txt"), key=lambda p: p.stat().st_mtime)
    return logs[-1].read_text() if logs else ""


def journaled_batches(path: Path) -> int:
    if not path.exists():
        return -1
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            started = db.execute("SELECT COUNT(*) FROM execution").fetchone()[0]
            found = db.execute("SELECT COUNT(*) FROM children").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return -1
    return int(found) if started else -1


def kill_when(proc: subprocess.Popen[bytes], settings: Settings, batches: int) -> int:
    """SIGKILL the run's process group once ``batches`` results are journaled."""
    path = journal_path(RUN, settings)
    deadline = time.monotonic() + 120
    while (seen := journaled_batches(path)) < batches:
        assert proc.poll() is None, f"run ended before the kill point: {_last_log(settings)}"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return seen


def db_rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every result table, sorted, without clock readings (:mod:`tests.snapshots`)."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with sqlite3.connect(settings.home / "plateseg.db") as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for name in names:
            if name == "alembic_version":
                continue
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({name})")]
            kept = [c for c in columns if not is_clock_column(c)]
            listed = ", ".join(f'"{c}"' for c in kept)
            rows = db.execute(f'SELECT {listed} FROM "{name}"').fetchall()
            tables[name] = sorted((without_clock(kept, row) for row in rows), key=repr)
    return tables


def parquet_parts(settings: Settings) -> dict[str, Any]:
    """Parquet part name → rows; the store ignores a write's ``.tmp-`` file, so do we."""
    root = Path(settings.store_location) / "runs" / RUN / "objects"
    parts = sorted(p for p in root.glob("*.parquet") if not p.name.startswith(".tmp-"))
    return {p.name: pq.read_table(p).to_pylist() for p in parts}  # .tmp-: killed mid-write


def test_sigkilled_run_resumes_to_identical_results(tmp_path: Path) -> None:
    baseline = make_home(tmp_path / "baseline")
    run_local(
        "E",
        run_id=RUN,
        settings=baseline,
        tunables=MapTunables(items_per_batch=1, max_concurrency=2),
    )
    killed = make_home(tmp_path / "killed")
    journal = journal_path(RUN, killed)
    seen = [kill_when(spawn(START, killed), killed, 0)]  # during Lookup or the first batch
    for point in (4, 8):  # mid-Map, twice, each time from a resumed run
        seen.append(kill_when(spawn(RESUME, killed), killed, point))
    final = spawn(RESUME, killed)
    assert final.wait(timeout=300) == 0, _last_log(killed)
    assert seen[0] >= 0 and 4 <= seen[1] < 12 and 8 <= seen[2] < 12
    assert journaled_batches(journal) == 12  # each batch journaled once, none lost
    assert db_rows(killed) == db_rows(baseline)
    assert parquet_parts(killed) == parquet_parts(baseline)
    assert len(parquet_parts(killed)) == 12


def test_resume_and_redrive_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    settings = make_home(tmp_path / "home")
    with pytest.raises(ResumeError, match="no local run 'nope'"):
        resume_local("nope", settings=settings)
    run_local("E", run_id=RUN, settings=settings, tunables=MapTunables(items_per_batch=4))
    with pytest.raises(ResumeError, match="already succeeded"):
        resume_local(RUN, settings=settings)
    with pytest.raises(ResumeError, match="no failed Map items"):
        redrive_local(RUN, settings=settings)
    with pytest.raises(ResumeError, match="invalid run id"):
        journal_path("../x", settings)
