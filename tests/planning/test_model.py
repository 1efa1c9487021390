"""The run model: the cohort simulation against a naive one, and hand-computed runs."""

from __future__ import annotations

import heapq
import itertools
import math

import pytest

from plateseg.errors import InputError
from plateseg.planning.model import (
    AWS,
    FieldProfile,
    Setting,
    cpu_share,
    local_platform,
    makespan,
    predict,
)


def naive_makespan(
    durations: tuple[float, float],
    counts: tuple[int, int],
    slots: int,
    cold: float,
    ramp: tuple[int, float],
) -> float:
    """One heap entry per slot, one batch at a time: obviously right, slow."""
    jobs = [durations[0]] * counts[0] + [durations[1]] * counts[1]
    used = min(slots, len(jobs))
    per_step, period = ramp
    heap = [
        ((i // per_step) * period if per_step and period else 0.0, i, True) for i in range(used)
    ]
    heapq.heapify(heap)
    end = 0.0
    for job in jobs:
        free, slot, fresh = heapq.heappop(heap)
        done = free + job + (cold if fresh else 0.0)
        end = max(end, done)
        heapq.heappush(heap, (done, slot, False))
    return end


@pytest.mark.parametrize(
    ("full", "partial", "slots", "cold", "ramp"),
    [
        (full, partial, slots, cold, ramp)
        for full, partial, slots, cold, ramp in itertools.product(
            (0, 1, 5, 17, 100), (0, 1), (1, 2, 3, 16), (0.0, 2.5), ((0, 0.0), (2, 10.0))
        )
        if full + partial
    ],
)
def test_cohort_simulation_equals_the_naive_one(
    full: int, partial: int, slots: int, cold: float, ramp: tuple[int, float]
) -> None:
    durations = (3.0, 1.25)
    fast = makespan(durations, (full, partial), slots, cold, ramp)
    slow = naive_makespan(durations, (full, partial), slots, cold, ramp)
    assert fast == pytest.approx(slow)


def test_makespan_hand_examples() -> None:
    # 4 batches of 10 s on 4 slots: one round
    assert makespan((10.0, 0.0), (4, 0), 4) == 10.0
    # 5 batches on 4 slots: the fifth waits a whole round
    assert makespan((10.0, 0.0), (5, 0), 4) == 20.0
    # a short last batch: 10 + 2
    assert makespan((10.0, 2.0), (4, 1), 4) == 12.0
    # ramp: 3 slots, 2 per 10 s -> the third slot starts at 10 s and ends at 30 s
    assert makespan((20.0, 0.0), (3, 0), 3, ramp=(2, 10.0)) == 30.0
    assert makespan((20.0, 0.0), (3, 0), 3) == 20.0
    # ...but a slot that frees up earlier takes the batch instead
    assert makespan((1.0, 0.0), (3, 0), 3, ramp=(2, 10.0)) == 2.0
    assert makespan((1.0, 0.0), (0, 0), 3) == 0.0


def test_a_million_fields_simulate_quickly() -> None:
    # 142,857 rounds on 7 slots and one batch more; the half batch fits beside it
    assert makespan((1.0, 0.5), (1_000_000, 1), 7) == pytest.approx(142858.0)


def test_cpu_share_scales_with_memory_up_to_one_vcpu() -> None:
    assert cpu_share(1769) == 1.0
    assert cpu_share(10240) == 1.0
    assert cpu_share(885) == pytest.approx(885 / 1769)


def test_local_prediction_by_hand() -> None:
    profile = FieldProfile(0.1, batch_overhead_seconds=0.05, cold_start_seconds=1.0)
    platform = local_platform(2, startup_seconds=1.0, per_child_seconds=0.01)
    p = predict(10, profile, Setting(items_per_batch=4, max_concurrency=16), platform)
    # batches 4, 4, 2: each worker's first batch 0.4 + 0.05 + 0.01 + 1.0 = 1.46 s;
    # the 2-field batch 0.2 + 0.05 + 0.01 follows on the first free worker
    assert (p.batches, p.items_per_batch, p.peak_concurrency) == (3, 4, 2)
    assert p.map_seconds == pytest.approx(1.72)
    assert p.wall_seconds == pytest.approx(1.0 + 0.1 + 1.72 + 0.5 + 10 * 65e-6)
    assert p.cost is None and p.cost_usd is None
    assert p.db_connections == 1


def test_aws_prediction_by_hand() -> None:
    profile = FieldProfile(1.0)
    p = predict(
        1000, profile, Setting(items_per_batch=10, max_concurrency=100, memory_mb=1769), AWS
    )
    # per field 1 s + 3 S3 requests (2 reads, the mask) x 20 ms; a batch 10 x 1.06 + one
    # Parquet PUT
    assert p.batch_seconds == pytest.approx(10.62 + 0.1)
    # all 100 batches at once, each cold (4 s container start)
    assert p.map_seconds == pytest.approx(14.72)
    assert p.wall_seconds == pytest.approx(5.2 + 14.72 + 6.11)
    assert p.peak_concurrency == 100
    assert p.segment_billed_seconds == pytest.approx(100 * 10.62 + 100 * 4.0)
    assert p.cost_usd is not None and 0.05 < p.cost_usd < 0.1


def test_half_a_vcpu_doubles_compute_time() -> None:
    profile = FieldProfile(1.0)
    full = predict(100, profile, Setting(10, 10, memory_mb=1769), AWS)
    half = predict(100, profile, Setting(10, 10, memory_mb=885), AWS)
    compute_full = full.batch_seconds - 10 * 0.06 - 0.02 - 0.1
    compute_half = half.batch_seconds - 10 * 0.06 - 0.02 - 0.1
    assert compute_half / compute_full == pytest.approx(1769 / 885)


def test_more_memory_than_one_vcpu_buys_no_speed() -> None:
    profile = FieldProfile(1.0)
    one = predict(100, profile, Setting(10, 10, memory_mb=1769), AWS)
    four = predict(100, profile, Setting(10, 10, memory_mb=4096), AWS)
    assert four.wall_seconds == pytest.approx(one.wall_seconds)
    assert four.cost_usd is not None and one.cost_usd is not None
    assert four.cost_usd > one.cost_usd


def test_concurrency_is_capped_by_reservable_lambda_concurrency() -> None:
    p = predict(10_000, FieldProfile(1.0), Setting(1, 5000), AWS)
    assert p.peak_concurrency == 900
    assert any("reservable" in note for note in p.notes)


def test_express_child_longer_than_five_minutes_is_invalid() -> None:
    p = predict(100, FieldProfile(40.0), Setting(8, 10, execution_type="EXPRESS"), AWS)
    assert not p.valid
    assert any("300 s" in problem for problem in p.problems)
    standard = predict(100, FieldProfile(40.0), Setting(8, 10), AWS)
    assert standard.valid


def test_too_little_memory_is_invalid() -> None:
    p = predict(10, FieldProfile(1.0, peak_mb=2000.0), Setting(1, 10, memory_mb=1024), AWS)
    assert any("1024 MB" in problem for problem in p.problems)


def test_batch_bytes_cap_the_batch_size() -> None:
    profile = FieldProfile(1.0, item_bytes=1000)
    p = predict(100, profile, Setting(16, 10, max_bytes_per_batch=4096), AWS)
    assert p.items_per_batch == 4
    assert p.batches == 25
    assert any("max_bytes_per_batch" in note for note in p.notes)


def test_bad_settings_are_typed_errors() -> None:
    with pytest.raises(InputError, match="items per batch"):
        Setting(0, 10)
    with pytest.raises(InputError, match="memory"):
        Setting(1, 10, memory_mb=20_000)
    with pytest.raises(InputError, match="seconds_per_field"):
        FieldProfile(math.nan)
    with pytest.raises(InputError, match="workers"):
        local_platform(0)
