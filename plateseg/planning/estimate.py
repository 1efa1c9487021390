"""One-call estimate of a run, for the web UI's new-run page and scripts.

:func:`estimate_run` wraps the model (:func:`plateseg.planning.model.predict`) with the
default platform constants: AWS as documented in :mod:`plateseg.planning.model`, or
this machine with typical engine overheads (``plateseg plan`` measures the real ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from plateseg.errors import InputError
from plateseg.map_settings import DEFAULTS, MapSettings
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
    settings: MapSettings = DEFAULTS,
    batch_size: int | None = None,
    max_concurrency: int | None = None,
    workers: int = 2,
    memory_mb: int | None = None,
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
    settings : MapSettings
        The Map settings of the run (the defaults if omitted).
    batch_size, max_concurrency : int, optional
        Instead of the settings' ``items_per_batch`` and ``max_concurrency`` (0 = unlimited).
    workers : int
        Local worker processes.
    memory_mb : int, optional
        Instead of the settings' ``segment_memory_mb`` (AWS).
    peak_mb_per_field : float, optional
        Peak memory of a process segmenting one field; settings below 1.2 x (runtime +
        peak) are reported in ``basis`` as too small.
    bytes_per_field : int, optional
        Image bytes read per field (S3 transfer time on AWS).

    Examples
    --------
    >>> from plateseg.map_settings import DEPLOYMENT_DEFAULTS  # 10 per batch, 100 at once
    >>> e = estimate_run(1000, 1.0, engine="aws", settings=DEPLOYMENT_DEFAULTS)
    >>> round(e.wall_seconds), round(e.cost_usd, 3)
    (26, 0.063)
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
    memory_mb = settings.segment_memory_mb if memory_mb is None else memory_mb
    setting = Setting(
        items_per_batch=settings.items_per_batch if batch_size is None else batch_size,
        max_concurrency=settings.max_concurrency if max_concurrency is None else max_concurrency,
        memory_mb=memory_mb if engine == "aws" else DEFAULTS.segment_memory_mb,
        execution_type=settings.child_execution_type,
        max_bytes_per_batch=settings.max_bytes_per_batch,
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
            f"{p.peak_concurrency} at once, {setting.execution_type} children, "
            f"us-east-1 prices of {PRICES_DATE}"
        )
    if p.problems:
        basis += "; warning: " + "; ".join(p.problems)
    return RunEstimate(p.wall_seconds, p.cost_usd, basis)
