"""Z' from the control wells: sample SDs (Zhang, Chung & Oldenburg 1999), bands, notes."""

from __future__ import annotations

import doctest
import statistics

import pytest

from plateseg.results import summaries
from plateseg.results.summaries import plate_qc, sample_std, z_prime, z_prime_band, z_prime_note


def test_doctests() -> None:
    result = doctest.testmod(summaries)
    assert result.attempted > 0 and result.failed == 0


def test_z_prime_uses_the_sample_standard_deviation() -> None:
    positive, negative = [100.0, 110.0, 90.0, 104.0], [10.0, 12.0, 8.0, 11.0]
    sp, sn = statistics.stdev(positive), statistics.stdev(negative)
    expected = 1 - 3 * (sp + sn) / abs(statistics.mean(positive) - statistics.mean(negative))
    assert z_prime(positive, negative) == pytest.approx(expected)
    assert sample_std(positive) == pytest.approx(sp)
    assert sample_std([5.0]) is None and z_prime([5.0], negative) is None
    assert z_prime([1.0, 3.0], [3.0, 1.0]) is None  # equal means


def test_plate_qc_rows_carry_sample_sds_and_counts() -> None:
    wells = [
        {"plate": "P1", "well": w, "metric": "Count_Nuclei", "mean": v}
        for w, v in {"A01": 10.0, "B01": 12.0, "C01": 8.0, "A12": 100.0, "B12": 110.0}.items()
    ]
    roles = {("P1", "A01"): "neg", ("P1", "B01"): "neg", ("P1", "C01"): "neg"}
    roles |= {("P1", "A12"): "pos", ("P1", "B12"): "pos"}
    [row] = plate_qc(wells, roles)
    assert (row["n_pos"], row["n_neg"]) == (2, 3)
    assert (row["mean_pos"], row["mean_neg"]) == (105.0, 10.0)
    assert row["std_pos"] == pytest.approx(statistics.stdev([100.0, 110.0]))
    assert row["std_neg"] == pytest.approx(2.0)
    assert row["z_prime"] == pytest.approx(1 - 3 * (row["std_pos"] + 2.0) / 95.0)


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (0.9, "excellent"),
        (0.5, "excellent"),
        (0.49, "marginal"),
        (0.0, "marginal"),
        (-0.01, "unusable"),
        (None, None),
        (float("nan"), None),
    ],
)
def test_bands(value: float | None, band: str | None) -> None:
    assert z_prime_band(value) == band


def test_notes_say_why_z_prime_is_missing() -> None:
    assert z_prime_note(3, 3, 0.7) == ""
    assert "has 1 and 3" in z_prime_note(1, 3, None)
    assert "means are equal" in z_prime_note(2, 2, None)
