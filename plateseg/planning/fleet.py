"""Compare serverless runs with a static fleet over a month of a workload pattern.

The comparison labs make when they leave a fixed cluster: ``N`` always-on servers of
``cores`` cores each at an hourly price, against the Distributed Map on Lambda, for
``jobs_per_day`` jobs of ``images_per_job`` fields every day of a 30-day month.

Fleet model (closed form, stated plainly): a job uses every core of the fleet, so it
takes ``fields x seconds_per_field / (servers x cores x core_speed)`` plus a fixed
``job_overhead_seconds``; jobs arrive at random (Poisson) and queue, so the mean time to
results adds the M/D/1 wait ``rho x S / (2 (1 - rho))`` with utilisation
``rho = jobs_per_day x S / 86,400``. A fleet with ``rho >= 1`` never catches up. The fleet
costs ``servers x hourly_usd x 730`` a month whether busy or idle.

Serverless: each job is one run predicted by :func:`plateseg.planning.model.predict` at
the given setting (no queueing: jobs run side by side up to the account's concurrency),
plus the fixed monthly cost of the deployment (database, proxy, endpoints: ~$70 in
``dev``, docs/operations.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from plateseg.errors import InputError
from plateseg.planning.model import AWS, FieldProfile, Platform, Setting, predict

__all__ = ["Fleet", "FleetComparison", "WorkloadPattern", "compare_fleet"]

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = 30
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Fleet:
    """``servers`` always-on machines of ``cores`` cores at ``hourly_usd`` each."""

    servers: int
    cores: int
    hourly_usd: float
    core_speed: float = 1.0
    job_overhead_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.servers < 1 or self.cores < 1:
            raise InputError(f"fleet of {self.servers} x {self.cores} cores: need at least 1 x 1")
        if not (math.isfinite(self.hourly_usd) and self.hourly_usd >= 0):
            raise InputError(f"fleet hourly price {self.hourly_usd!r}: must be a number >= 0")
        if not self.core_speed > 0:
            raise InputError(f"fleet core speed {self.core_speed!r}: must be > 0")


@dataclass(frozen=True)
class WorkloadPattern:
    """``jobs_per_day`` jobs of ``images_per_job`` fields, every day of the month."""

    jobs_per_day: float
    images_per_job: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.jobs_per_day) and self.jobs_per_day > 0):
            raise InputError(f"jobs per day {self.jobs_per_day!r}: must be a number > 0")
        if self.images_per_job < 1:
            raise InputError(f"images per job {self.images_per_job}: must be >= 1")


@dataclass(frozen=True)
class FleetComparison:
    """A month of the pattern on the fleet and on AWS.

    Attributes
    ----------
    fleet_job_seconds, fleet_wait_seconds : float
        One job's run time on the fleet, and its mean queueing wait (inf if saturated).
    fleet_utilisation : float
    fleet_monthly_usd : float
    aws_job_seconds, aws_job_usd, aws_monthly_usd : float
        One run's wall time and cost; the month's runs plus ``fixed_monthly_usd``.
    speedup : float
        Fleet time to results (wait + job) / AWS job wall time.
    cost_ratio : float
        Fleet monthly cost / AWS monthly cost.
    """

    fleet: Fleet
    pattern: WorkloadPattern
    fleet_job_seconds: float
    fleet_wait_seconds: float
    fleet_utilisation: float
    fleet_monthly_usd: float
    aws_job_seconds: float
    aws_job_usd: float
    aws_fixed_monthly_usd: float
    aws_monthly_usd: float
    speedup: float
    cost_ratio: float

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("fleet_wait_seconds", "speedup"):
            if math.isinf(out[key]):
                out[key] = None  # JSON has no infinity
        return out


def compare_fleet(
    fleet: Fleet,
    pattern: WorkloadPattern,
    profile: FieldProfile,
    setting: Setting,
    *,
    platform: Platform = AWS,
    fixed_monthly_usd: float = 70.0,
) -> FleetComparison:
    """Compare a month of ``pattern`` on ``fleet`` and on AWS at ``setting``.

    Examples
    --------
    Four 8-core servers at $0.40/h, 10 jobs a day of 2,000 fields at 1 s each:

    >>> from plateseg.planning.model import FieldProfile, Setting
    >>> c = compare_fleet(Fleet(4, 8, 0.40), WorkloadPattern(10, 2000),
    ...                   FieldProfile(1.0), Setting(10, 200))
    >>> round(c.fleet_job_seconds), round(c.fleet_monthly_usd)
    (92, 1168)
    """
    cores = fleet.servers * fleet.cores * fleet.core_speed
    job = pattern.images_per_job * profile.seconds_per_field / cores + fleet.job_overhead_seconds
    rho = pattern.jobs_per_day * job / SECONDS_PER_DAY
    wait = math.inf if rho >= 1 else rho * job / (2 * (1 - rho))
    fleet_month = fleet.servers * fleet.hourly_usd * HOURS_PER_MONTH
    run = predict(pattern.images_per_job, profile, setting, platform)
    run_usd = run.cost_usd or 0.0
    aws_month = fixed_monthly_usd + run_usd * pattern.jobs_per_day * DAYS_PER_MONTH
    return FleetComparison(
        fleet=fleet,
        pattern=pattern,
        fleet_job_seconds=job,
        fleet_wait_seconds=wait,
        fleet_utilisation=rho,
        fleet_monthly_usd=fleet_month,
        aws_job_seconds=run.wall_seconds,
        aws_job_usd=run_usd,
        aws_fixed_monthly_usd=fixed_monthly_usd,
        aws_monthly_usd=aws_month,
        speedup=(wait + job) / run.wall_seconds if run.wall_seconds else math.inf,
        cost_ratio=fleet_month / aws_month if aws_month else math.inf,
    )
