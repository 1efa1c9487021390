"""What a plate heatmap colours by: a robust colour range and the spread across fields.

Pure functions over numbers; the web's heatmap route and the run comparison use them.

>>> robust_range([1.0, 2.0, 3.0, 4.0, 100.0], low=0, high=75)
(1.0, 4.0)
>>> round(field_cv(mean=10.0, std=1.0, n_fields=2) or 0, 3)  # sample SD: 1 * sqrt(2/1)
14.142
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["PERCENTILES", "field_cv", "robust_range", "symmetric_limit"]

#: The robust colour range: values below the 2nd and above the 98th percentile of the
#: wells are drawn at the ends of the scale, so one empty or saturated well does not
#: flatten the rest of the plate.
PERCENTILES = (2.0, 98.0)


def _finite(values: Iterable[float | None]) -> np.ndarray:
    array = np.array([v for v in values if v is not None], dtype=float)
    return array[np.isfinite(array)]


def robust_range(
    values: Iterable[float | None],
    low: float = PERCENTILES[0],
    high: float = PERCENTILES[1],
) -> tuple[float, float] | None:
    """The ``low``-th and ``high``-th percentiles (linear interpolation) of the finite
    values, or ``None`` when there are none. ``None`` and non-finite values are ignored."""
    if not 0 <= low < high <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    finite = _finite(values)
    if finite.size == 0:
        return None
    lo, hi = np.percentile(finite, [low, high])
    return float(lo), float(hi)


def field_cv(mean: float | None, std: float | None, n_fields: int) -> float | None:
    """Coefficient of variation across a well's fields, in percent.

    ``std`` is the stored population SD (ddof=0) of the well's fields; the CV uses the
    **sample** SD (n - 1), ``std * sqrt(n / (n - 1))``, as for any spread of replicate
    measurements. ``None`` with fewer than two fields, no value or a zero mean (a CV is
    not defined there).
    """
    if mean is None or std is None or n_fields < 2:
        return None
    if not (math.isfinite(mean) and math.isfinite(std)) or mean == 0:
        return None
    sample_sd = std * math.sqrt(n_fields / (n_fields - 1))
    return 100.0 * sample_sd / abs(mean)


def symmetric_limit(values: Iterable[float | None], percentile: float = 98.0) -> float | None:
    """The limit ``L`` of a diverging scale ``[-L, L]`` centred on zero: the
    ``percentile``-th percentile of the absolute values (``None`` when there are none;
    a plate without differences gives 0)."""
    finite = _finite(values)
    if finite.size == 0:
        return None
    return float(np.percentile(np.abs(finite), percentile))
