"""Exactly once: concurrent writers, a connection dropped mid-write, a killed writer."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from plateseg.db import get_engine, upgrade, write_run
from plateseg.db.models import Base
from plateseg.errors import DatabaseUnavailableError
from plateseg.pipeline.aggregate import aggregate_run, build_rows
from plateseg.settings import Settings
from plateseg.store import LocalStore
from tests.db.runs import MapResults, ok, qc_run, standard_run, write_layout

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(db_url: str, settings: Settings) -> sa.Engine:
    engine = get_engine(db_url)
    upgrade(engine)
    return engine


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def dump(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            name: sorted(
                connection.execute(sa.select(table)).all(),
                key=lambda row: tuple(str(value) for value in row),
            )
            for name, table in Base.metadata.tables.items()
        }


def smaller_run() -> MapResults:
    """Another version of run-1 (one clean image), so a half-write would show."""
    results = MapResults()
    results.add_ok([ok("P1", "D04", 1, 3, 50.0)])
    return results


def test_two_runs_aggregated_concurrently(engine: sa.Engine, local: LocalStore) -> None:
    requests = [standard_run(f"run-{n}").write(local) for n in range(2)]
    errors: list[BaseException] = []

    def aggregate(index: int) -> None:
        try:
            aggregate_run(requests[index], local, engine)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=aggregate, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    together = dump(engine)
    assert len(together["runs"]) == 2
    assert len(together["images"]) == 16 and len(together["wells"]) == 3
    for request in requests:  # each run as if aggregated alone: re-aggregating changes nothing
        aggregate_run(request, local, engine)
    assert dump(engine) == together


def _terminate(connection: sa.Connection, admin_url: str) -> None:
    """Kill the writer's backend from another connection (as an operator or failover would)."""
    pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    admin_engine = sa.create_engine(admin_url)
    try:
        with admin_engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin_engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_connection_dropped_mid_write_leaves_nothing_then_retry_succeeds(
    engine: sa.Engine, local: LocalStore, db_url: str
) -> None:
    write_layout(local, "EXP-001")
    aggregate_run(smaller_run().write(local), local, engine)
    before = dump(engine)
    local.delete_prefix("runs/run-1/")
    rows = build_rows(standard_run().write(local), local)

    def drop(table: str, connection: sa.Connection) -> None:
        if table == "image_metrics":
            _terminate(connection, db_url)

    with pytest.raises(DatabaseUnavailableError, match="is unavailable"):
        write_run(engine, rows, on_table=drop)

    assert dump(engine) == before
    write_run(engine, rows)  # the state machine's Retry
    after = dump(engine)
    assert len(after["images"]) == 8 and len(after["image_metrics"]) == 15
    assert {r.well for r in after["wells"]} >= {"B02", "B03", "C02"}


KILLER = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from plateseg.db import get_engine, write_run
from plateseg.pipeline.aggregate import build_rows
from plateseg.contracts import AggregateRequest
from plateseg.store import LocalStore

store = LocalStore({store!r})
request = AggregateRequest.model_validate_json(open({request!r}).read())
rows = build_rows(request, store)

def die(table, connection):
    if table == "well_metrics":
        os.kill(os.getpid(), signal.SIGKILL)

write_run(get_engine({url!r}), rows, on_table=die)
"""


def test_killed_mid_transaction_keeps_the_previous_state(
    engine: sa.Engine, local: LocalStore, db_url: str, tmp_path: Path
) -> None:
    aggregate_run(smaller_run().write(local), local, engine)
    before = dump(engine)
    local.delete_prefix("runs/run-1/")
    request = standard_run().write(local)
    (tmp_path / "request.json").write_text(request.model_dump_json())
    script = KILLER.format(
        repo=str(REPO), store=str(local.root), request=str(tmp_path / "request.json"), url=db_url
    )

    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True
    )

    assert done.returncode == -9, done.stderr
    assert dump(engine) == before
    aggregate_run(request, local, engine)  # a retry after the crash succeeds
    assert len(dump(engine)["images"]) == 8


def test_reaggregating_with_layout_is_byte_identical(engine: sa.Engine, local: LocalStore) -> None:
    write_layout(local, "EXP-QC")
    request = qc_run().write(local)
    aggregate_run(request, local, engine)
    first = dump(engine)
    aggregate_run(request, local, engine)
    assert dump(engine) == first
    assert len(first["plate_qc"]) == 3 and len(first["wells"]) == 7


def test_a_changed_layout_updates_the_wells(engine: sa.Engine, local: LocalStore) -> None:
    write_layout(local, "EXP-QC")
    request = qc_run().write(local)
    aggregate_run(request, local, engine)
    write_layout(local, "EXP-QC", "well,compound,control\nA05,CPD-9,\nA01,DMSO,pos\n")

    aggregate_run(request, local, engine)

    with engine.connect() as connection:
        wells = dict(connection.execute(sa.text("SELECT well, compound FROM wells")).all())
        roles = dict(connection.execute(sa.text("SELECT well, control FROM wells")).all())
    assert wells["A05"] == "CPD-9" and roles["A01"] == "pos" and roles["B01"] == ""


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_reaggregating_writes_no_new_row_versions(engine: sa.Engine, local: LocalStore) -> None:
    request = standard_run().write(local)
    aggregate_run(request, local, engine)
    query = sa.text("SELECT image_id, metric, xmin::text FROM image_metrics")
    with engine.connect() as connection:
        before = sorted(connection.execute(query).all())

    aggregate_run(request, local, engine)

    with engine.connect() as connection:
        assert sorted(connection.execute(query).all()) == before
