"""The run model: a discrete-event simulation of a Distributed Map over batches.

Why a simulation and not a closed form: the wall time of a Map Run is the makespan of
``ceil(fields / batch)`` batches over ``C`` execution slots, where the first batch of
every slot pays a cold start, environments arrive at a limited scaling rate, and the
last batch is usually short. ``ceil(batches / C) x batch_seconds`` gets the tail wrong
exactly where the choice matters (few large batches, or batches barely above ``C``),
and it cannot say which slots are cold. The simulation schedules batches in manifest
order on the earliest free slot, as the Map does, and stays cheap: slots that free up
at the same instant are one *cohort* (one heap entry with a count), and once every
cohort is warm all of them run whole rounds at once (``fast-forward``), so a million
fields cost a few dozen heap operations.

The same function models both engines. :class:`Platform` says what differs:

- ``aws``: slots = ``min(MaxConcurrency, reservable Lambda concurrency)``; CPU share
  ``min(1, memory / 1769 MB)`` (segmentation is single-threaded, so memory above one
  vCPU buys headroom, not speed); a container cold start per new environment; S3
  latency and transfer per request; prices from :mod:`plateseg.planning.prices`.
- ``local``: slots = worker processes; no container, but each worker's first batch
  imports the segmentation stack (measured); the engine's per-child overhead
  (measured); zero prices.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Literal

from plateseg.errors import InputError
from plateseg.map_settings import DEFAULTS, MIN_MEMORY_MB, ChildExecutionType, MapSettings
from plateseg.planning.costs import (
    RUN_FIXED_GETS,
    RUN_FIXED_PUTS,
    CostBreakdown,
    RunQuantities,
    price_run,
)
from plateseg.planning.platform import AWS, Engine, Platform, local_platform
from plateseg.planning.prices import LIMITS, Limits

__all__ = [
    "AWS",
    "FieldProfile",
    "Platform",
    "Prediction",
    "Setting",
    "cpu_share",
    "local_platform",
    "makespan",
    "predict",
]


@dataclass(frozen=True)
class FieldProfile:
    """The per-field work, measured on a sample (see :mod:`plateseg.planning.workload`).

    Attributes
    ----------
    seconds_per_field : float
        Steady-state time of one field on one core of the measuring machine: read its
        channels, segment, measure, encode the mask.
    batch_overhead_seconds : float
        Extra time per batch inside the handler (Parquet part, recipe validation).
    cold_start_seconds : float
        Extra time of a fresh process's first batch (imports, first-call set-up).
    peak_mb : float
        Peak resident memory of a process segmenting fields one after another, MB.
    bytes_per_field : int
        Image bytes read per field (all channels).
    gets_per_field, puts_per_field, puts_per_batch : float
        S3 requests: channel reads; label mask writes; Parquet parts.
    item_bytes : int
        JSON size of one manifest item (batches must fit ``max_bytes_per_batch``).
    """

    seconds_per_field: float
    batch_overhead_seconds: float = 0.0
    cold_start_seconds: float = 0.0
    peak_mb: float = 300.0
    bytes_per_field: int = 0
    gets_per_field: float = 2.0
    puts_per_field: float = 1.0
    puts_per_batch: float = 1.0
    item_bytes: int = 250

    def __post_init__(self) -> None:
        for name in ("seconds_per_field", "batch_overhead_seconds", "cold_start_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{name} = {value!r}: must be a finite number >= 0")
        if not (math.isfinite(self.peak_mb) and self.peak_mb > 0):
            raise InputError(f"peak_mb = {self.peak_mb!r}: must be a positive number")


@dataclass(frozen=True)
class Setting:
    """One point of the grid: the Map settings (:class:`~plateseg.map_settings.MapSettings`)
    ``cdk.json`` (or ``plateseg run``) sets, and the Lambda architecture.

    ``max_concurrency = 0`` means unlimited, as in the ASL. ``memory_mb`` and
    ``execution_type`` are the settings' ``segment_memory_mb`` and ``child_execution_type``.
    """

    items_per_batch: int
    max_concurrency: int
    memory_mb: int = DEFAULTS.segment_memory_mb
    execution_type: ChildExecutionType = DEFAULTS.child_execution_type
    arch: Literal["x86_64", "arm64"] = "x86_64"
    max_bytes_per_batch: int = DEFAULTS.max_bytes_per_batch

    @classmethod
    def of(cls, settings: MapSettings, arch: Literal["x86_64", "arm64"] = "x86_64") -> Setting:
        """The grid point of some Map settings."""
        return cls(
            items_per_batch=settings.items_per_batch,
            max_concurrency=settings.max_concurrency,
            memory_mb=settings.segment_memory_mb,
            execution_type=settings.child_execution_type,
            arch=arch,
            max_bytes_per_batch=settings.max_bytes_per_batch,
        )

    def __post_init__(self) -> None:
        problems = []
        most = LIMITS.max_items_per_batch
        if not 1 <= self.items_per_batch <= most:
            problems.append(f"items per batch must be 1-{most}, got {self.items_per_batch}")
        most = LIMITS.max_map_concurrency
        if not 0 <= self.max_concurrency <= most:
            problems.append(f"max concurrency must be 0-{most}, got {self.max_concurrency}")
        most = LIMITS.max_memory_mb
        if not MIN_MEMORY_MB <= self.memory_mb <= most:
            problems.append(f"memory must be {MIN_MEMORY_MB}-{most} MB, got {self.memory_mb}")
        if self.execution_type not in ("STANDARD", "EXPRESS"):
            problems.append(
                f"execution type must be STANDARD or EXPRESS, not {self.execution_type}"
            )
        if self.arch not in ("x86_64", "arm64"):
            problems.append(f"architecture must be x86_64 or arm64, not {self.arch!r}")
        if problems:
            raise InputError("; ".join(problems))


def cpu_share(memory_mb: int, limits: Limits = LIMITS) -> float:
    """Speed of a single-threaded task at ``memory_mb`` relative to one full vCPU.

    Lambda allocates CPU in proportion to memory: one vCPU at 1,769 MB, six at
    10,240 MB. A single-threaded task uses at most one of them.

    >>> cpu_share(1769), cpu_share(10240), round(cpu_share(1024), 3)
    (1.0, 1.0, 0.579)
    """
    return min(1.0, memory_mb / limits.full_vcpu_mb)


@dataclass(frozen=True)
class Prediction:
    """What the model predicts for one setting on one platform.

    Attributes
    ----------
    wall_seconds : float
        Start of the execution to the end of Aggregate.
    map_seconds : float
        The Map Run's makespan.
    batches, items_per_batch : int
        Child executions and the batch size actually used (bytes may cap it).
    batch_seconds : float
        Duration of one full, warm batch (handler time plus orchestration).
    peak_concurrency : int
        Most Segment invocations running at once (= environments started).
    db_connections : int
        Database connections the run opens (Aggregate only: 1).
    cost : CostBreakdown or None
        ``None`` on an unpriced platform.
    problems : list of str
        Why the setting is invalid (empty = valid); notes are informational.
    """

    setting: Setting
    engine: Engine
    wall_seconds: float
    map_seconds: float
    batches: int
    items_per_batch: int
    batch_seconds: float
    cold_batch_seconds: float
    peak_concurrency: int
    db_connections: int
    segment_billed_seconds: float
    cost: CostBreakdown | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def cost_usd(self) -> float | None:
        return None if self.cost is None else self.cost.total


def makespan(
    durations: tuple[float, float],
    counts: tuple[int, int],
    slots: int,
    cold_seconds: float = 0.0,
    ramp: tuple[int, float] = (0, 0.0),
) -> float:
    """Finish time of batches scheduled in order on the earliest free of ``slots``.

    Parameters
    ----------
    durations : (float, float)
        Seconds of a full batch and of the last, partial batch.
    counts : (int, int)
        How many full batches, and 0 or 1 partial batch (scheduled last).
    slots : int
        Execution slots (environments) available.
    cold_seconds : float
        Added to the first batch each slot runs.
    ramp : (int, float)
        ``(n, period)``: slot ``i`` becomes available at ``(i // n) * period``.

    Examples
    --------
    Five 10 s batches on two slots, 2 s cold start: slot A runs 12, 10, 10 s.

    >>> makespan((10.0, 0.0), (5, 0), 2, cold_seconds=2.0)
    32.0
    """
    full, partial = counts
    total = full + partial
    if total == 0:
        return 0.0
    used = min(slots, total)
    per_step, period = ramp
    heap: list[tuple[float, bool, int]] = []  # (free at, warm, count): one cohort per entry
    if per_step > 0 and period > 0:
        for step in range(math.ceil(used / per_step)):
            count = min(per_step, used - step * per_step)
            heap.append((step * period, False, count))
    else:
        heap.append((0.0, False, used))
    heapq.heapify(heap)
    remaining_full, remaining_partial, end = full, partial, 0.0
    while remaining_full + remaining_partial > 0:
        if all(warm for _t, warm, _c in heap):  # fast-forward whole rounds
            slots_now = sum(count for _t, _w, count in heap)
            rounds = remaining_full // slots_now - 1
            if rounds > 0:
                shift = rounds * durations[0]
                heap = [(t + shift, True, c) for t, _w, c in heap]
                remaining_full -= rounds * slots_now
        free_at, warm, count = heapq.heappop(heap)
        extra = 0.0 if warm else cold_seconds
        take_full = min(count, remaining_full)
        remaining_full -= take_full
        if take_full:
            done = free_at + durations[0] + extra
            heapq.heappush(heap, (done, True, take_full))
            end = max(end, done)
        if take_full < count and remaining_partial:
            remaining_partial -= 1
            done = free_at + durations[1] + extra
            heapq.heappush(heap, (done, True, 1))
            end = max(end, done)
    return end


def predict(fields: int, profile: FieldProfile, setting: Setting, platform: Platform) -> Prediction:
    """Predict wall time, cost and concurrency of segmenting ``fields`` fields.

    Parameters
    ----------
    fields : int
        Fields of view in the experiment (manifest items).
    profile : FieldProfile
    setting : Setting
    platform : Platform
    """
    if fields < 0:
        raise InputError(f"fields = {fields}: must be >= 0")
    problems: list[str] = []
    notes: list[str] = []
    aws = platform.engine == "aws"
    by_bytes = max(1, setting.max_bytes_per_batch // max(1, profile.item_bytes))
    k = min(setting.items_per_batch, by_bytes)
    if k < setting.items_per_batch:
        notes.append(f"max_bytes_per_batch caps batches at {k} items of {profile.item_bytes} B")
    full, rest = divmod(fields, k)
    batches = full + (1 if rest else 0)

    share = cpu_share(setting.memory_mb) if aws else 1.0
    speed = share * platform.core_speed
    io = 0.0
    if platform.s3_seconds_per_request:
        io += (profile.gets_per_field + profile.puts_per_field) * platform.s3_seconds_per_request
    if platform.s3_mb_per_second:
        io += profile.bytes_per_field / 1e6 / platform.s3_mb_per_second
    per_field = profile.seconds_per_field / speed + io
    per_batch = profile.batch_overhead_seconds / speed + (
        profile.puts_per_batch * platform.s3_seconds_per_request
    )
    handler_full = k * per_field + per_batch
    handler_last = rest * per_field + per_batch
    cold = profile.cold_start_seconds / speed + platform.environment_start_seconds

    slots = platform.slots
    if setting.max_concurrency:
        slots = min(slots, setting.max_concurrency)
        if aws and setting.max_concurrency > platform.slots:
            notes.append(
                f"MaxConcurrency {setting.max_concurrency} exceeds the {platform.slots} "
                "reservable Lambda concurrency: the excess would only throttle"
            )
    used = min(slots, batches)
    ramp = (platform.scale_environments, platform.scale_period_seconds)
    child = platform.per_child_seconds
    map_seconds = makespan(
        (handler_full + child, handler_last + child), (full, 1 if rest else 0), slots, cold, ramp
    )
    billed = full * handler_full + (handler_last if rest else 0.0) + used * cold

    if aws:
        needed = platform.memory_overhead_mb + profile.peak_mb
        if needed * 1.2 > setting.memory_mb:
            problems.append(
                f"{setting.memory_mb} MB is below 1.2 x the ~{needed:.0f} MB a process needs"
            )
        worst = handler_full + cold
        if setting.execution_type == "EXPRESS" and worst > LIMITS.express_limit_seconds:
            problems.append(
                f"a batch may run {worst:.0f} s but EXPRESS children stop at "
                f"{LIMITS.express_limit_seconds:.0f} s"
            )
        if worst > 900:
            problems.append(f"a batch may run {worst:.0f} s, beyond Lambda's 900 s timeout")
    lookup = platform.lookup_seconds + (
        math.ceil(fields * profile.gets_per_field / 1000) * 0.1 if aws else 0.0
    )
    aggregate = platform.aggregate_seconds + fields * platform.aggregate_seconds_per_field
    wall = platform.startup_seconds + lookup + map_seconds + aggregate
    cost = None
    if platform.priced:
        quantities = RunQuantities(
            fields=fields,
            batches=batches,
            segment_billed_seconds=billed,
            segment_memory_mb=setting.memory_mb,
            small_function_seconds=lookup + aggregate,
            child_seconds=handler_full + cold + child,
            execution_type=setting.execution_type,
            arch=setting.arch,
            gets=math.ceil(fields * profile.gets_per_field) + RUN_FIXED_GETS,
            puts=math.ceil(fields * profile.puts_per_field + batches * profile.puts_per_batch)
            + RUN_FIXED_PUTS
            + math.ceil(fields * profile.gets_per_field / 1000),  # Lookup's LIST requests
        )
        cost = price_run(quantities)
    return Prediction(
        setting=setting,
        engine=platform.engine,
        wall_seconds=wall,
        map_seconds=map_seconds,
        batches=batches,
        items_per_batch=k,
        batch_seconds=handler_full + child,
        cold_batch_seconds=handler_full + child + cold,
        peak_concurrency=used,
        db_connections=1,
        segment_billed_seconds=billed,
        cost=cost,
        problems=problems,
        notes=notes,
    )
