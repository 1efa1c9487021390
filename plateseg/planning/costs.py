"""What AWS charges for the work of one run: Lambda, Step Functions, S3.

Pure arithmetic over :data:`~plateseg.planning.prices.PRICES`; the model
(:mod:`plateseg.planning.model`) predicts the quantities, this module prices them, and
:func:`run_cost_usd` prices a *finished* run from what it actually did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from plateseg.errors import InputError
from plateseg.map_settings import MIN_MEMORY_MB
from plateseg.planning.prices import LIMITS, PRICES, Limits, Prices

__all__ = [
    "CHILD_TRANSITIONS_STANDARD",
    "PARENT_TRANSITIONS",
    "RUN_FIXED_GETS",
    "RUN_FIXED_PUTS",
    "CostBreakdown",
    "RunQuantities",
    "express_cost_usd",
    "lambda_cost_usd",
    "price_run",
    "run_cost_usd",
]

#: State transitions of the parent execution around the Map (Lookup, HasImages, the Map
#: state, Aggregate and the end), counted from ``statemachines/segmentation.asl.json``.
PARENT_TRANSITIONS = 5

#: Transitions inside one STANDARD child execution (enter and leave ``SegmentBatch``);
#: the parent is charged one more per child started (the Distributed Map rule), so a
#: batch costs 3 transitions in all, as ``docs/operations.md`` counts.
CHILD_TRANSITIONS_STANDARD = 2

#: S3 requests of a run besides the per-field and per-batch ones: Lookup writes the
#: manifest, recipe and report; ResultWriter its manifest and result file(s); Aggregate
#: reads the manifest, the result manifest, a result file and the layout.
RUN_FIXED_PUTS = 5
RUN_FIXED_GETS = 5

#: Memory of the Lookup and Aggregate functions (``stacks/pipeline_stack.py``).
SMALL_FUNCTION_MB = 1024


def _check(name: str, value: float, low: float = 0.0) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= low):
        raise InputError(f"{name} = {value!r}: must be a finite number >= {low:g}")


def lambda_cost_usd(
    billed_ms: float,
    memory_mb: int,
    requests: int,
    *,
    arch: str = "x86_64",
    prices: Prices = PRICES,
) -> float:
    """Lambda charge: GB-seconds of billed duration plus requests.

    Parameters
    ----------
    billed_ms : float
        Total billed duration, milliseconds (INIT included since 2025-08-01).
    memory_mb : int
        Configured memory, MB (128-10240).
    requests : int
        Invocations.
    arch : {"x86_64", "arm64"}

    Examples
    --------
    >>> round(lambda_cost_usd(1_000_000, 2048, 100), 6)  # 1,000 s at 2 GB = 2,000 GB-s
    0.033353
    """
    _check("billed_ms", billed_ms)
    _check("requests", requests)
    if not MIN_MEMORY_MB <= memory_mb <= LIMITS.max_memory_mb:
        raise InputError(
            f"memory_mb = {memory_mb}: Lambda allows {MIN_MEMORY_MB}-{LIMITS.max_memory_mb} MB"
        )
    gb_seconds = billed_ms / 1000.0 * memory_mb / 1024.0
    return gb_seconds * prices.lambda_gb_second(arch) + requests * prices.lambda_request


def express_cost_usd(
    executions: int,
    seconds_each: float,
    *,
    memory_mb: float = 64.0,
    prices: Prices = PRICES,
    limits: Limits = LIMITS,
) -> float:
    """Express workflow charge: requests plus duration in 64 MB x 100 ms steps.

    Parameters
    ----------
    executions : int
        Express executions started (one per batch for EXPRESS Map children).
    seconds_each : float
        Duration of each execution, seconds (rounded up to 100 ms).
    memory_mb : float
        Memory the execution uses (its state payloads: small), rounded up to 64 MB.
    """
    _check("executions", executions)
    _check("seconds_each", seconds_each)
    step_ms = limits.express_duration_step_ms
    billed_s = math.ceil(seconds_each * 1000.0 / step_ms - 1e-9) * step_ms / 1000.0
    steps = max(1, math.ceil(memory_mb / limits.express_memory_step_mb))
    gb = steps * limits.express_memory_step_mb / 1024.0
    return executions * (prices.sfn_express_request + billed_s * gb * prices.sfn_express_gb_second)


@dataclass(frozen=True)
class RunQuantities:
    """What one run does on AWS, in billable units.

    Attributes
    ----------
    fields, batches : int
        Fields of view segmented; Map child executions (one Segment invocation each).
    segment_billed_seconds : float
        Sum of the Segment invocations' billed durations, INIT included.
    segment_memory_mb : int
    small_function_seconds : float
        Billed seconds of Lookup and Aggregate together (1,024 MB each).
    child_seconds : float
        Duration of one child execution (for EXPRESS pricing).
    execution_type : {"STANDARD", "EXPRESS"}
    arch : {"x86_64", "arm64"}
    gets, puts : int
        S3 read and write (PUT or LIST) requests.
    """

    fields: int
    batches: int
    segment_billed_seconds: float
    segment_memory_mb: int
    small_function_seconds: float
    child_seconds: float
    execution_type: str = "STANDARD"
    arch: str = "x86_64"
    gets: int = 0
    puts: int = 0


@dataclass(frozen=True)
class CostBreakdown:
    """Dollars per item of the bill; :attr:`total` is their sum."""

    lambda_segment: float
    lambda_other: float
    step_functions: float
    s3_requests: float

    @property
    def total(self) -> float:
        return self.lambda_segment + self.lambda_other + self.step_functions + self.s3_requests


def price_run(quantities: RunQuantities, prices: Prices = PRICES) -> CostBreakdown:
    """Price a run's quantities with the price table.

    Step Functions: STANDARD children cost ``CHILD_TRANSITIONS_STANDARD`` transitions
    each; EXPRESS children cost a request plus duration; either way the parent pays
    one transition per child started, plus :data:`PARENT_TRANSITIONS`.
    """
    q = quantities
    if q.execution_type not in ("STANDARD", "EXPRESS"):
        raise InputError(f"execution type {q.execution_type!r}: expected STANDARD or EXPRESS")
    segment = lambda_cost_usd(
        q.segment_billed_seconds * 1000.0,
        q.segment_memory_mb,
        q.batches,
        arch=q.arch,
        prices=prices,
    )
    other = lambda_cost_usd(
        q.small_function_seconds * 1000.0, SMALL_FUNCTION_MB, 2, arch="x86_64", prices=prices
    )
    transitions = PARENT_TRANSITIONS + q.batches
    if q.execution_type == "STANDARD":
        transitions += q.batches * CHILD_TRANSITIONS_STANDARD
        express = 0.0
    else:
        express = express_cost_usd(q.batches, q.child_seconds, prices=prices)
    sfn = transitions * prices.sfn_standard_transition + express
    s3 = q.gets * prices.s3_get + q.puts * prices.s3_put
    return CostBreakdown(segment, other, sfn, s3)


def run_cost_usd(
    images: int,
    batches: int,
    segment_seconds_total: float,
    memory_mb: int,
    execution_type: str = "STANDARD",
) -> float:
    """The AWS cost of the work a finished run did (what aggregation stores).

    Counts Lambda GB-seconds and requests of Segment (``segment_seconds_total`` billed
    at ``memory_mb``), Step Functions transitions (STANDARD) or Express requests and
    duration (each child lasting ``segment_seconds_total / batches``), and S3 requests
    (two channel reads and one label-mask write per image, a Parquet part and a batch
    checkpoint per batch, the run's fixed requests). Lookup and Aggregate add ~10 s at 1,024 MB.

    Parameters
    ----------
    images : int
        Images (fields of view) the run segmented.
    batches : int
        Map child executions (Segment invocations).
    segment_seconds_total : float
        Sum of the Segment invocations' durations, seconds.
    memory_mb : int
        Segment function memory.
    execution_type : {"STANDARD", "EXPRESS"}

    Examples
    --------
    >>> round(run_cost_usd(1000, 100, 1900.0, 2048), 4)  # 1,000 fields, 100 batches of 19 s
    0.078
    """
    for name, value in (("images", images), ("batches", batches)):
        _check(name, value)
    _check("segment_seconds_total", segment_seconds_total)
    quantities = RunQuantities(
        fields=images,
        batches=batches,
        segment_billed_seconds=segment_seconds_total,
        segment_memory_mb=memory_mb,
        small_function_seconds=10.0,
        child_seconds=segment_seconds_total / batches if batches else 0.0,
        execution_type=execution_type,
        gets=2 * images + RUN_FIXED_GETS,
        puts=images + 2 * batches + RUN_FIXED_PUTS,  # mask per field; part + checkpoint per batch
    )
    return price_run(quantities).total
