"""The heatmap's colour range and spread across fields (:mod:`plateseg.results.heatmap`)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from plateseg.results.heatmap import PERCENTILES, field_cv, robust_range, symmetric_limit


def test_the_robust_range_is_the_2nd_and_98th_percentile_and_ignores_missing_values() -> None:
    values: list[float | None] = [float(v) for v in range(1, 101)]
    values += [None, math.nan, math.inf]
    low, high = robust_range(values) or (0.0, 0.0)
    assert PERCENTILES == (2.0, 98.0)
    assert (low, high) == pytest.approx(tuple(np.percentile(np.arange(1, 101), [2, 98])))
    # one saturated well no longer flattens the rest of the plate
    skewed = [10.0] * 60 + [12.0] * 39 + [5000.0]
    assert robust_range(skewed) == pytest.approx((10.0, 12.0))


def test_the_robust_range_of_nothing_is_none_and_bad_percentiles_are_refused() -> None:
    assert robust_range([]) is None
    assert robust_range([None, math.nan]) is None
    assert robust_range([3.0]) == (3.0, 3.0)
    with pytest.raises(ValueError, match="percentiles"):
        robust_range([1.0, 2.0], low=60, high=40)


def test_the_cv_across_fields_uses_the_sample_sd() -> None:
    fields = [40.0, 50.0, 60.0]
    population = statistics.pstdev(fields)  # what aggregation stores (ddof=0)
    cv = field_cv(statistics.mean(fields), population, len(fields))
    assert cv == pytest.approx(100 * statistics.stdev(fields) / 50.0)
    assert cv == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("mean", "std", "n"),
    [(None, 1.0, 3), (10.0, None, 3), (10.0, 1.0, 1), (0.0, 1.0, 3), (math.nan, 1.0, 3)],
)
def test_no_cv_without_two_fields_a_value_or_a_nonzero_mean(
    mean: float | None, std: float | None, n: int
) -> None:
    assert field_cv(mean, std, n) is None


def test_the_symmetric_limit_of_differences() -> None:
    assert symmetric_limit([-3.0, 1.0, 2.0, None], 100.0) == 3.0
    assert symmetric_limit([0.0, 0.0]) == 0.0
    assert symmetric_limit([None]) is None
