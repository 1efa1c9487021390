"""Shared pieces of the fault and concurrency tests: homes, fault plans, result snapshots.

A *home* is a complete embedded-default setup under ``tmp_path`` (store folder with a
small synthetic experiment, SQLite database, run journals). Results are compared as
*snapshots*: every database row a run wrote (timestamps aside) and every Parquet row,
so "identical to a fault-free run" means zero lost and zero duplicated results.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from plateseg.definition import LOCAL_FUNCTIONS, load_definition, local_substitutions
from plateseg.demo import write_demo_experiment
from plateseg.engine import Clock, LocalEngine
from plateseg.engine.faults import ENV, FaultPlan, parse_plan
from plateseg.map_settings import MapSettings as MapTunables
from plateseg.map_settings import apply_tunables
from plateseg.runs.worker import init_worker
from plateseg.settings import Settings
from plateseg.store import LocalStore
from tests.snapshots import is_clock_column, without_clock

ROOT = Path(__file__).resolve().parents[2]
#: One plate, 8 wells, 1 field each: 8 fields of view, 8 batches of one.
WELLS = ("A01", "A02", "B03", "C04", "D05", "E06", "F07", "G08")
SIZE = 96
ONE_PER_BATCH = MapTunables(items_per_batch=1, max_concurrency=2)

Snapshot = dict[str, list[tuple[Any, ...]]]


def make_home(
    home: Path,
    experiments: Sequence[str] = ("E",),
    wells: Sequence[str] = WELLS,
    **overrides: Any,
) -> Settings:
    """Settings for a fresh home holding the given demo experiments (1 field per well)."""
    values: dict[str, Any] = {"home": home, "time_scale": 0.0, "workers": 2, **overrides}
    settings = Settings(**values)
    store = LocalStore(settings.store_location)
    for experiment in experiments:
        write_demo_experiment(store, experiment, size=SIZE, fields=1, wells=list(wells))
    return settings


def install_faults(monkeypatch: pytest.MonkeyPatch, state: Path, rules: list[Any]) -> FaultPlan:
    """Set ``PLATESEG_FAULTS`` (inherited by worker processes) and return the plan."""
    text = json.dumps({"state": str(state), "rules": rules})
    monkeypatch.setenv(ENV, text)
    return parse_plan(text)


def segmentation_engine(settings: Settings, **kwargs: Any) -> LocalEngine:
    """The engine the local runner builds, kept so tests can read its invocation counts."""
    store = LocalStore(settings.store_location)
    kwargs.setdefault("functions", dict(LOCAL_FUNCTIONS))
    return LocalEngine(
        buckets=lambda _bucket: store,
        clock=Clock(time_scale=settings.time_scale, seed=0),
        workers=settings.worker_count,
        worker_initializer=init_worker,
        worker_initargs=(settings.model_dump(mode="json"),),
        **kwargs,
    )


def segmentation_definition(
    settings: Settings,
    tunables: MapTunables = ONE_PER_BATCH,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """``statemachines/segmentation.asl.json`` as the local runner loads it (optionally edited)."""
    definition = apply_tunables(load_definition(values=local_substitutions(settings)), tunables)
    if edit is not None:
        edit(definition)
    return definition


def retries(events: Sequence[Any], state: str) -> list[str]:
    """Errors the top-level ``state`` was retried for, in order."""
    return [
        e.details["error"] for e in events if e.type == "StateRetry" and e.details["name"] == state
    ]


def run_alone(
    settings: Settings, runs: Sequence[tuple[str, str]], started_by: str | None = None
) -> None:
    """Run each ``(experiment, run id)`` on its own, one after another, on one warm engine.

    The same definition, tunables and input as :func:`plateseg.runs.embedded.run_local` (so the
    same rows); one engine keeps its worker warm between the runs. ``started_by`` goes
    into the input as ``plateseg run`` puts it there (the login name).
    """
    definition = segmentation_definition(settings)
    extra = {"started_by": started_by} if started_by is not None else {}
    with segmentation_engine(settings) as engine:
        for experiment, run_id in runs:
            result = engine.run(
                definition, {"experiment_id": experiment, "run_id": run_id, **extra}, name=run_id
            )
            assert result.status == "SUCCEEDED", result.cause


def db_snapshot(
    database: Path,
    run_id: str | None = None,
    as_run: str = "",
    ignore: frozenset[str] = frozenset(),
) -> Snapshot:
    """Every result table of a SQLite database, rows sorted, clock readings left out.

    Parameters
    ----------
    run_id : str, optional
        Only rows of this run (tables with a ``run_id`` column) plus the shared
        experiment-level tables.
    as_run : str
        Replace the run id in the rows by this text, to compare two runs of the same
        experiment made under different run ids.
    ignore : set of str
        Columns left out too (ids derived from the run id, such as ``map_run_arn``).
    """
    tables: Snapshot = {}
    with sqlite3.connect(database) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for name in sorted(names):
            if name == "alembic_version":
                continue
            columns = [r[1] for r in db.execute(f'PRAGMA table_info("{name}")')]
            kept = [c for c in columns if not is_clock_column(c) and c not in ignore]
            query = "SELECT " + ", ".join(f'"{c}"' for c in kept) + f' FROM "{name}"'
            args: tuple[Any, ...] = ()
            if run_id is not None and "run_id" in columns:
                query += " WHERE run_id = ?"
                args = (run_id,)
            rows = [without_clock(kept, row) for row in db.execute(query, args).fetchall()]
            if run_id is not None and as_run:
                rows = [
                    tuple(as_run if v == run_id else _swap(v, run_id, as_run) for v in r)
                    for r in rows
                ]
            tables[name] = sorted(rows, key=repr)
    return tables


def _swap(value: Any, run_id: str, replacement: str) -> Any:
    if isinstance(value, str) and run_id in value:
        return value.replace(run_id, replacement)
    return value


def parquet_snapshot(settings: Settings, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Parquet part name → rows for one run (the store hides ``.tmp-`` writes, so do we)."""
    root = Path(settings.store_location) / "runs" / run_id / "objects"
    parts = sorted(p for p in root.glob("*.parquet") if not p.name.startswith(".tmp-"))
    return {p.name: pq.read_table(p).to_pylist() for p in parts}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Snapshot]]:
    """A fault-free run ``R`` of experiment ``E``, done once per module: the reference."""
    from plateseg.runs.embedded import run_local

    settings = make_home(tmp_path_factory.mktemp("baseline") / "home")
    run_local("E", run_id="R", settings=settings, tunables=ONE_PER_BATCH)
    yield settings, db_snapshot(settings.home / "plateseg.db")


def sa_snapshot(url: str) -> Snapshot:
    """:func:`db_snapshot` for any SQLAlchemy URL (PostgreSQL included)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    tables: Snapshot = {}
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            for name, table in sorted(metadata.tables.items()):
                if name == "alembic_version":
                    continue
                kept = [c for c in table.columns if not is_clock_column(c.name)]
                rows = connection.execute(sa.select(*kept)).fetchall()
                names = [c.name for c in kept]
                tables[name] = sorted((without_clock(names, r) for r in rows), key=repr)
    finally:
        engine.dispose()
    return tables
