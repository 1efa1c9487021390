"""Local executions at the same time on one machine and one home.

Three ``plateseg run`` processes on three experiments start together on a fresh home
(so they also race to create the SQLite schema), and two runs of the same experiment
with different run ids run on two threads of one process. Each run must leave exactly
the rows, Parquet parts and journal it leaves when run alone: no corrupted journal, no
mixed rows, no "database is locked".
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from plateseg.engine import Journal
from plateseg.runs.base import login_name
from plateseg.runs.embedded import LocalRun, journal_path, run_local
from plateseg.settings import Settings
from tests.reliability.faults_support import (
    ONE_PER_BATCH,
    ROOT,
    WELLS,
    db_snapshot,
    make_home,
    parquet_snapshot,
    run_alone,
)

FOUR = WELLS[:4]
EXPERIMENTS = ("E1", "E2", "E3")
RUNS = ("run-alpha", "run-beta")  # distinctive: run ids are swapped out of row text
#: Columns derived from the run id (the Map Run id is a UUID of the execution ARN).
DERIVED = frozenset({"map_run_arn", "result_manifest_key"})


def _journal_ok(settings: Settings, run_id: str, experiment: str) -> None:
    with Journal(journal_path(run_id, settings)) as journal:
        recorded = journal.execution()
        assert recorded is not None and recorded["name"] == run_id
        assert recorded["status"] == "SUCCEEDED"
        assert recorded["input"]["experiment_id"] == experiment
        assert journal.count_children("SUCCEEDED") == journal.count_children() == len(FOUR)


def _cli_run(settings: Settings, experiment: str, run_id: str) -> subprocess.Popen[bytes]:
    args = ["run", experiment, "--run-id", run_id, "--workers", "1", "--time-scale", "0",
            "--batch-size", "1", "--concurrency", "2"]  # fmt: skip
    code = f"from plateseg.cli import main\nmain({args!r})\n"
    env = {**os.environ, "PLATESEG_HOME": str(settings.home)}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_three_cli_runs_at_once_equal_runs_done_alone(tmp_path: Path) -> None:
    alone = make_home(tmp_path / "alone", EXPERIMENTS, wells=FOUR, workers=1)
    # the CLI records who started a run: the same input here
    run_alone(alone, [(e, f"R-{e}") for e in EXPERIMENTS], started_by=login_name())

    shared = make_home(tmp_path / "shared", EXPERIMENTS, wells=FOUR, workers=1)
    assert not (shared.home / "plateseg.db").exists()  # all three create the schema at once
    procs = [_cli_run(shared, e, f"R-{e}") for e in EXPERIMENTS]
    errors = [p.communicate(timeout=600)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert not any("locked" in e or "Traceback" in e for e in errors), errors

    assert db_snapshot(shared.home / "plateseg.db") == db_snapshot(alone.home / "plateseg.db")
    for experiment in EXPERIMENTS:
        run_id = f"R-{experiment}"
        _journal_ok(shared, run_id, experiment)
        assert parquet_snapshot(shared, run_id) == parquet_snapshot(alone, run_id)
        rows = db_snapshot(shared.home / "plateseg.db", run_id)["images"]
        assert len(rows) == len(FOUR) and {r[0] for r in rows} == {run_id}


def test_two_runs_of_one_experiment_at_once_do_not_mix(tmp_path: Path) -> None:
    alone = make_home(tmp_path / "alone", wells=FOUR, workers=1)
    run_alone(alone, [("E", RUNS[0])])
    reference = db_snapshot(alone.home / "plateseg.db", RUNS[0], as_run="X", ignore=DERIVED)

    shared = make_home(tmp_path / "shared", wells=FOUR, workers=1)
    results: dict[str, LocalRun | BaseException] = {}

    def run(run_id: str) -> None:
        try:
            results[run_id] = run_local("E", run_id=run_id, settings=shared, tunables=ONE_PER_BATCH)
        except BaseException as exc:  # reported by the assertion below
            results[run_id] = exc

    threads = [threading.Thread(target=run, args=(r,)) for r in RUNS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert all(isinstance(results.get(r), LocalRun) for r in RUNS), results

    database = shared.home / "plateseg.db"
    for run_id in RUNS:
        _journal_ok(shared, run_id, "E")
        snapshot = db_snapshot(database, run_id, as_run="X", ignore=DERIVED)
        assert snapshot["images"] and snapshot == reference
        with sqlite3.connect(database) as db:
            (key,) = db.execute("SELECT result_manifest_key FROM runs WHERE run_id = ?", (run_id,))
        assert key[0].startswith(f"runs/{run_id}/map/")
        parts = parquet_snapshot(shared, run_id)
        assert {row["run_id"] for rows in parts.values() for row in rows} == {run_id}
    a_rows = [
        {**row, "run_id": "X"}
        for rows in parquet_snapshot(shared, RUNS[0]).values()
        for row in rows
    ]
    b_rows = [
        {**row, "run_id": "X"}
        for rows in parquet_snapshot(shared, RUNS[1]).values()
        for row in rows
    ]
    assert sorted(map(repr, a_rows)) == sorted(map(repr, b_rows))


_UPGRADE = (
    "import sys\n"
    "from plateseg.db.engine import current_revision, get_engine, upgrade\n"
    "engine = get_engine(sys.argv[1])\n"
    "upgrade(engine)\n"
    "print(current_revision(engine))\n"
)


def test_concurrent_schema_upgrades_of_a_fresh_sqlite_file(tmp_path: Path) -> None:
    """pysqlite runs DDL outside transactions: without a lock, one of three fails."""
    from plateseg.db.engine import head_revision

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _UPGRADE, url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode() for _, err in outputs]
    assert {out.decode().strip() for out, _ in outputs} == {head_revision()}
