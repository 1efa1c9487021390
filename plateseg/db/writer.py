"""Write one run's rows in one transaction, replacing whatever that run wrote before.

The write is idempotent: within a single transaction it upserts the ``experiments``
and ``runs`` rows, deletes every child row of the run, and bulk-inserts the new rows
with Core ``insert()`` and lists of dicts (``executemany``; no ORM objects per row).
Running it twice with the same :class:`RunRows` leaves identical table contents, and a
failure half-way leaves the previous contents untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from plateseg.db.engine import translate_errors
from plateseg.db.models import (
    Base,
    Experiment,
    ExperimentMetric,
    Image,
    ImageMetric,
    Run,
    RunFailure,
    WellMetric,
)
from plateseg.errors import DatabaseError, InputError

__all__ = ["CHILD_TABLES", "RunRows", "write_run"]

#: Tables holding per-run rows, children before parents (the delete order).
CHILD_TABLES: tuple[sa.Table, ...] = tuple(
    Base.metadata.tables[name]
    for name in ("image_metrics", "images", "well_metrics", "experiment_metrics", "run_failures")
)

#: Rows per ``executemany`` call: bounds memory and statement size on both backends.
CHUNK = 5000


@dataclass
class RunRows:
    """Everything one run writes, as plain dicts keyed by column name.

    Attributes
    ----------
    run : dict
        One ``runs`` row (all columns).
    images, image_metrics, well_metrics, experiment_metrics, failures : list of dict
        Rows of the child tables; ``run_id`` is filled in by :func:`write_run`.
    """

    run: dict[str, Any]
    images: list[dict[str, Any]] = field(default_factory=list)
    image_metrics: list[dict[str, Any]] = field(default_factory=list)
    well_metrics: list[dict[str, Any]] = field(default_factory=list)
    experiment_metrics: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])


def _dialect_insert(connection: sa.Connection, table: Any) -> Any:
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise DatabaseError(f"unsupported database backend {name!r}: use SQLite or PostgreSQL")


def _upsert_experiment(
    connection: sa.Connection, experiment_id: str, started: datetime, finished: datetime
) -> None:
    """Insert the experiment, or widen its [created_at, updated_at] span to this run's."""
    table = Experiment.__table__
    stmt = _dialect_insert(connection, table).values(
        experiment_id=experiment_id, created_at=started, updated_at=finished
    )
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.experiment_id],
        set_={
            "created_at": sa.case(
                (excluded.created_at < table.c.created_at, excluded.created_at),
                else_=table.c.created_at,
            ),
            "updated_at": sa.case(
                (excluded.updated_at > table.c.updated_at, excluded.updated_at),
                else_=table.c.updated_at,
            ),
        },
    )
    connection.execute(stmt)


def _upsert_run(connection: sa.Connection, run: dict[str, Any]) -> None:
    table = Run.__table__
    stmt = _dialect_insert(connection, table).values(**run)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.run_id],
        set_={name: stmt.excluded[name] for name in run if name != "run_id"},
    )
    connection.execute(stmt)


def _insert_many(connection: sa.Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        connection.execute(sa.insert(table), list(rows[start : start + CHUNK]))


def write_run(engine: sa.Engine, rows: RunRows) -> None:
    """Replace everything stored for ``rows.run_id`` with ``rows``, in one transaction.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A database at the latest schema revision.
    rows : RunRows
        The run and its child rows.

    Raises
    ------
    DatabaseUnavailableError
        The database is unreachable or dropped the connection (nothing was written).
    DatabaseError
        Any other failure (nothing was written).
    InputError
        The run id is already recorded for another experiment (nothing was written).
    """
    run_id = rows.run_id
    run = rows.run
    started = run.get("started_at") or run["finished_at"]

    def tagged(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**item, "run_id": run_id} for item in items]

    with translate_errors(engine), engine.begin() as connection:
        owner = connection.scalar(
            sa.select(Run.__table__.c.experiment_id).where(Run.__table__.c.run_id == run_id)
        )
        if owner is not None and owner != run["experiment_id"]:
            raise InputError(
                f"run id {run_id!r} already belongs to experiment {owner!r}, "
                f"not {run['experiment_id']!r}: use a new run id"
            )
        _upsert_experiment(connection, run["experiment_id"], started, run["finished_at"])
        _upsert_run(connection, run)
        for table in CHILD_TABLES:
            connection.execute(sa.delete(table).where(table.c.run_id == run_id))
        _insert_many(connection, Image.__table__, tagged(rows.images))
        _insert_many(connection, ImageMetric.__table__, tagged(rows.image_metrics))
        _insert_many(connection, WellMetric.__table__, tagged(rows.well_metrics))
        _insert_many(connection, ExperimentMetric.__table__, tagged(rows.experiment_metrics))
        _insert_many(connection, RunFailure.__table__, tagged(rows.failures))
