"""Static fleet vs serverless: hand-computed months."""

from __future__ import annotations

import math

import pytest

from plateseg.errors import InputError
from plateseg.planning.fleet import Fleet, WorkloadPattern, compare_fleet
from plateseg.planning.model import AWS, FieldProfile, Setting, predict


def test_month_by_hand() -> None:
    fleet = Fleet(servers=2, cores=4, hourly_usd=0.5, job_overhead_seconds=10.0)
    pattern = WorkloadPattern(jobs_per_day=8, images_per_job=800)
    profile = FieldProfile(1.0)
    setting = Setting(10, 100)
    c = compare_fleet(fleet, pattern, profile, setting, fixed_monthly_usd=70.0)
    job = 800 / 8 + 10  # 110 s on 8 cores
    rho = 8 * job / 86_400
    assert c.fleet_job_seconds == pytest.approx(job)
    assert c.fleet_utilisation == pytest.approx(rho)
    assert c.fleet_wait_seconds == pytest.approx(rho * job / (2 * (1 - rho)))
    assert c.fleet_monthly_usd == pytest.approx(2 * 0.5 * 730)
    run = predict(800, profile, setting, AWS)
    assert c.aws_job_seconds == pytest.approx(run.wall_seconds)
    assert c.aws_monthly_usd == pytest.approx(70.0 + (run.cost_usd or 0) * 8 * 30)
    assert c.cost_ratio == pytest.approx(c.fleet_monthly_usd / c.aws_monthly_usd)
    assert c.speedup == pytest.approx((c.fleet_wait_seconds + job) / run.wall_seconds)


def test_saturated_fleet_never_catches_up() -> None:
    c = compare_fleet(
        Fleet(1, 1, 0.1), WorkloadPattern(100, 10_000), FieldProfile(1.0), Setting(10, 100)
    )
    assert c.fleet_utilisation > 1
    assert math.isinf(c.fleet_wait_seconds)
    assert c.as_dict()["fleet_wait_seconds"] is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Fleet(0, 4, 1.0), "fleet of 0"),
        (lambda: Fleet(1, 4, -1.0), "hourly price"),
        (lambda: WorkloadPattern(0, 10), "jobs per day"),
        (lambda: WorkloadPattern(1, 0), "images per job"),
    ],
)
def test_bad_fleet_input_is_a_typed_error(build: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        build()  # type: ignore[operator]
