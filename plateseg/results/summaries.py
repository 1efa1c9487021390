"""Summaries of a run: per-well and per-experiment statistics, image QC flags, plate QC.

Per well, over its OK fields and for every metric: mean, median and **population**
standard deviation (ddof=0, so one field gives 0) of the finite per-field values;
``n_fields`` counts those values and ``n_objects`` sums the fields' object counts.
Per experiment, the same three statistics over the wells' means (``n_wells``).
Non-finite values (NaN, ±inf) are stored as NULL and left out of every statistic.

Plate QC, per plate and metric, over the **well means** of the annotated control wells
(Zhang, Chung & Oldenburg 1999, J Biomol Screen 4:67)::

    Z' = 1 - 3 (std_pos + std_neg) / |mean_pos - mean_neg|     (sample std, ddof=1)
    S/B = mean_pos / mean_neg

The control SDs are **sample** standard deviations (n - 1 in the denominator), the
estimator of the paper and of the screening literature that quotes it: the control wells
are a sample of the wells the assay could produce, and the population SD would make
Z' look better the fewer controls a plate has. Z' needs at least two wells of each kind
(``None`` otherwise, or when the means are equal); S/B needs one of each and a non-zero
negative mean. :func:`z_prime_band` names the quality band. Statistics use
``math.fsum`` so they do not depend on the order of the inputs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from plateseg.contracts import ImageSummary

__all__ = [
    "SIGMA_DEFINITION",
    "ZPrimeBand",
    "finite",
    "image_qc_flags",
    "plate_qc",
    "sample_std",
    "stats",
    "summarise",
    "z_prime",
    "z_prime_band",
    "z_prime_note",
]

#: How the control SDs of Z' are computed, in words (shown beside every Z').
SIGMA_DEFINITION = (
    "sample standard deviation (n \u2212 1) of the control wells' means, "
    "as in Zhang, Chung & Oldenburg 1999"
)

ZPrimeBand = Literal["excellent", "marginal", "unusable"]


def finite(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` if it is missing, NaN or infinite."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def stats(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """Mean, median and population std (ddof=0) of ``values``; ``None`` x 3 if empty.

    >>> stats([10.0, 20.0, 30.0])[:2]
    (20.0, 20.0)
    """
    if not values:
        return None, None, None
    n = len(values)
    mean = math.fsum(values) / n
    ordered = sorted(values)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / n)
    return mean, median, std


def sample_std(values: list[float]) -> float | None:
    """Sample standard deviation (ddof=1) of ``values``; ``None`` for fewer than two.

    >>> sample_std([8.0, 10.0, 12.0])
    2.0
    """
    if len(values) < 2:
        return None
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (len(values) - 1))


def summarise(
    images: Iterable[ImageSummary],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-well and per-experiment summaries of the OK images (see the module docstring).

    Returns
    -------
    wells : list of dict
        ``well_metrics`` rows: plate, well, metric, mean, median, std, n_fields, n_objects.
    experiment : list of dict
        ``experiment_metrics`` rows: metric, mean, median, std, n_wells.
    """
    by_well: dict[tuple[str, str], list[ImageSummary]] = defaultdict(list)
    for image in images:
        if image.status == "ok":
            by_well[(image.plate, image.well)].append(image)
    wells: list[dict[str, Any]] = []
    well_means: dict[str, list[float]] = defaultdict(list)
    for (plate, well), fields in sorted(by_well.items()):
        n_objects = sum(image.object_count for image in fields)
        for metric in sorted({name for image in fields for name in image.metrics}):
            values = [v for image in fields if (v := finite(image.metrics.get(metric))) is not None]
            mean, median, std = stats(values)
            wells.append(
                {
                    "plate": plate,
                    "well": well,
                    "metric": metric,
                    "mean": mean,
                    "median": median,
                    "std": std,
                    "n_fields": len(values),
                    "n_objects": n_objects,
                }
            )
            if mean is not None:
                well_means[metric].append(mean)
    experiment = []
    for metric in sorted({row["metric"] for row in wells}):
        mean, median, std = stats(well_means.get(metric, []))
        experiment.append(
            {
                "metric": metric,
                "mean": mean,
                "median": median,
                "std": std,
                "n_wells": len(well_means.get(metric, [])),
            }
        )
    return wells, experiment


def z_prime(positive: list[float], negative: list[float]) -> float | None:
    """Z'-factor of two control populations (sample std, ddof=1), ``None`` if undefined.

    >>> round(z_prime([100.0, 110.0, 90.0], [10.0, 12.0, 8.0]), 4)
    0.6
    """
    std_p, std_n = sample_std(positive), sample_std(negative)
    if std_p is None or std_n is None:
        return None
    band = abs(math.fsum(positive) / len(positive) - math.fsum(negative) / len(negative))
    if band == 0:
        return None
    return 1.0 - 3.0 * (std_p + std_n) / band


def z_prime_band(value: float | None) -> ZPrimeBand | None:
    """The quality band of a Z'-factor: ``excellent`` (>= 0.5), ``marginal`` (0 to 0.5),
    ``unusable`` (< 0); ``None`` when Z' is undefined.

    >>> z_prime_band(0.5), z_prime_band(0.0), z_prime_band(-0.2), z_prime_band(None)
    ('excellent', 'marginal', 'unusable', None)
    """
    if value is None or not math.isfinite(value):
        return None
    if value >= 0.5:
        return "excellent"
    return "marginal" if value >= 0.0 else "unusable"


def z_prime_note(n_pos: int, n_neg: int, value: float | None) -> str:
    """Why a plate has no Z' (``""`` when it has one).

    >>> z_prime_note(1, 3, None)
    "Z' needs at least 2 positive and 2 negative control wells with a value (has 1 and 3)"
    """
    if value is not None:
        return ""
    if n_pos < 2 or n_neg < 2:
        return (
            "Z' needs at least 2 positive and 2 negative control wells with a value "
            f"(has {n_pos} and {n_neg})"
        )
    return "Z' is undefined: the positive and negative control means are equal"


def plate_qc(
    wells: Iterable[Mapping[str, Any]], controls: Mapping[tuple[str, str], str]
) -> list[dict[str, Any]]:
    """``plate_qc`` rows from ``well_metrics`` rows and the wells' control roles.

    Parameters
    ----------
    wells : iterable of mapping
        ``well_metrics`` rows (plate, well, metric, mean, ...).
    controls : mapping of (plate, well) to str
        ``"pos"`` / ``"neg"`` for control wells (others are ignored).

    Returns
    -------
    list of dict
        One row per (plate, metric) of every plate with at least one positive and one
        negative control well that has a finite mean for the metric; ``std_pos`` /
        ``std_neg`` are sample SDs (``None`` for a single well).
    """
    groups: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: {"pos": [], "neg": []}
    )
    for row in wells:
        role = controls.get((row["plate"], row["well"]), "")
        if role in ("pos", "neg") and row["mean"] is not None:
            groups[(row["plate"], row["metric"])][role].append(float(row["mean"]))
    out = []
    for (plate, metric), by_role in sorted(groups.items()):
        positive, negative = by_role["pos"], by_role["neg"]
        if not positive or not negative:
            continue
        mean_p, mean_n = stats(positive)[0], stats(negative)[0]
        ratio = mean_p / mean_n if mean_n and mean_p is not None else None
        out.append(
            {
                "plate": plate,
                "metric": metric,
                "n_pos": len(positive),
                "n_neg": len(negative),
                "mean_pos": mean_p,
                "mean_neg": mean_n,
                "std_pos": sample_std(positive),
                "std_neg": sample_std(negative),
                "z_prime": z_prime(positive, negative),
                "signal_to_background": finite(ratio),
            }
        )
    return out


def image_qc_flags(image: ImageSummary) -> str:
    """Comma-separated QC flags of one image ("" when clean).

    ``failed`` (status error), ``no_objects`` (OK but nothing segmented),
    ``saturated`` / ``blurry`` (the ``QC_Saturated`` / ``QC_Blurry`` measurements are 1),
    ``nonfinite_metric`` (a metric is missing, NaN or infinite).

    >>> from plateseg.contracts import ImageSummary
    >>> image_qc_flags(ImageSummary(image_id="i", plate="P", well="A01", field=1,
    ...                             status="ok", metrics={"x": float("nan")}))
    'no_objects,nonfinite_metric'
    >>> image_qc_flags(ImageSummary(image_id="i", plate="P", well="A01", field=1,
    ...                             status="ok", object_count=3, metrics={"QC_Saturated": 1.0}))
    'saturated'
    """
    if image.status != "ok":
        return "failed"
    flags = []
    if image.object_count == 0:
        flags.append("no_objects")
    for flag, metric in (("saturated", "QC_Saturated"), ("blurry", "QC_Blurry")):
        if image.metrics.get(metric) == 1.0:
            flags.append(flag)
    if any(finite(value) is None for value in image.metrics.values()):
        flags.append("nonfinite_metric")
    return ",".join(flags)
