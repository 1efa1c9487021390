"""Where a run executes: the AWS platform constants and this machine's.

A :class:`Platform` holds everything the model (:mod:`plateseg.planning.model`) needs to
know about the place a run executes, besides the tunables and the measured per-field
work: how many batches can run at once, what a new environment costs, the orchestration
overhead per child execution, S3 latency, and whether prices apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from plateseg.errors import InputError
from plateseg.planning.prices import LIMITS

__all__ = ["AWS", "Engine", "Platform", "local_platform"]

Engine = Literal["local", "aws"]


@dataclass(frozen=True)
class Platform:
    """Where a run executes, and the constants of that place.

    Attributes
    ----------
    engine : {"local", "aws"}
    slots : int
        Most batches that can run at once besides ``MaxConcurrency``: local worker
        processes, or the Lambda concurrency the function may reserve.
    environment_start_seconds : float
        Added to the first batch of each new environment (AWS: container image init).
    per_child_seconds : float
        Orchestration time per child execution (local: engine dispatch and journal;
        AWS: StartExecution and Invoke round trips).
    startup_seconds : float
        Before Lookup (local: spawning the worker pool).
    lookup_seconds, aggregate_seconds, aggregate_seconds_per_field : float
        Lookup; Aggregate's fixed part and its per-field part.
    core_speed : float
        Speed of one of its cores relative to the measuring machine's (1 = same).
    s3_seconds_per_request : float
        Latency of one S3 request from a Lambda (0 locally: included in the sample).
    s3_mb_per_second : float
        S3 transfer rate of one Lambda (0 = included in the sample).
    priced : bool
        Whether the AWS price table applies (False: cost is None).
    memory_overhead_mb : float
        Resident memory of the runtime before any field (AWS checks memory against it).
    scale_environments, scale_period_seconds : int, float
        New environments per period (Lambda scaling rate); 0 = all at once.
    """

    engine: Engine
    slots: int
    environment_start_seconds: float = 0.0
    per_child_seconds: float = 0.0
    startup_seconds: float = 0.0
    lookup_seconds: float = 0.0
    aggregate_seconds: float = 0.0
    aggregate_seconds_per_field: float = 0.0
    core_speed: float = 1.0
    s3_seconds_per_request: float = 0.0
    s3_mb_per_second: float = 0.0
    priced: bool = False
    memory_overhead_mb: float = 0.0
    scale_environments: int = 0
    scale_period_seconds: float = 0.0


#: AWS constants. Container-image cold start ~4 s (docs/operations.md); ~0.1 s per child
#: execution for StartExecution and Invoke; S3 ~20 ms per request and ~90 MB/s per
#: function; Lookup lists 1,000 keys per request; Aggregate connects through RDS Proxy
#: inside the VPC (~1 s) and writes ~110 us per field (bench/aggregate.py, PostgreSQL).
AWS = Platform(
    engine="aws",
    slots=LIMITS.account_concurrency - LIMITS.unreserved_minimum,
    environment_start_seconds=4.0,
    per_child_seconds=0.1,
    lookup_seconds=5.0,
    aggregate_seconds=6.0,
    aggregate_seconds_per_field=110e-6,
    s3_seconds_per_request=0.02,
    s3_mb_per_second=90.0,
    priced=True,
    memory_overhead_mb=150.0,
    scale_environments=LIMITS.scale_environments,
    scale_period_seconds=LIMITS.scale_period_seconds,
)


def local_platform(
    workers: int = 2,
    *,
    startup_seconds: float = 1.0,
    per_child_seconds: float = 0.005,
    aggregate_seconds: float = 0.5,
) -> Platform:
    """This machine: ``workers`` processes, no container, zero prices.

    The defaults are typical of the 2-core development machine; :mod:`workload`
    measures the real values (pool start, engine overhead per child).
    Aggregate into SQLite costs ~65 us per field (bench/aggregate.py).
    """
    if workers < 1:
        raise InputError(f"workers = {workers}: need at least one worker process")
    return Platform(
        engine="local",
        slots=workers,
        startup_seconds=startup_seconds,
        per_child_seconds=per_child_seconds,
        lookup_seconds=0.1,
        aggregate_seconds=aggregate_seconds,
        aggregate_seconds_per_field=65e-6,
    )
