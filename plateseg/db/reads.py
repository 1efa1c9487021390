"""Read queries behind :mod:`plateseg.results`: experiments, metrics, heatmaps, plate QC.

Frozen dataclasses out, nothing written. Unknown experiments, runs and metrics raise
:class:`~plateseg.errors.NotFoundError` (a 404 in the web API).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from plateseg.db.engine import translate_errors
from plateseg.db.models import Experiment, Image, Plate, PlateQC, Run, Well, WellMetric
from plateseg.errors import NotFoundError

__all__ = [
    "ExperimentInfo",
    "PlateGrid",
    "PlateQCRow",
    "WellGrid",
    "WellStat",
    "WellValue",
    "get_experiment",
    "list_experiments",
    "plate_qc_rows",
    "run_metric_names",
    "well_grid",
    "well_stats",
    "well_values",
]

_exp = Experiment.__table__.c
_runs = Run.__table__.c
_plates = Plate.__table__.c
_wells = Well.__table__.c
_images = Image.__table__.c
_wm = WellMetric.__table__.c
_qc = PlateQC.__table__.c


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class ExperimentInfo:
    """One experiment with at least one run.

    ``n_plates``/``n_wells`` count plates and imaged wells over all its runs;
    ``n_fields`` the fields of view of its latest run (``latest_run_id``).
    """

    experiment_id: str
    created_at: datetime
    updated_at: datetime
    n_runs: int
    n_plates: int
    n_wells: int
    n_fields: int
    latest_run_id: str | None


def _experiment_stmt() -> sa.Select[Any]:
    n_runs = (
        sa.select(sa.func.count())
        .where(_runs.experiment_id == _exp.experiment_id)
        .scalar_subquery()
    )
    n_plates = (
        sa.select(sa.func.count())
        .where(_plates.experiment_id == _exp.experiment_id)
        .scalar_subquery()
    )
    n_wells = (
        sa.select(sa.func.coalesce(sa.func.sum(_plates.n_wells), 0))
        .where(_plates.experiment_id == _exp.experiment_id)
        .scalar_subquery()
    )
    latest = (
        sa.select(_runs.run_id)
        .where(_runs.experiment_id == _exp.experiment_id)
        .order_by(_runs.finished_at.desc(), _runs.run_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.select(
        _exp.experiment_id,
        _exp.created_at,
        _exp.updated_at,
        n_runs.label("n_runs"),
        n_plates.label("n_plates"),
        n_wells.label("n_wells"),
        latest.label("latest_run_id"),
    ).order_by(_exp.experiment_id)


def _experiments(engine: sa.Engine, experiment_id: str | None) -> list[ExperimentInfo]:
    stmt = _experiment_stmt()
    if experiment_id is not None:
        stmt = stmt.where(_exp.experiment_id == experiment_id)
    fields = sa.select(_images.run_id, sa.func.count().label("n")).group_by(_images.run_id)
    with translate_errors(engine), engine.connect() as connection:
        rows = connection.execute(stmt).all()
        latest = [row.latest_run_id for row in rows if row.latest_run_id]
        counts: dict[str, int] = {}
        if latest:
            for run_id, n in connection.execute(fields.where(_images.run_id.in_(latest))):
                counts[run_id] = int(n)
    return [
        ExperimentInfo(
            experiment_id=row.experiment_id,
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
            n_runs=int(row.n_runs),
            n_plates=int(row.n_plates),
            n_wells=int(row.n_wells),
            n_fields=int(counts.get(row.latest_run_id, 0)),
            latest_run_id=row.latest_run_id,
        )
        for row in rows
    ]


def list_experiments(engine: sa.Engine) -> list[ExperimentInfo]:
    """Every experiment with a recorded run, by id, with plate/well/field counts."""
    return _experiments(engine, None)


def get_experiment(engine: sa.Engine, experiment_id: str) -> ExperimentInfo:
    """One experiment; :class:`NotFoundError` if it has no recorded run."""
    found = _experiments(engine, experiment_id)
    if not found:
        raise NotFoundError(f"experiment {experiment_id!r} has no recorded runs")
    return found[0]


def run_metric_names(engine: sa.Engine, run_id: str) -> list[str]:
    """Names of the metrics summarised per well in a run, sorted (may be empty)."""
    stmt = sa.select(_wm.metric).where(_wm.run_id == run_id).distinct().order_by(_wm.metric)
    with translate_errors(engine), engine.connect() as connection:
        return list(connection.execute(stmt).scalars())


@dataclass(frozen=True)
class PlateGrid:
    """One plate as a grid for a heatmap.

    Attributes
    ----------
    plate : str
    plate_format : int
        96, 384 or 1536; ``rows`` x ``columns`` spans the whole plate.
    rows : list of str
        Row letters, ``A`` first.
    columns : list of int
        Column numbers from 1.
    values : list of list of float or None
        ``values[r][c]``: the well's mean of the metric (``None``: no value).
    n_fields : list of list of int
        Fields that contributed to each value (0 where none).
    control : list of list of str
        Each well's control role ("", "neg", "pos") from the layout.
    condition : list of list of str
        Each well's condition from the layout ("" when none).
    """

    plate: str
    plate_format: int
    rows: list[str]
    columns: list[int]
    values: list[list[float | None]]
    n_fields: list[list[int]]
    control: list[list[str]]
    condition: list[list[str]]


@dataclass(frozen=True)
class WellGrid:
    """Heatmap data of one metric over every plate of a run."""

    experiment_id: str
    run_id: str
    metric: str
    plates: list[PlateGrid]


def _row_letters(count: int) -> list[str]:
    letters = [chr(ord("A") + i) for i in range(26)]
    two = [a + b for a in letters for b in letters]
    return (letters + two)[:count]


def well_grid(engine: sa.Engine, experiment_id: str, run_id: str, metric: str) -> WellGrid:
    """The well means of ``metric`` in ``run_id`` laid out on each plate.

    Raises
    ------
    NotFoundError
        The run has no such metric (the message lists the ones it has).
    """
    from plateseg.plate.layout import PLATE_FORMATS

    known = run_metric_names(engine, run_id)
    if metric not in known:
        shown = ", ".join(known[:20]) or "none"
        raise NotFoundError(f"run {run_id!r} has no metric {metric!r} (it has: {shown})")
    values = sa.select(_wm.plate, _wm.well, _wm.mean, _wm.n_fields).where(
        _wm.run_id == run_id, _wm.metric == metric
    )
    plates = sa.select(_plates.plate, _plates.plate_format).where(
        _plates.experiment_id == experiment_id,
        _plates.plate.in_(sa.select(_images.plate).where(_images.run_id == run_id).distinct()),
    )
    wells = sa.select(
        _wells.plate, _wells.well, _wells.row, _wells.column, _wells.control, _wells.condition
    ).where(_wells.experiment_id == experiment_id)
    with translate_errors(engine), engine.connect() as connection:
        formats = {p: f for p, f in connection.execute(plates.order_by(_plates.plate))}
        means = {(r.plate, r.well): (r.mean, r.n_fields) for r in connection.execute(values)}
        layout = {(r.plate, r.well): r for r in connection.execute(wells)}
    grids = []
    for plate, size in formats.items():
        n_rows, n_cols = PLATE_FORMATS.get(size or 96, PLATE_FORMATS[1536])
        letters, columns = _row_letters(n_rows), list(range(1, n_cols + 1))
        grid_v: list[list[float | None]] = [[None] * n_cols for _ in letters]
        grid_n = [[0] * n_cols for _ in letters]
        grid_c = [[""] * n_cols for _ in letters]
        grid_k = [[""] * n_cols for _ in letters]
        position = {letter: i for i, letter in enumerate(letters)}
        for (p, _well), row in layout.items():
            if p != plate or row.row not in position or row.column > n_cols:
                continue
            r, c = position[row.row], row.column - 1
            grid_c[r][c], grid_k[r][c] = row.control, row.condition
            mean, n = means.get((plate, row.well), (None, 0))
            grid_v[r][c], grid_n[r][c] = mean, int(n)
        grids.append(
            PlateGrid(plate, int(size or 96), letters, columns, grid_v, grid_n, grid_c, grid_k)
        )
    return WellGrid(experiment_id=experiment_id, run_id=run_id, metric=metric, plates=grids)


@dataclass(frozen=True)
class PlateQCRow:
    """Z'-factor and signal-to-background of one metric on one plate (see ``plate_qc``)."""

    plate: str
    metric: str
    n_pos: int
    n_neg: int
    mean_pos: float | None
    mean_neg: float | None
    std_pos: float | None
    std_neg: float | None
    z_prime: float | None
    signal_to_background: float | None


def plate_qc_rows(engine: sa.Engine, run_id: str, metric: str | None = None) -> list[PlateQCRow]:
    """The plate QC rows of a run (optionally one metric), by plate and metric."""
    stmt = sa.select(PlateQC.__table__).where(_qc.run_id == run_id)
    if metric is not None:
        stmt = stmt.where(_qc.metric == metric)
    with translate_errors(engine), engine.connect() as connection:
        rows = connection.execute(stmt.order_by(_qc.plate, _qc.metric)).all()
    return [PlateQCRow(**{k: v for k, v in row._asdict().items() if k != "run_id"}) for row in rows]


@dataclass(frozen=True)
class WellValue:
    """One imaged well of a run: its layout annotations and its mean of one metric.

    ``value`` is ``None`` when the well has no value (every field failed, or none was
    finite); ``n_fields`` counts the fields behind it.
    """

    plate: str
    well: str
    compound: str
    concentration: float | None
    control: str
    value: float | None
    n_fields: int


def well_values(engine: sa.Engine, experiment_id: str, run_id: str, metric: str) -> list[WellValue]:
    """Every well imaged in ``run_id`` with its layout and its mean of ``metric``, by
    plate and well (the metric is not checked: an unknown one gives ``None`` values)."""
    imaged = (
        sa.select(_images.plate, _images.well).where(_images.run_id == run_id).distinct().subquery()
    )
    values = (
        sa.select(_wm.plate, _wm.well, _wm.mean, _wm.n_fields)
        .where(_wm.run_id == run_id, _wm.metric == metric)
        .subquery()
    )
    layout = sa.select(Well.__table__).where(_wells.experiment_id == experiment_id).subquery()
    at = {"plate": imaged.c.plate, "well": imaged.c.well}
    stmt = (
        sa.select(
            imaged.c.plate,
            imaged.c.well,
            layout.c.compound,
            layout.c.concentration,
            layout.c.control,
            values.c.mean,
            values.c.n_fields,
        )
        .select_from(
            imaged.outerjoin(layout, sa.and_(*(layout.c[k] == v for k, v in at.items()))).outerjoin(
                values, sa.and_(*(values.c[k] == v for k, v in at.items()))
            )
        )
        .order_by(imaged.c.plate, imaged.c.well)
    )
    with translate_errors(engine), engine.connect() as connection:
        rows = connection.execute(stmt).all()
    return [
        WellValue(
            plate=row.plate,
            well=row.well,
            compound=row.compound or "",
            concentration=row.concentration,
            control=row.control or "",
            value=row.mean,
            n_fields=int(row.n_fields or 0),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class WellStat:
    """One metric of one well of a run as stored: the mean and population SD (ddof=0)
    over the well's fields with a finite value, and how many fields that is."""

    plate: str
    well: str
    metric: str
    mean: float | None
    std: float | None
    n_fields: int


def well_stats(engine: sa.Engine, run_id: str, metric: str | None = None) -> list[WellStat]:
    """The stored per-well summaries of a run (every metric, or one), by plate, well and
    metric (the run and metric are not checked: unknown ones give an empty list)."""
    stmt = sa.select(_wm.plate, _wm.well, _wm.metric, _wm.mean, _wm.std, _wm.n_fields).where(
        _wm.run_id == run_id
    )
    if metric is not None:
        stmt = stmt.where(_wm.metric == metric)
    with translate_errors(engine), engine.connect() as connection:
        rows = connection.execute(stmt.order_by(_wm.plate, _wm.well, _wm.metric)).all()
    return [
        WellStat(
            plate=row.plate,
            well=row.well,
            metric=row.metric,
            mean=row.mean,
            std=row.std,
            n_fields=int(row.n_fields or 0),
        )
        for row in rows
    ]
