"""Whether a run's nuclei counts match the demo experiment's ground truth.

Used by ``plateseg results --compare-truth`` (the last step of ``make run``) and by the
tests that run the demo end to end. A well matches when its count is within
:data:`COUNT_TOLERANCE` of the truth, or within :data:`COUNT_SLACK` nuclei where that is
more: a pair of touching nuclei counted as one is 2.5 % of a 40-nucleus well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "COUNT_SLACK",
    "COUNT_TOLERANCE",
    "TruthComparison",
    "compare_counts",
    "count_matches_truth",
]

COUNT_TOLERANCE = 0.05
COUNT_SLACK = 3


def count_matches_truth(found: int, expected: int) -> bool:
    """Whether a well's nuclei count is within the demo's tolerance of its truth."""
    return abs(found - expected) <= max(COUNT_TOLERANCE * expected, COUNT_SLACK)


@dataclass(frozen=True)
class TruthComparison:
    """Counts against the truth over the non-empty wells.

    Attributes
    ----------
    non_empty : int
        Wells with nuclei in the truth (the ones compared).
    worst : float
        Largest relative count error among them.
    bad : list of str
        ``"P1_B03: 40 found, 48 true (16.7%)"`` for each well that does not match.
    """

    non_empty: int
    worst: float
    bad: list[str] = field(default_factory=list)


def compare_counts(wells: dict[str, int], counts: dict[tuple[str, str], int]) -> TruthComparison:
    """Compare ``counts`` (``(plate, well)`` → nuclei) with the truth's ``wells``
    (``"P1_B03"`` → nuclei); a well missing from ``counts`` found none."""
    worst = 0.0
    bad = []
    for well_id, expected in sorted(wells.items()):
        if expected == 0:
            continue
        plate, well = well_id.split("_", 1)
        found = counts.get((plate, well), 0)
        error = abs(found - expected) / expected
        worst = max(worst, error)
        if not count_matches_truth(found, expected):
            bad.append(f"{well_id}: {found} found, {expected} true ({error:.1%})")
    return TruthComparison(sum(1 for n in wells.values() if n), worst, bad)
