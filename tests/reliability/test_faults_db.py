"""The database unreachable during aggregation: retried, a clear failure, then redrive.

A real PostgreSQL server is stopped before a run reaches Aggregate. Aggregate raises
``DatabaseUnavailableError``, the definition retries it (6 times, back-off scaled down
with ``--time-scale``), and the run ends FAILED with a one-line CLI message naming the
database. Once the server is back, ``plateseg redrive RUN_ID`` completes the run with
exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from plateseg.cli import main
from plateseg.db.engine import describe_url, dispose_engines
from plateseg.engine import Event
from plateseg.errors import ExecutionFailed
from plateseg.runs.embedded import run_local
from plateseg.settings import use_settings
from tests.postgres import PostgresServer, _admin, _as_postgres, _bin_dir, start_server, stop_server
from tests.reliability.faults_support import (
    ONE_PER_BATCH,
    WELLS,
    make_home,
    retries,
    sa_snapshot,
)

FOUR = WELLS[:4]


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, so it can be stopped and started again."""
    server = start_server()
    try:
        yield server
    finally:
        use_settings(None)  # forget settings read from the environment this test set
        dispose_engines()
        stop_server(server)


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    pg_ctl = str(_bin_dir() / "pg_ctl")
    data = str(server.base / "data")
    done = subprocess.run(
        _as_postgres([pg_ctl, "-D", data, *args]), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _stop(server: PostgresServer) -> None:
    _pg_ctl(server, "-m", "fast", "-w", "stop")


def _start(server: PostgresServer) -> None:
    options = f"-p {server.port} -k {server.base} -c listen_addresses=127.0.0.1 -c fsync=off"
    _pg_ctl(server, "-l", str(server.base / "server.log"), "-o", options, "-w", "-t", "60", "start")


def test_database_down_fails_clearly_and_redrive_completes(
    pg: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("clean", "faulted"):
        _admin(pg, f'CREATE DATABASE "{name}"')
    clean_url, url = pg.url("clean"), pg.url("faulted")
    clean = make_home(tmp_path / "clean", wells=FOUR, workers=1, database_url=clean_url)
    run_local("E", run_id="R", settings=clean, tunables=ONE_PER_BATCH)

    _stop(pg)
    home = make_home(tmp_path / "home", wells=FOUR, workers=1, database_url=url, time_scale=0.001)
    events: list[Event] = []
    with pytest.raises(ExecutionFailed) as failed:
        run_local("E", run_id="R", settings=home, tunables=ONE_PER_BATCH, listener=events.append)
    assert failed.value.error == "DatabaseUnavailableError"
    assert f"database {describe_url(url)} is unavailable" in failed.value.cause
    assert retries(events, "Aggregate") == ["DatabaseUnavailableError"] * 6  # MaxAttempts 6
    assert retries(events, "Lookup") == []

    # the CLI names the problem in one line, no traceback, exit 75 (the failing state's
    # DatabaseUnavailableError is transient: try again later, i.e. redrive)
    monkeypatch.setenv("PLATESEG_HOME", str(home.home))
    monkeypatch.setenv("PLATESEG_DATABASE_URL", url)
    use_settings(None)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["redrive", "R", "--time-scale", "0.001", "--workers", "1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 75
    assert "error: execution R failed: DatabaseUnavailableError: database " in err
    assert describe_url(url) in err and "is unavailable" in err
    assert "Traceback" not in err

    _start(pg)
    main(["redrive", "R", "--time-scale", "0", "--workers", "1"])
    out = capsys.readouterr().out
    assert "run R SUCCEEDED" in out
    dispose_engines()
    rows = sa_snapshot(url)
    assert rows == sa_snapshot(clean_url)
    assert len(rows["images"]) == len(FOUR)
