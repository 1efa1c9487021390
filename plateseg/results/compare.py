"""Two runs of one experiment side by side: per-well values, their differences, the
mean of every metric in each run, and the wells that changed most.

The question it answers: "what did the new recipe (or the fine-tuned model) change on
this plate?". Both runs must be of the same experiment, so the same wells are compared;
runs of different experiments are refused with both experiments named.

The arithmetic is in pure functions (:func:`pair_wells`, :func:`metric_deltas`,
:func:`most_changed`, :func:`correlation`) over numbers; :func:`compare_runs` reads the
results database (:mod:`plateseg.results`) and applies them.

>>> pairs = pair_wells({("P1", "A01"): 10.0, ("P1", "A02"): 5.0}, {("P1", "A01"): 13.0})
>>> [(p.well, p.diff) for p in pairs]
[('A01', 3.0), ('A02', None)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from plateseg.errors import InputError, NotFoundError
from plateseg.results import (
    RunInfo,
    get_run,
    run_metrics,
    well_metric_grid,
    well_metric_stats,
    well_metric_values,
)
from plateseg.results.heatmap import symmetric_limit

__all__ = [
    "Comparison",
    "MetricDelta",
    "PlateShape",
    "WellPair",
    "check_comparable",
    "compare_runs",
    "correlation",
    "metric_deltas",
    "most_changed",
    "pair_wells",
]

#: How many wells "the wells that changed most" lists by default.
TOP_CHANGED = 10

WellKey = tuple[str, str]


@dataclass(frozen=True)
class WellPair:
    """One well in both runs: its value in run A and run B (``None``: no value there,
    e.g. every field failed or the well was not imaged) and its layout."""

    plate: str
    well: str
    a: float | None
    b: float | None
    control: str = ""
    compound: str = ""
    concentration: float | None = None

    @property
    def diff(self) -> float | None:
        """B - A, or ``None`` unless both runs have a finite value."""
        if self.a is None or self.b is None or not math.isfinite(self.a - self.b):
            return None
        return self.b - self.a


@dataclass(frozen=True)
class MetricDelta:
    """The mean of one metric over the wells of run A and run B (each over its wells
    with a value) and the difference ``mean_b - mean_a``; ``relative`` is that
    difference over ``|mean_a|`` (``None`` when either mean is missing or A's is 0)."""

    metric: str
    mean_a: float | None
    mean_b: float | None
    n_a: int
    n_b: int

    @property
    def diff(self) -> float | None:
        if self.mean_a is None or self.mean_b is None:
            return None
        return self.mean_b - self.mean_a

    @property
    def relative(self) -> float | None:
        diff = self.diff
        if diff is None or self.mean_a is None or self.mean_a == 0:
            return None
        return diff / abs(self.mean_a)


@dataclass(frozen=True)
class PlateShape:
    """A plate of the experiment: its name and grid (8 x 12 for 96 wells)."""

    plate: str
    rows: int
    columns: int


@dataclass(frozen=True)
class Comparison:
    """Run B against run A on one metric, with every metric's mean in both."""

    experiment_id: str
    run_a: RunInfo
    run_b: RunInfo
    metric: str
    wells: list[WellPair]
    changed: list[WellPair]
    deltas: list[MetricDelta]
    plates: list[PlateShape]
    correlation: float | None
    diff_limit: float | None
    common_metrics: list[str] = field(default_factory=list)

    @property
    def n_both(self) -> int:
        """Wells with a value in both runs (the scatter's points)."""
        return sum(1 for w in self.wells if w.diff is not None)

    @property
    def mean_diff(self) -> float | None:
        diffs = [d for w in self.wells if (d := w.diff) is not None]
        return sum(diffs) / len(diffs) if diffs else None


def pair_wells(
    a: Mapping[WellKey, float | None],
    b: Mapping[WellKey, float | None],
    layout: Mapping[WellKey, tuple[str, str, float | None]] | None = None,
) -> list[WellPair]:
    """Every well of either run, by plate and well, with its value in each (``None``
    where a run has no value or did not image it) and its layout
    (``layout[(plate, well)] = (control, compound, concentration)``). Non-finite values
    count as no value."""

    def clean(v: float | None) -> float | None:
        return v if v is not None and math.isfinite(v) else None

    layout = layout or {}
    pairs = []
    for key in sorted(set(a) | set(b)):
        control, compound, concentration = layout.get(key, ("", "", None))
        pairs.append(
            WellPair(
                plate=key[0],
                well=key[1],
                a=clean(a.get(key)),
                b=clean(b.get(key)),
                control=control,
                compound=compound,
                concentration=concentration,
            )
        )
    return pairs


def most_changed(pairs: Iterable[WellPair], top: int = TOP_CHANGED) -> list[WellPair]:
    """The ``top`` wells with the largest ``|B - A|`` (ties by plate and well); wells
    without a value in both runs are not ranked."""
    ranked = [p for p in pairs if p.diff is not None]
    ranked.sort(key=lambda p: (-abs(p.diff or 0.0), p.plate, p.well))
    return ranked[: max(top, 0)]


def correlation(pairs: Iterable[WellPair]) -> float | None:
    """Pearson's r of A and B over the wells with both values; ``None`` with fewer than
    three such wells or when either run is constant over them."""
    points = [(p.a, p.b) for p in pairs if p.diff is not None]
    if len(points) < 3:
        return None
    n = len(points)
    xs = [float(x) for x, _ in points if x is not None]
    ys = [float(y) for _, y in points if y is not None]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return sxy / math.sqrt(sxx * syy)


def metric_deltas(
    a: Mapping[str, Sequence[float | None]],
    b: Mapping[str, Sequence[float | None]],
) -> list[MetricDelta]:
    """Per metric (of either run, by name): the mean of its well values in A and in B,
    over the wells with a finite value (a metric one run lacks has ``None`` there)."""

    def mean(values: Sequence[float | None] | None) -> tuple[float | None, int]:
        finite = [v for v in values or () if v is not None and math.isfinite(v)]
        return (sum(finite) / len(finite) if finite else None), len(finite)

    deltas = []
    for metric in sorted(set(a) | set(b)):
        mean_a, n_a = mean(a.get(metric))
        mean_b, n_b = mean(b.get(metric))
        deltas.append(MetricDelta(metric, mean_a, mean_b, n_a, n_b))
    return deltas


def check_comparable(a: RunInfo, b: RunInfo) -> None:
    """Refuse the same run twice, and runs of different experiments (both named)."""
    if a.run_id == b.run_id:
        raise InputError(f"pick two different runs to compare (both are {a.run_id!r})")
    if a.experiment_id != b.experiment_id:
        raise InputError(
            f"run {a.run_id!r} is of experiment {a.experiment_id!r} and run {b.run_id!r} "
            f"of experiment {b.experiment_id!r}: only runs of the same experiment are "
            "compared (the same plates and wells)"
        )


def _by_metric(engine: sa.Engine, run_id: str) -> dict[str, list[float | None]]:
    values: dict[str, list[float | None]] = {}
    for stat in well_metric_stats(engine, run_id):
        values.setdefault(stat.metric, []).append(stat.mean)
    return values


def compare_runs(
    engine: sa.Engine,
    run_a: str,
    run_b: str,
    metric: str = "Count_Nuclei",
    *,
    top: int = TOP_CHANGED,
) -> Comparison:
    """Run B against run A: per-well values of ``metric`` (the well means stored at
    aggregation), B - A per well, the ``top`` wells that changed most, Pearson's r, and
    the mean of every metric in both runs.

    Raises
    ------
    NotFoundError
        An unknown run, or a ``metric`` the two runs do not both have (the message lists
        the ones they share).
    InputError
        The same run twice, or runs of different experiments (both named).
    """
    a, b = get_run(engine, run_a), get_run(engine, run_b)
    check_comparable(a, b)
    metrics_a, metrics_b = run_metrics(engine, run_a), run_metrics(engine, run_b)
    common = sorted(set(metrics_a) & set(metrics_b))
    if metric not in common:
        shown = ", ".join(common[:20]) or "none"
        raise NotFoundError(
            f"runs {run_a!r} and {run_b!r} do not both have the metric {metric!r} "
            f"(they share: {shown})"
        )
    wells_a = well_metric_values(engine, run_a, metric)
    wells_b = well_metric_values(engine, run_b, metric)
    layout = {
        (w.plate, w.well): (w.control, w.compound, w.concentration) for w in wells_a + wells_b
    }
    pairs = pair_wells(
        {(w.plate, w.well): w.value for w in wells_a},
        {(w.plate, w.well): w.value for w in wells_b},
        layout,
    )
    grid = well_metric_grid(engine, a.experiment_id, metric, run_b)
    shapes = {p.plate: PlateShape(p.plate, len(p.rows), len(p.columns)) for p in grid.plates}
    grid_a = well_metric_grid(engine, a.experiment_id, metric, run_a)
    for p in grid_a.plates:
        shapes.setdefault(p.plate, PlateShape(p.plate, len(p.rows), len(p.columns)))
    return Comparison(
        experiment_id=a.experiment_id,
        run_a=a,
        run_b=b,
        metric=metric,
        wells=pairs,
        changed=most_changed(pairs, top),
        deltas=metric_deltas(_by_metric(engine, run_a), _by_metric(engine, run_b)),
        plates=[shapes[name] for name in sorted(shapes)],
        correlation=correlation(pairs),
        diff_limit=symmetric_limit((p.diff for p in pairs), 100.0),
        common_metrics=common,
    )
