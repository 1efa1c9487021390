"""Per-well reads of a run: heatmap grids, dose-response points, per-well spread and
plate QC (Z'-factor).

Part of the read API (:mod:`plateseg.results` re-exports every public name).
"""

from __future__ import annotations

import sqlalchemy as sa

from plateseg.db.reads import (
    PlateQCRow,
    WellGrid,
    WellStat,
    WellValue,
    plate_qc_rows,
    well_grid,
    well_stats,
    well_values,
)
from plateseg.results.runs import get_run, require_metric, resolve_run

__all__ = ["plate_qc", "well_metric_grid", "well_metric_stats", "well_metric_values"]


def well_metric_grid(
    engine: sa.Engine, experiment_id: str, metric: str, run_id: str | None = None
) -> WellGrid:
    """Heatmap data: the well means of ``metric`` on every plate of a run.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    experiment_id : str
    metric : str
        Any metric of the run (see :func:`run_metrics`), e.g. ``"Count_Nuclei"``.
    run_id : str, optional
        A run of the experiment; its latest run by default.

    Returns
    -------
    WellGrid
        One :class:`PlateGrid` per plate: ``values[r][c]`` (float or None) over the whole
        plate format (8 x 12 for 96 wells), with ``n_fields``, ``control`` and
        ``condition`` grids of the same shape.

    Raises
    ------
    NotFoundError
        Unknown experiment, run or metric (the message lists the run's metrics).
    InputError
        ``run_id`` belongs to another experiment.
    """
    run = resolve_run(engine, experiment_id, run_id)
    return well_grid(engine, experiment_id, run.run_id, metric)


def well_metric_values(engine: sa.Engine, run_id: str, metric: str) -> list[WellValue]:
    """Every well imaged in a run with its layout (compound, concentration, control) and
    its mean of ``metric``: the points of a dose-response fit.

    Raises
    ------
    NotFoundError
        Unknown run or metric (the message lists the run's metrics).
    """
    run = get_run(engine, run_id)
    require_metric(engine, run_id, metric)
    return well_values(engine, run.experiment_id, run_id, metric)


def well_metric_stats(engine: sa.Engine, run_id: str, metric: str | None = None) -> list[WellStat]:
    """Every stored per-well summary of a run (or of one metric): mean, population SD
    and number of fields, by plate, well and metric.

    Raises
    ------
    NotFoundError
        Unknown run, or a ``metric`` the run does not have (the message lists its metrics).
    """
    get_run(engine, run_id)
    if metric is not None:
        require_metric(engine, run_id, metric)
    return well_stats(engine, run_id, metric)


def plate_qc(engine: sa.Engine, run_id: str, metric: str | None = None) -> list[PlateQCRow]:
    """Z'-factor and signal-to-background per plate and metric of a run.

    Empty when the layout annotates no positive and negative control wells.

    Raises
    ------
    NotFoundError
        No run with that id is recorded.
    """
    get_run(engine, run_id)
    return plate_qc_rows(engine, run_id, metric)
