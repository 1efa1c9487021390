"""Read API over the results database: experiments, runs, wells, images, QC and exports.

Used by the CLI (``plateseg results``, ``plateseg status``) and the web UI. Every
function takes an engine (:func:`plateseg.db.get_engine`) and returns frozen
dataclasses; none writes. Database faults surface as
:class:`~plateseg.errors.DatabaseUnavailableError` / :class:`~plateseg.errors.DatabaseError`;
an experiment or run that is not recorded raises :class:`~plateseg.errors.NotFoundError`
(an :class:`~plateseg.errors.InputError`). The queries live in :mod:`plateseg.db.reads`
and :mod:`plateseg.db.export`; runs are found by :mod:`plateseg.results.runs`, per-well
reads (heatmap, dose-response points, spread, plate QC) are :mod:`plateseg.results.wells`.
This package is the one surface callers import: it re-exports both.

>>> from plateseg.db import get_engine  # doctest: +SKIP
>>> for row in well_table(get_engine(), "DEMO-001"):  # doctest: +SKIP
...     print(row.plate, row.well, row.n_objects, row.mean_area)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from plateseg.db import export as _export
from plateseg.db.engine import translate_errors
from plateseg.db.models import Image, ImageMetric, RunFailure, WellMetric
from plateseg.db.reads import (
    ExperimentInfo,
    PlateGrid,
    PlateQCRow,
    WellGrid,
    WellStat,
    WellValue,
    get_experiment,
    list_experiments,
    plate_qc_rows,
    run_metric_names,
)
from plateseg.db.rows import FailureRow, ImageRow, RunInfo, WellRow
from plateseg.errors import InputError
from plateseg.results.runs import get_run, latest_run, list_runs, resolve_run
from plateseg.results.wells import (
    plate_qc,
    well_metric_grid,
    well_metric_stats,
    well_metric_values,
)
from plateseg.store import Store

__all__ = [
    "AREA_METRIC",
    "ExperimentInfo",
    "FailureRow",
    "ImagePage",
    "ImageRow",
    "PlateGrid",
    "PlateQCRow",
    "RunDetail",
    "RunInfo",
    "WellGrid",
    "WellRow",
    "WellStat",
    "WellValue",
    "export_run",
    "get_experiment",
    "get_run",
    "image_page",
    "image_table",
    "latest_run",
    "list_experiments",
    "list_runs",
    "plate_qc",
    "run_detail",
    "run_failures",
    "run_metrics",
    "well_metric_grid",
    "well_metric_stats",
    "well_metric_values",
    "well_table",
]

#: Per-image metric holding the mean nuclear area in pixels (the well table's ``mean_area``).
AREA_METRIC = "Mean_Nuclei_AreaShape_Area"

_images = Image.__table__.c
_image_metrics = ImageMetric.__table__.c
_wells = WellMetric.__table__.c
_failures = RunFailure.__table__.c


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
    run = resolve_run(engine, experiment_id, run_id)
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
            qc_flags=row.qc_flags,
            channels=json.loads(row.channels_json or "{}"),
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


def run_metrics(engine: sa.Engine, run_id: str) -> list[str]:
    """Names of the metrics a run measured (summarised per well), sorted.

    Raises
    ------
    NotFoundError
        No run with that id is recorded.
    """
    get_run(engine, run_id)
    return run_metric_names(engine, run_id)


@dataclass(frozen=True)
class RunDetail:
    """A run with everything a detail page shows: failures, metrics and plate QC."""

    run: RunInfo
    failures: list[FailureRow]
    metrics: list[str]
    plate_qc: list[PlateQCRow]


def run_detail(engine: sa.Engine, run_id: str) -> RunDetail:
    """One run with its failures, metric names and plate QC (:class:`NotFoundError` if unknown)."""
    return RunDetail(
        run=get_run(engine, run_id),
        failures=run_failures(engine, run_id),
        metrics=run_metric_names(engine, run_id),
        plate_qc=plate_qc_rows(engine, run_id),
    )


@dataclass(frozen=True)
class ImagePage:
    """One page of a run's images (``rows``) out of ``total`` matching images."""

    total: int
    rows: list[ImageRow]


def image_page(
    engine: sa.Engine,
    run_id: str,
    *,
    sort: str = "image_id",
    descending: bool = False,
    status: str | None = None,
    plate: str | None = None,
    well: str | None = None,
    qc_flag: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> ImagePage:
    """Images of a run, sorted, filtered and paged, for the UI's image table.

    Parameters
    ----------
    sort : str
        An image column (``image_id``, ``plate``, ``well``, ``field``, ``status``,
        ``object_count``, ``qc_flags``) or any metric name of the run; NULLs last,
        ties broken by image id.
    status, plate, well : str, optional
        Exact-match filters.
    qc_flag : str, optional
        Only images carrying this QC flag (e.g. ``"no_objects"``).
    limit, offset : int
        Page size (1..10000) and start.

    Raises
    ------
    NotFoundError
        No run with that id is recorded.
    InputError
        Bad paging values, or ``sort`` is neither a column nor a metric of the run.
    """
    page = _export.image_page(
        engine,
        run_id,
        sort=sort,
        descending=descending,
        status=status,
        plate=plate,
        well=well,
        qc_flag=qc_flag,
        limit=limit,
        offset=offset,
    )
    rows = [
        ImageRow(
            image_id=r["image_id"],
            plate=r["plate"],
            well=r["well"],
            field=r["field"],
            status=r["status"],
            object_count=r["object_count"],
            mask_key=r["mask_key"],
            error=r["error"],
            cause=r["cause"],
            metrics=r["metrics"],
            qc_flags=r["qc_flags"],
            channels=json.loads(r["channels_json"] or "{}"),
        )
        for r in page.rows
    ]
    return ImagePage(total=page.total, rows=rows)


def export_run(
    engine: sa.Engine,
    run_id: str,
    fmt: Literal["csv", "parquet"] = "csv",
    *,
    level: Literal["images", "wells", "objects"] = "images",
    store: Store | None = None,
) -> bytes:
    """A run's table as CSV or Parquet bytes, ready to download.

    ``level="images"``: one row per field of view with ``status``, ``error`` and
    ``cause`` (failed images), metrics as columns; ``"wells"``: one row per imaged well
    with ``n_fields``, ``n_objects``, ``n_failed``, well means as columns; ``"objects"``:
    the run's per-object Parquet parts from ``store``, joined with the layout annotations.
    The web UI's downloads and ``plateseg results --export`` are these bytes.

    Raises
    ------
    NotFoundError
        No run with that id is recorded.
    InputError
        Unknown format or level, or ``level="objects"`` without a store.
    """
    if fmt not in ("csv", "parquet"):
        raise InputError(f"export format {fmt!r} is not one of csv, parquet")
    return _export.table_bytes(_export.export_table(engine, run_id, level, store), fmt)
