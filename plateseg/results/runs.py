"""Runs in the results database: list them, the latest of an experiment, one by id.

Part of the read API (:mod:`plateseg.results` re-exports every public name).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from plateseg.db.engine import translate_errors
from plateseg.db.models import Run
from plateseg.db.reads import run_metric_names
from plateseg.db.rows import RunInfo, run_info
from plateseg.errors import InputError, NotFoundError

__all__ = ["get_run", "latest_run", "list_runs", "require_metric", "resolve_run"]

_runs = Run.__table__.c


def _newest_first(stmt: sa.Select[Any]) -> sa.Select[Any]:
    return stmt.order_by(_runs.finished_at.desc(), _runs.run_id.desc())


def list_runs(engine: sa.Engine, experiment_id: str | None = None) -> list[RunInfo]:
    """Every recorded run, newest first (``finished_at``), optionally of one experiment."""
    stmt = _newest_first(sa.select(Run.__table__))
    if experiment_id is not None:
        stmt = stmt.where(_runs.experiment_id == experiment_id)
    with translate_errors(engine), engine.connect() as connection:
        return [run_info(row) for row in connection.execute(stmt)]


def latest_run(engine: sa.Engine, experiment_id: str) -> RunInfo | None:
    """The experiment's most recently finished run, or ``None`` if it has none."""
    stmt = _newest_first(sa.select(Run.__table__)).where(_runs.experiment_id == experiment_id)
    with translate_errors(engine), engine.connect() as connection:
        row = connection.execute(stmt.limit(1)).first()
    return run_info(row) if row is not None else None


def get_run(engine: sa.Engine, run_id: str) -> RunInfo:
    """One run by id.

    Raises
    ------
    InputError
        No run with that id is recorded.
    """
    with translate_errors(engine), engine.connect() as connection:
        row = connection.execute(sa.select(Run.__table__).where(_runs.run_id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no run {run_id!r} is recorded in the results database")
    return run_info(row)


def resolve_run(engine: sa.Engine, experiment_id: str, run_id: str | None) -> RunInfo:
    """``run_id`` checked to belong to ``experiment_id``, or the experiment's latest run.

    Raises
    ------
    NotFoundError
        Unknown run, or an experiment with no recorded runs.
    InputError
        ``run_id`` belongs to another experiment.
    """
    if run_id is None:
        run = latest_run(engine, experiment_id)
        if run is None:
            raise NotFoundError(
                f"experiment {experiment_id!r} has no recorded runs: start one with "
                f"'plateseg run {experiment_id}'"
            )
        return run
    run = get_run(engine, run_id)
    if run.experiment_id != experiment_id:
        raise InputError(
            f"run {run_id!r} belongs to experiment {run.experiment_id!r}, not {experiment_id!r}"
        )
    return run


def require_metric(engine: sa.Engine, run_id: str, metric: str) -> None:
    """Raise :class:`NotFoundError` (listing the run's metrics) when the run has no
    ``metric``."""
    known = run_metric_names(engine, run_id)
    if metric not in known:
        shown = ", ".join(known[:20]) or "none"
        raise NotFoundError(f"run {run_id!r} has no metric {metric!r} (it has: {shown})")
