"""The demo's count check (``plateseg.demo_check``)."""

from __future__ import annotations

import pytest

from plateseg.demo_check import compare_counts, count_matches_truth


@pytest.mark.parametrize(
    ("found", "expected", "ok"),
    [
        (48, 48, True),
        (45, 48, True),
        (44, 48, False),
        (52, 48, False),
        (95, 100, True),
        (94, 100, False),
        (106, 100, False),
        (3, 1, True),
        (5, 1, False),
    ],
)
def test_a_well_count_matches_within_five_percent_or_three_nuclei(
    found: int, expected: int, ok: bool
) -> None:
    assert count_matches_truth(found, expected) is ok


def test_compare_counts_skips_empty_wells_and_counts_a_missing_well_as_none() -> None:
    wells = {"P1_A01": 48, "P1_A02": 100, "P1_A03": 0, "P1_A04": 20}
    counts = {("P1", "A01"): 45, ("P1", "A02"): 90, ("P1", "A03"): 2}
    result = compare_counts(wells, counts)
    assert result.non_empty == 3
    assert result.worst == 1.0  # A04: none found
    assert result.bad == [
        "P1_A02: 90 found, 100 true (10.0%)",
        "P1_A04: 0 found, 20 true (100.0%)",
    ]
