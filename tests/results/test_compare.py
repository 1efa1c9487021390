"""Two runs side by side (:mod:`plateseg.results.compare`): the pure arithmetic here; the
database side through the web API in ``tests/web/test_compare.py``."""

from __future__ import annotations

import math

import pytest

from plateseg.db.rows import RunInfo
from plateseg.errors import InputError
from plateseg.results.compare import (
    MetricDelta,
    WellPair,
    check_comparable,
    correlation,
    metric_deltas,
    most_changed,
    pair_wells,
)


def test_wells_of_either_run_are_paired_with_their_layout() -> None:
    a = {("P1", "A02"): 10.0, ("P1", "A01"): 20.0, ("P1", "B01"): None}
    b = {("P1", "A01"): 25.0, ("P1", "A02"): math.nan, ("P2", "A01"): 7.0}
    layout = {("P1", "A01"): ("neg", "DMSO", None), ("P1", "A02"): ("", "CPD-1", 0.5)}
    pairs = pair_wells(a, b, layout)
    assert [(p.plate, p.well) for p in pairs] == [
        ("P1", "A01"),
        ("P1", "A02"),
        ("P1", "B01"),
        ("P2", "A01"),
    ]
    first, second, third, fourth = pairs
    assert (first.a, first.b, first.diff) == (20.0, 25.0, 5.0)
    assert (first.control, first.compound) == ("neg", "DMSO")
    assert (second.b, second.diff, second.concentration) == (None, None, 0.5)  # NaN: no value
    assert third.diff is None and fourth.a is None and fourth.diff is None


def test_the_wells_that_changed_most_are_ranked_by_absolute_difference() -> None:
    pairs = [
        WellPair("P1", "A01", 10.0, 12.0),
        WellPair("P1", "A02", 10.0, 2.0),
        WellPair("P1", "A03", 10.0, None),
        WellPair("P1", "A04", 10.0, 18.0),
        WellPair("P1", "A05", 10.0, 10.0),
    ]
    ranked = most_changed(pairs, top=3)
    assert [p.well for p in ranked] == ["A02", "A04", "A01"]  # -8 before +8: ties by well
    assert [p.diff for p in ranked] == [-8.0, 8.0, 2.0]
    assert len(most_changed(pairs)) == 4  # the well without a value in B is not ranked
    assert most_changed(pairs, top=0) == []


def test_correlation_is_pearsons_r_over_wells_with_both_values() -> None:
    pairs = [WellPair("P1", f"A0{i}", float(i), 2.0 * i + 1) for i in range(1, 6)]
    assert correlation(pairs) == pytest.approx(1.0)
    anti = [WellPair("P1", f"A0{i}", float(i), -float(i)) for i in range(1, 6)]
    assert correlation(anti) == pytest.approx(-1.0)
    assert correlation(pairs[:2]) is None
    assert correlation([WellPair("P1", f"A0{i}", 1.0, float(i)) for i in range(4)]) is None


def test_metric_deltas_are_means_over_wells_with_values() -> None:
    deltas = metric_deltas(
        {"Count_Nuclei": [10.0, 20.0, None], "Only_A": [1.0]},
        {"Count_Nuclei": [15.0, 35.0, math.nan], "Only_B": [2.0]},
    )
    assert [d.metric for d in deltas] == ["Count_Nuclei", "Only_A", "Only_B"]
    count = deltas[0]
    assert (count.mean_a, count.mean_b, count.n_a, count.n_b) == (15.0, 25.0, 2, 2)
    assert count.diff == 10.0 and count.relative == pytest.approx(10 / 15)
    assert deltas[1].mean_b is None and deltas[1].diff is None
    assert MetricDelta("x", 0.0, 1.0, 1, 1).relative is None


def _run(run_id: str, experiment: str) -> RunInfo:
    from datetime import UTC, datetime

    return RunInfo(
        run_id=run_id,
        experiment_id=experiment,
        execution_id=run_id,
        engine="local",
        status="SUCCEEDED",
        recipe={},
        recipe_hash="",
        map_run_arn="",
        result_manifest_key="",
        objects_prefix="",
        started_at=None,
        finished_at=datetime(2025, 1, 1, tzinfo=UTC),
        images_ok=1,
        images_failed=0,
        batches_failed=0,
        objects=1,
    )


def test_runs_of_different_experiments_or_the_same_run_are_refused() -> None:
    check_comparable(_run("r1", "EXP-1"), _run("r2", "EXP-1"))
    with pytest.raises(InputError, match="experiment 'EXP-1' and run 'r2' of experiment 'EXP-2'"):
        check_comparable(_run("r1", "EXP-1"), _run("r2", "EXP-2"))
    with pytest.raises(InputError, match="two different runs"):
        check_comparable(_run("r1", "EXP-1"), _run("r1", "EXP-1"))
