"""One-call estimate of a run, for the web UI's new-run page and scripts.

:func:`estimate_run` wraps the model (:func:`plateseg.planning.model.predict`) with the
default platform constants: AWS as documented in :mod:`plateseg.planning.model`, or
this machine with typical engine overheads (``plateseg plan`` measures the real ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from plateseg.errors import InputError
from plateseg.planning.model import AWS, FieldProfile, Setting, local_platform, predict
from plateseg.planning.prices import PRICES_DATE

__all__ = ["RunEstimate", "estimate_run"]


@dataclass(frozen=True)
class RunEstimate:
    """Predicted wall time and cost of one run.

    Attributes
    ----------
    wall_seconds : float
        Start of the execution to the end of aggregation.
    cost_usd : float or None
        AWS list-price cost of the run's work; ``None`` for a local run.
    basis : str
        One human-readable line saying what the estimate assumes.
    """

    wall_seconds: float
    cost_usd: float | None
    basis: str


def estimate_run(
    fields: int,
    seconds_per_field: float,
    *,
    engine: Literal["local", "aws"],
    batch_size: int = 4,
    max_concurrency: int = 16,
    workers: int = 2,
    memory_mb: int = 2048,
    peak_mb_per_field: float | None = None,
    bytes_per_field: int | None = None,
) -> RunEstimate:
    """Estimate a run of ``fields`` fields taking ``seconds_per_field`` each on one core.

    Parameters
    ----------
    fields : int
        Fields of view to segment.
    seconds_per_field : float
        Time of one field on one core of this machine (segment, measure, write outputs).
    engine : {"local", "aws"}
    batch_size, max_concurrency : int
        Map tunables (``max_concurrency`` 0 = unlimited).
    workers : int
        Local worker processes.
    memory_mb : int
        Segment Lambda memory (AWS).
    peak_mb_per_field : float, optional
        Peak memory of a process segmenting one field; settings below 1.2 x (runtime +
        peak) are reported in ``basis`` as too small.
    bytes_per_field : int, optional
        Image bytes read per field (S3 transfer time on AWS).

    Examples
    --------
    >>> e = estimate_run(1000, 1.0, engine="aws", batch_size=10, max_concurrency=100)
    >>> round(e.wall_seconds), round(e.cost_usd, 3)
    (26, 0.074)
    """
    if fields < 0:
        raise InputError(f"fields = {fields}: must be >= 0")
    if engine not in ("local", "aws"):
        raise InputError(f"engine {engine!r}: expected 'local' or 'aws'")
    profile = FieldProfile(
        seconds_per_field=seconds_per_field,
        peak_mb=peak_mb_per_field if peak_mb_per_field is not None else 300.0,
        bytes_per_field=bytes_per_field or 0,
    )
    setting = Setting(
        items_per_batch=batch_size,
        max_concurrency=max_concurrency,
        memory_mb=memory_mb if engine == "aws" else 2048,
    )
    platform = AWS if engine == "aws" else local_platform(workers)
    p = predict(fields, profile, setting, platform)
    if engine == "local":
        basis = (
            f"{fields} fields x {seconds_per_field:.2f} s on {workers} local worker processes, "
            f"{p.batches} batches of {p.items_per_batch}"
        )
    else:
        basis = (
            f"{p.batches} Lambda batches of {p.items_per_batch} at {memory_mb} MB, "
            f"{p.peak_concurrency} at once, STANDARD children, us-east-1 prices of {PRICES_DATE}"
        )
    if p.problems:
        basis += "; warning: " + "; ".join(p.problems)
    return RunEstimate(p.wall_seconds, p.cost_usd, basis)
