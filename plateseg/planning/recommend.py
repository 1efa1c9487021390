"""The grid of AWS settings, the recommendation, and the ``cdk.json`` values to apply.

The grid crosses items per batch, Map concurrency, Segment memory, child execution type
and Lambda architecture; :func:`predict` prices every point. The recommendation is the
*cheapest valid setting whose wall time is within* ``slack`` *of the fastest valid one*
(objective ``balanced``), or simply the fastest or the cheapest. Only x86_64 settings
are recommended: the stacks build the Segment image for x86_64 (``cdk.json`` has no
architecture key); arm64 rows show what a Graviton build would save.

:func:`cdk_values` turns a setting into ``cdk.json`` ``context.plateseg`` values that pass
``stacks.config.PlatesegConfig`` (a test validates them with the real validator): the
timeout covers three warm batches, reserved concurrency equals the Map concurrency, and
for EXPRESS the retry count is lowered until the worst case of a child
(``(max_attempts + 1) x timeout + waits``) fits Express's 300 s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from plateseg.errors import InputError
from plateseg.map_settings import DEFAULTS
from plateseg.planning.model import AWS, FieldProfile, Platform, Prediction, Setting, predict
from plateseg.planning.prices import LIMITS

__all__ = [
    "BATCH_SIZES",
    "CONCURRENCIES",
    "MEMORIES",
    "Objective",
    "Recommendation",
    "cdk_values",
    "express_retry",
    "grid",
    "recommend",
]

Objective = Literal["balanced", "fastest", "cheapest"]

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
CONCURRENCIES = (10, 25, 50, 100, 200, 400, 900)
MEMORIES = (1024, 1769, 2048, 3008, 4096)

#: The CDK defaults of the Segment retry (``stacks.config.RetryConfig``).
RETRY_INTERVAL, RETRY_MAX_ATTEMPTS, RETRY_BACKOFF, RETRY_MAX_DELAY = 2, 4, 2.0, 60


def _retry(max_attempts: int) -> dict[str, Any]:
    return {
        "interval_seconds": RETRY_INTERVAL,
        "max_attempts": max_attempts,
        "backoff_rate": RETRY_BACKOFF,
        "max_delay_seconds": RETRY_MAX_DELAY,
        "jitter": "FULL",
    }


def _waits(attempts: int) -> float:
    return sum(min(RETRY_INTERVAL * RETRY_BACKOFF**i, RETRY_MAX_DELAY) for i in range(attempts))


def express_retry(timeout_seconds: int) -> int | None:
    """Most retries (``max_attempts`` <= 4) that keep an EXPRESS child within 300 s.

    The worst case of a child is ``(max_attempts + 1) x timeout + retry waits`` (the rule
    ``stacks.config`` enforces). ``None``: not even a single attempt fits.

    >>> express_retry(50), express_retry(90), express_retry(299), express_retry(301)
    (4, 2, 0, None)
    """
    for attempts in range(RETRY_MAX_ATTEMPTS, -1, -1):
        worst = (attempts + 1) * timeout_seconds + _waits(attempts)
        if worst <= LIMITS.express_limit_seconds:
            return attempts
    return None


def _timeout(prediction: Prediction) -> int:
    """Segment timeout: three warm batches or a cold one plus margin, 30-900 s."""
    needed = max(3 * prediction.batch_seconds, prediction.cold_batch_seconds + 10)
    return int(min(900, max(30, math.ceil(needed))))


def grid(
    fields: int,
    profile: FieldProfile,
    *,
    platform: Platform = AWS,
    batch_sizes: Iterable[int] = BATCH_SIZES,
    concurrencies: Iterable[int] = CONCURRENCIES,
    memories: Iterable[int] = MEMORIES,
    execution_types: Iterable[str] = ("STANDARD", "EXPRESS"),
    archs: Iterable[str] = ("x86_64", "arm64"),
) -> list[Prediction]:
    """Predict every setting of the grid (batch sizes above ``fields`` are skipped)."""
    sizes = sorted({b for b in batch_sizes if b <= max(1, fields)} or {1})
    rows = []
    for k in sizes:
        by_bytes = math.ceil(k * profile.item_bytes * 1.1) + 4096
        max_bytes = min(LIMITS.max_batch_bytes, max(DEFAULTS.max_bytes_per_batch, by_bytes))
        for c in sorted(set(concurrencies)):
            if c > platform.slots:
                continue
            for mem in sorted(set(memories)):
                for kind in execution_types:
                    for arch in archs:
                        setting = Setting(
                            items_per_batch=k,
                            max_concurrency=c,
                            memory_mb=mem,
                            execution_type=kind,  # type: ignore[arg-type]
                            arch=arch,  # type: ignore[arg-type]
                            max_bytes_per_batch=max_bytes,
                        )
                        prediction = predict(fields, profile, setting, platform)
                        if kind == "EXPRESS" and express_retry(_timeout(prediction)) is None:
                            prediction.problems.append(
                                "EXPRESS: no retry setting keeps a child within 300 s"
                            )
                        rows.append(prediction)
    return rows


@dataclass(frozen=True)
class Recommendation:
    """The chosen setting, why, and how to apply it.

    Attributes
    ----------
    prediction : Prediction
    reason : str
        One or two sentences a person can check against the table.
    cdk_json : dict
        ``context.plateseg`` values to merge into ``cdk.json``.
    fastest, cheapest : Prediction
        The extremes of the valid x86_64 settings, for comparison.
    arm64 : Prediction or None
        The same setting on arm64 (what a Graviton build would cost).
    """

    prediction: Prediction
    reason: str
    cdk_json: dict[str, Any]
    fastest: Prediction
    cheapest: Prediction
    arm64: Prediction | None


def _cost(p: Prediction) -> float:
    return p.cost_usd if p.cost_usd is not None else 0.0


def recommend(
    rows: list[Prediction], objective: Objective = "balanced", slack: float = 0.10
) -> Recommendation:
    """Pick the setting to deploy from a grid.

    Parameters
    ----------
    rows : list of Prediction
        From :func:`grid`.
    objective : {"balanced", "fastest", "cheapest"}
        ``balanced``: the cheapest setting within ``slack`` of the fastest wall time.
    slack : float
        Allowed slowdown against the fastest setting, as a fraction (0.10 = 10 %).

    Raises
    ------
    InputError
        No valid setting (e.g. every batch outlasts the Lambda timeout).
    """
    if objective not in ("balanced", "fastest", "cheapest"):
        raise InputError(f"objective {objective!r}: expected balanced, fastest or cheapest")
    valid = [p for p in rows if p.valid and p.setting.arch == "x86_64"]
    if not valid:
        problems = sorted({problem for p in rows for problem in p.problems})
        raise InputError("no valid AWS setting in the grid: " + "; ".join(problems[:3]))

    # ties: fewer environments, then smaller memory, then STANDARD
    def tie(p: Prediction) -> tuple[int, int, int]:
        return (p.peak_concurrency, p.setting.memory_mb, p.setting.execution_type == "EXPRESS")

    fastest = min(valid, key=lambda p: (round(p.wall_seconds, 3), _cost(p), tie(p)))
    cheapest = min(valid, key=lambda p: (round(_cost(p), 6), p.wall_seconds, tie(p)))
    if objective == "fastest":
        chosen = fastest
        why = f"fastest valid setting ({fastest.wall_seconds:.0f} s)"
    elif objective == "cheapest":
        chosen = cheapest
        why = f"cheapest valid setting (${_cost(cheapest):.4f})"
    else:
        bound = fastest.wall_seconds * (1 + slack)
        near = [p for p in valid if p.wall_seconds <= bound]
        chosen = min(near, key=lambda p: (round(_cost(p), 6), p.wall_seconds, tie(p)))
        saving = 1 - _cost(chosen) / _cost(fastest) if _cost(fastest) else 0.0
        why = (
            f"cheapest setting within {slack:.0%} of the fastest wall time "
            f"({fastest.wall_seconds:.0f} s); it costs {saving:.0%} less than the fastest"
        )
    s = chosen.setting
    detail = (
        f"{s.items_per_batch} fields per batch make {chosen.batches} batches of "
        f"~{chosen.batch_seconds:.1f} s on {chosen.peak_concurrency} concurrent Lambdas; "
        f"{s.memory_mb} MB gives {min(1.0, s.memory_mb / LIMITS.full_vcpu_mb):.2f} vCPU "
        f"to the single-threaded segmentation; {s.execution_type} children"
    )
    if s.execution_type == "EXPRESS":
        detail += " (short batches: Express duration is cheaper than 3 transitions each)"
    arm = next(
        (
            p
            for p in rows
            if p.setting.arch == "arm64"
            and (p.setting.items_per_batch, p.setting.max_concurrency, p.setting.memory_mb)
            == (s.items_per_batch, s.max_concurrency, s.memory_mb)
            and p.setting.execution_type == s.execution_type
        ),
        None,
    )
    return Recommendation(
        prediction=chosen,
        reason=f"{why}. {detail}.",
        cdk_json=cdk_values(chosen),
        fastest=fastest,
        cheapest=cheapest,
        arm64=arm,
    )


def cdk_values(prediction: Prediction) -> dict[str, Any]:
    """``context.plateseg`` values for a setting (merge them into ``cdk.json``).

    Raises
    ------
    InputError
        The setting is EXPRESS but no retry count keeps a child within 300 s.
    """
    s = prediction.setting
    timeout = _timeout(prediction)
    retry = _retry(RETRY_MAX_ATTEMPTS)
    if s.execution_type == "EXPRESS":
        attempts = express_retry(timeout)
        if attempts is None:
            raise InputError(
                f"EXPRESS with a {timeout} s Segment timeout cannot fit Express's 300 s; "
                "use STANDARD"
            )
        retry = _retry(attempts)
    return {
        "map_max_concurrency": s.max_concurrency,
        "items_per_batch": s.items_per_batch,
        "max_bytes_per_batch": s.max_bytes_per_batch,
        "segment_memory_mb": s.memory_mb,
        "segment_timeout_seconds": timeout,
        "segment_reserved_concurrency": s.max_concurrency,
        "child_execution_type": s.execution_type,
        "segment_retry": retry,
    }
