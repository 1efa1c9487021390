"""estimate_run: the one-call estimate the web UI shows."""

from __future__ import annotations

import dataclasses

import pytest

from plateseg.errors import InputError
from plateseg.planning import RunEstimate, estimate_run


def test_local_estimate_by_hand() -> None:
    e = estimate_run(8, 1.0, engine="local", batch_size=2, workers=2)
    # 4 batches of 2 fields on 2 workers: 2 rounds of (2 s + 5 ms per child);
    # + 1 s pool start, 0.1 s Lookup, 0.5 s + 8 x 65 us Aggregate
    assert e.wall_seconds == pytest.approx(1.0 + 0.1 + 2 * 2.005 + 0.5 + 8 * 65e-6)
    assert e.cost_usd is None
    assert "2 local worker processes" in e.basis


def test_aws_estimate_has_a_cost_and_says_its_prices() -> None:
    e = estimate_run(1000, 1.0, engine="aws", batch_size=10, max_concurrency=100)
    assert isinstance(e, RunEstimate)
    assert e.cost_usd is not None and 0.05 < e.cost_usd < 0.1
    assert "2026-11-23" in e.basis
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.wall_seconds = 1.0  # type: ignore[misc]


def test_aws_estimate_warns_when_memory_is_too_small() -> None:
    e = estimate_run(10, 1.0, engine="aws", memory_mb=512, peak_mb_per_field=600.0)
    assert "warning" in e.basis and "512 MB" in e.basis


def test_more_concurrency_is_faster_on_aws() -> None:
    slow = estimate_run(1000, 1.0, engine="aws", batch_size=10, max_concurrency=10)
    fast = estimate_run(1000, 1.0, engine="aws", batch_size=10, max_concurrency=100)
    assert fast.wall_seconds < slow.wall_seconds


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": -1, "seconds_per_field": 1.0, "engine": "aws"}, "fields"),
        ({"fields": 1, "seconds_per_field": 1.0, "engine": "gpu"}, "engine"),
        ({"fields": 1, "seconds_per_field": -1.0, "engine": "aws"}, "seconds_per_field"),
        ({"fields": 1, "seconds_per_field": 1.0, "engine": "aws", "batch_size": 0}, "batch"),
    ],
)
def test_bad_input_is_a_typed_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        estimate_run(**kwargs)  # type: ignore[arg-type]
