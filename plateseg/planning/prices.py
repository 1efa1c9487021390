"""The AWS price table and the platform limits the planner assumes, in one place.

Every figure the planner multiplies by lives here, with the date it was read and where
from. Prices are us-east-1 list prices (on-demand, no free tier, no Savings Plans) as
published on the AWS pricing pages on :data:`PRICES_DATE`; other regions differ by up
to ~50 %. ``docs/operations.md`` quotes the same table; change it here, not there.

Sources (read 2026-11-23):

- Lambda: https://aws.amazon.com/lambda/pricing/ (GB-second x86 and arm64, requests;
  the INIT phase of every function is billed since 2025-08-01).
- Step Functions: https://aws.amazon.com/step-functions/pricing/ (Standard state
  transitions; Express requests and GB-seconds, 64 MB memory steps, 100 ms rounding)
  and the developer guide's "Transitions" page: a Distributed Map is charged one state
  transition per child workflow execution it starts.
- S3: https://aws.amazon.com/s3/pricing/ (Standard: PUT/COPY/POST/LIST per 1,000,
  GET per 1,000, storage per GB-month).
- Lambda limits: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
  (1,000 concurrent executions per account and region by default, 100 of them always
  unreserved; 1 vCPU at 1,769 MB, 6 vCPU at 10,240 MB; each function scales by 1,000
  execution environments every 10 seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from plateseg.map_settings import (
    MAX_BATCH_BYTES,
    MAX_CONCURRENCY,
    MAX_ITEMS_PER_BATCH,
    MAX_MEMORY_MB,
)

__all__ = [
    "LIMITS",
    "PRICES",
    "PRICES_DATE",
    "PRICES_REGION",
    "Limits",
    "Prices",
]

#: The day the prices below were read from the AWS pricing pages.
PRICES_DATE = "2026-11-23"

#: The region they apply to.
PRICES_REGION = "us-east-1"


@dataclass(frozen=True)
class Prices:
    """On-demand list prices, US dollars.

    Attributes
    ----------
    lambda_gb_second_x86, lambda_gb_second_arm64 : float
        Lambda compute per GB-second of billed duration (first price tier).
    lambda_request : float
        Per Lambda invocation.
    sfn_standard_transition : float
        Per Standard workflow state transition.
    sfn_express_request : float
        Per Express workflow execution started.
    sfn_express_gb_second : float
        Express duration per GB-second (memory in 64 MB steps, duration in 100 ms steps).
    s3_put : float
        Per S3 PUT, COPY, POST or LIST request.
    s3_get : float
        Per S3 GET (and other read) request.
    s3_gb_month : float
        S3 Standard storage per GB-month.
    """

    lambda_gb_second_x86: float = 0.0000166667
    lambda_gb_second_arm64: float = 0.0000133334
    lambda_request: float = 0.20 / 1_000_000
    sfn_standard_transition: float = 0.025 / 1_000
    sfn_express_request: float = 1.00 / 1_000_000
    sfn_express_gb_second: float = 0.00001667
    s3_put: float = 0.005 / 1_000
    s3_get: float = 0.0004 / 1_000
    s3_gb_month: float = 0.023

    def lambda_gb_second(self, arch: str) -> float:
        """GB-second price of an architecture, ``"x86_64"`` or ``"arm64"``."""
        from plateseg.errors import InputError

        if arch == "x86_64":
            return self.lambda_gb_second_x86
        if arch == "arm64":
            return self.lambda_gb_second_arm64
        raise InputError(f"Lambda architecture {arch!r}: expected 'x86_64' or 'arm64'")


@dataclass(frozen=True)
class Limits:
    """Platform limits and service behaviour the model assumes.

    Attributes
    ----------
    account_concurrency : int
        Lambda concurrent executions per account and region (default quota).
    unreserved_minimum : int
        Concurrency AWS keeps unreserved; a function may reserve at most the rest.
    full_vcpu_mb : int
        Memory at which a function has one full vCPU; CPU share is proportional below.
    max_memory_mb : int
        Largest Lambda memory size; it has :attr:`max_vcpus` vCPUs.
    max_vcpus : int
    scale_environments : int
        New execution environments a function may add per :attr:`scale_period_seconds`.
    scale_period_seconds : float
    express_limit_seconds : float
        Longest an Express (child) execution may run.
    express_memory_step_mb : int
        Express executions are billed in memory steps of this size (at least one).
    express_duration_step_ms : int
        Express duration is rounded up to this step.
    max_batch_bytes : int
        Step Functions limit on one batch's input (``MaxInputBytesPerBatch``).
    max_items_per_batch : int
        ``ItemBatcher.MaxItemsPerBatch`` upper bound the CDK config accepts.
    max_map_concurrency : int
        ``MaxConcurrency`` upper bound the CDK config accepts.
    """

    account_concurrency: int = 1000
    unreserved_minimum: int = 100
    full_vcpu_mb: int = 1769
    max_memory_mb: int = MAX_MEMORY_MB
    max_vcpus: int = 6
    scale_environments: int = 1000
    scale_period_seconds: float = 10.0
    express_limit_seconds: float = 300.0
    express_memory_step_mb: int = 64
    express_duration_step_ms: int = 100
    max_batch_bytes: int = MAX_BATCH_BYTES
    max_items_per_batch: int = MAX_ITEMS_PER_BATCH
    max_map_concurrency: int = MAX_CONCURRENCY


#: The prices in force (see :data:`PRICES_DATE`).
PRICES = Prices()

#: The limits in force.
LIMITS = Limits()
