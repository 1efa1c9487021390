"""Read API over the results database: runs, the well table, images and failures.

Used by the CLI (``plateseg results``, ``plateseg status``) and the web UI. Every
function takes an engine (:func:`plateseg.db.get_engine`) and returns frozen
dataclasses; none writes. Database faults surface as
:class:`~plateseg.errors.DatabaseUnavailableError` / :class:`~plateseg.errors.DatabaseError`;
an experiment or run that is not recorded raises :class:`~plateseg.errors.InputError`.

>>> from plateseg.db import get_engine  # doctest: +SKIP
>>> for row in well_table(get_engine(), "DEMO-001"):  # doctest: +SKIP
...     print(row.plate, row.well, row.n_objects, row.mean_area)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from plateseg.db.engine import translate_errors
from plateseg.db.models import Image, ImageMetric, Run, RunFailure, WellMetric
from plateseg.errors import InputError, NotFoundError

__all__ = [
    "AREA_METRIC",
    "FailureRow",
    "ImageRow",
    "RunInfo",
    "WellRow",
    "get_run",
    "image_table",
    "latest_run",
    "list_runs",
    "run_failures",
    "well_table",
]

#: Per-image metric holding the mean nuclear area in pixels (the well table's ``mean_area``).
AREA_METRIC = "Mean_Nuclei_AreaShape_Area"

_runs = Run.__table__.c
_images = Image.__table__.c
_image_metrics = ImageMetric.__table__.c
_wells = WellMetric.__table__.c
_failures = RunFailure.__table__.c


def _utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything is stored in UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class RunInfo:
    """One recorded run (a ``runs`` row, with the recipe parsed back into a dict)."""

    run_id: str
    experiment_id: str
    execution_id: str
    engine: str
    status: str
    recipe: dict[str, Any]
    recipe_hash: str
    map_run_arn: str
    result_manifest_key: str
    objects_prefix: str
    started_at: datetime | None
    finished_at: datetime
    images_ok: int
    images_failed: int
    batches_failed: int
    objects: int


@dataclass(frozen=True)
class WellRow:
    """One well of a run.

    Attributes
    ----------
    n_fields : int
        Fields of view segmented successfully.
    n_objects : int
        Nuclei counted over those fields.
    mean_area : float or None
        Mean over the OK fields of each field's mean nuclear area (pixels), or
        ``None`` when the recipe did not measure it or no field has nuclei.
    n_failed : int
        Fields that failed (per-image errors and failed batches).
    """

    plate: str
    well: str
    n_fields: int
    n_objects: int
    mean_area: float | None
    n_failed: int


@dataclass(frozen=True)
class ImageRow:
    """One field of view of a run, with its metrics (``{name: value}``)."""

    image_id: str
    plate: str
    well: str
    field: int
    status: str
    object_count: int
    mask_key: str | None
    error: str | None
    cause: str | None
    metrics: dict[str, float | None] = dataclass_field(default_factory=dict)


@dataclass(frozen=True)
class FailureRow:
    """One failed image (``kind="image"``) or image of a failed batch (``kind="batch"``)."""

    item_id: str
    kind: str
    batch: str | None
    error: str
    cause: str
    attempts: int | None


def _run_info(row: sa.Row[Any]) -> RunInfo:
    values = row._asdict()
    recipe = json.loads(values.pop("recipe_json"))
    finished = _utc(values.pop("finished_at"))
    started = _utc(values.pop("started_at"))
    assert finished is not None  # NOT NULL column
    return RunInfo(**values, recipe=recipe, started_at=started, finished_at=finished)


def _newest_first(stmt: sa.Select[Any]) -> sa.Select[Any]:
    return stmt.order_by(_runs.finished_at.desc(), _runs.run_id.desc())


def list_runs(engine: sa.Engine, experiment_id: str | None = None) -> list[RunInfo]:
    """Every recorded run, newest first (``finished_at``), optionally of one experiment."""
    stmt = _newest_first(sa.select(Run.__table__))
    if experiment_id is not None:
        stmt = stmt.where(_runs.experiment_id == experiment_id)
    with translate_errors(engine), engine.connect() as connection:
        return [_run_info(row) for row in connection.execute(stmt)]


def latest_run(engine: sa.Engine, experiment_id: str) -> RunInfo | None:
    """The experiment's most recently finished run, or ``None`` if it has none."""
    stmt = _newest_first(sa.select(Run.__table__)).where(_runs.experiment_id == experiment_id)
    with translate_errors(engine), engine.connect() as connection:
        row = connection.execute(stmt.limit(1)).first()
    return _run_info(row) if row is not None else None


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
    return _run_info(row)


def _resolve_run(engine: sa.Engine, experiment_id: str, run_id: str | None) -> RunInfo:
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


def well_table(engine: sa.Engine, experiment_id: str, run_id: str | None = None) -> list[WellRow]:
    """One row per well of a run (the experiment's latest run by default), plate/well order.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    experiment_id : str
    run_id : str, optional
        A specific run of the experiment.

    Returns
    -------
    list of WellRow
        Every well with at least one field in the run, including wells whose fields
        all failed (``n_fields == 0``).

    Raises
    ------
    InputError
        The experiment has no runs, or ``run_id`` is unknown or of another experiment.
    """
    run = _resolve_run(engine, experiment_id, run_id)
    is_ok = _images.status == "ok"
    counts = (
        sa.select(
            _images.plate,
            _images.well,
            sa.func.sum(sa.case((is_ok, 1), else_=0)).label("n_fields"),
            sa.func.sum(sa.case((is_ok, _images.object_count), else_=0)).label("n_objects"),
            sa.func.sum(sa.case((is_ok, 0), else_=1)).label("n_failed"),
        )
        .where(_images.run_id == run.run_id)
        .group_by(_images.plate, _images.well)
        .subquery()
    )
    area = (
        sa.select(_wells.plate, _wells.well, _wells.mean)
        .where(_wells.run_id == run.run_id, _wells.metric == AREA_METRIC)
        .subquery()
    )
    stmt = (
        sa.select(counts, area.c.mean.label("mean_area"))
        .select_from(
            counts.outerjoin(
                area, sa.and_(area.c.plate == counts.c.plate, area.c.well == counts.c.well)
            )
        )
        .order_by(counts.c.plate, counts.c.well)
    )
    with translate_errors(engine), engine.connect() as connection:
        rows = connection.execute(stmt).all()
    return [
        WellRow(
            plate=row.plate,
            well=row.well,
            n_fields=int(row.n_fields),
            n_objects=int(row.n_objects),
            mean_area=row.mean_area,
            n_failed=int(row.n_failed),
        )
        for row in rows
    ]


def image_table(engine: sa.Engine, run_id: str) -> list[ImageRow]:
    """Every field of view of a run with its metrics, in plate/well/field order.

    Raises
    ------
    InputError
        No run with that id is recorded.
    """
    get_run(engine, run_id)
    images = (
        sa.select(Image.__table__)
        .where(_images.run_id == run_id)
        .order_by(_images.plate, _images.well, _images.field, _images.image_id)
    )
    metrics = (
        sa.select(_image_metrics.image_id, _image_metrics.metric, _image_metrics.value)
        .where(_image_metrics.run_id == run_id)
        .order_by(_image_metrics.image_id, _image_metrics.metric)
    )
    with translate_errors(engine), engine.connect() as connection:
        image_rows = connection.execute(images).all()
        by_image: dict[str, dict[str, float | None]] = {}
        for image_id, metric, value in connection.execute(metrics):
            by_image.setdefault(image_id, {})[metric] = value
    return [
        ImageRow(
            image_id=row.image_id,
            plate=row.plate,
            well=row.well,
            field=row.field,
            status=row.status,
            object_count=row.object_count,
            mask_key=row.mask_key,
            error=row.error,
            cause=row.cause,
            metrics=by_image.get(row.image_id, {}),
        )
        for row in image_rows
    ]


def run_failures(engine: sa.Engine, run_id: str) -> list[FailureRow]:
    """The failed images of a run, by item id.

    Raises
    ------
    InputError
        No run with that id is recorded.
    """
    get_run(engine, run_id)
    stmt = (
        sa.select(
            _failures.item_id,
            _failures.kind,
            _failures.batch,
            _failures.error,
            _failures.cause,
            _failures.attempts,
        )
        .where(_failures.run_id == run_id)
        .order_by(_failures.item_id)
    )
    with translate_errors(engine), engine.connect() as connection:
        return [FailureRow(**row._asdict()) for row in connection.execute(stmt)]
