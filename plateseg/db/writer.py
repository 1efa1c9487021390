"""Write one run's rows in one transaction, replacing whatever that run wrote before.

Within a single transaction :func:`write_run`

1. refuses a run id already recorded for another experiment;
2. upserts the experiment (widening its time span), its plates and wells (layout
   annotations: the latest aggregation's layout wins) and the ``runs`` row;
3. replaces the run's child rows (:func:`plateseg.db.bulk.replace_run_rows`):
   PostgreSQL ``COPY`` into temporary staging tables, then delete-stale + upsert-changed
   (an unchanged re-aggregation writes no row versions); SQLite delete + one
   ``executemany`` per table. No ORM objects on this path.

Running it twice with the same :class:`RunRows` leaves identical table contents, and
a failure at any point (a dropped connection, a killed process) rolls everything
back, leaving the previous contents untouched. Rows are written in a fixed order
(sorted keys, parents before children) so concurrent writers of one experiment queue
on the experiment row instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from plateseg.db.bulk import replace_run_rows, upsert_rows
from plateseg.db.engine import translate_errors
from plateseg.db.models import Base, Experiment, Plate, Run
from plateseg.errors import DatabaseError, InputError

__all__ = ["CHILD_TABLES", "RunRows", "write_run"]

#: Tables holding per-run rows, children before parents (the delete order).
CHILD_TABLES: tuple[sa.Table, ...] = tuple(
    Base.metadata.tables[name]
    for name in (
        "image_metrics",
        "images",
        "well_metrics",
        "experiment_metrics",
        "plate_qc",
        "run_failures",
    )
)

#: Insert order of the child tables (parents first) and the RunRows attribute of each.
_INSERT_ORDER = (
    ("images", "images"),
    ("image_metrics", "image_metrics"),
    ("well_metrics", "well_metrics"),
    ("experiment_metrics", "experiment_metrics"),
    ("plate_qc", "plate_qc"),
    ("run_failures", "failures"),
)


@dataclass
class RunRows:
    """Everything one run writes, as plain dicts keyed by column name.

    Attributes
    ----------
    run : dict
        One ``runs`` row (all columns).
    images, image_metrics, well_metrics, experiment_metrics, plate_qc, failures : list of dict
        Rows of the child tables; ``run_id`` is filled in by :func:`write_run`.
    plates, wells : list of dict
        Experiment-level rows (``experiment_id`` is filled in), upserted.
    """

    run: dict[str, Any]
    images: list[dict[str, Any]] = field(default_factory=list)
    image_metrics: list[dict[str, Any]] = field(default_factory=list)
    well_metrics: list[dict[str, Any]] = field(default_factory=list)
    experiment_metrics: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    plate_qc: list[dict[str, Any]] = field(default_factory=list)
    plates: list[dict[str, Any]] = field(default_factory=list)
    wells: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def row_count(self) -> int:
        """Rows this run writes (all tables, the run row included)."""
        return 1 + sum(len(getattr(self, attr)) for _, attr in _INSERT_ORDER)


def _dialect_insert(connection: sa.Connection, table: Any) -> Any:
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise DatabaseError(f"unsupported database backend {name!r}: use SQLite or PostgreSQL")


def _earliest(table: Any, excluded: Any, name: str, latest: bool = False) -> Any:
    new, old = excluded[name], table.c[name]
    better = new > old if latest else new < old
    return sa.case((old.is_(None), new), (better, new), else_=old)


def _upsert_experiment(
    connection: sa.Connection, experiment_id: str, started: datetime, finished: datetime
) -> None:
    """Insert the experiment, or widen its [created_at, updated_at] span to this run's."""
    table = Experiment.__table__
    stmt = _dialect_insert(connection, table).values(
        experiment_id=experiment_id, created_at=started, updated_at=finished
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.experiment_id],
        set_={
            "created_at": _earliest(table, stmt.excluded, "created_at"),
            "updated_at": _earliest(table, stmt.excluded, "updated_at", latest=True),
        },
    )
    connection.execute(stmt)


def _upsert_plates(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Plates keep the largest well count and format any run has seen."""
    if not rows:
        return
    table = Plate.__table__
    stmt = _dialect_insert(connection, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.experiment_id, table.c.plate],
        set_={
            "n_wells": _earliest(table, stmt.excluded, "n_wells", latest=True),
            "plate_format": _earliest(table, stmt.excluded, "plate_format", latest=True),
        },
    )
    connection.execute(stmt, rows)


def _upsert_run(connection: sa.Connection, run: dict[str, Any]) -> None:
    table = Run.__table__
    stmt = _dialect_insert(connection, table).values(**run)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.run_id],
        set_={name: stmt.excluded[name] for name in run if name != "run_id"},
    )
    connection.execute(stmt)


def write_run(
    engine: sa.Engine,
    rows: RunRows,
    *,
    on_table: Callable[[str, sa.Connection], None] | None = None,
) -> None:
    """Replace everything stored for ``rows.run_id`` with ``rows``, in one transaction.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A database at the latest schema revision.
    rows : RunRows
        The run and its child rows.
    on_table : callable, optional
        Called as ``on_table(table_name, connection)`` after each child table is
        loaded, inside the transaction: an instrumentation seam (progress, and the
        fault-injection tests that drop the connection mid-write).

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
    experiment_id = run["experiment_id"]
    started = run.get("started_at") or run["finished_at"]
    tables = Base.metadata.tables
    with translate_errors(engine), engine.begin() as connection:
        owner = connection.scalar(
            sa.select(Run.__table__.c.experiment_id).where(Run.__table__.c.run_id == run_id)
        )
        if owner is not None and owner != experiment_id:
            raise InputError(
                f"run id {run_id!r} already belongs to experiment {owner!r}, "
                f"not {experiment_id!r}: use a new run id"
            )
        _upsert_experiment(connection, experiment_id, started, run["finished_at"])
        plates = sorted(rows.plates, key=lambda r: r["plate"])
        _upsert_plates(connection, [{**r, "experiment_id": experiment_id} for r in plates])
        wells = sorted(rows.wells, key=lambda r: (r["plate"], r["well"]))
        upsert_rows(connection, tables["wells"], wells, {"experiment_id": experiment_id})
        _upsert_run(connection, run)
        children = [(tables[name], getattr(rows, attr)) for name, attr in _INSERT_ORDER]
        replace_run_rows(connection, run_id, children, on_table)
