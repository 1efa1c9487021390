"""Where a run stands: the snapshot every :class:`~plateseg.runs.Runner` answers with."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["QUEUED", "TERMINAL", "RunProgress", "with_timing"]

#: Statuses after which a run does nothing more.
TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})
#: A run accepted by the web server and waiting for a slot (:mod:`plateseg.web.admission`).
QUEUED: Final = "QUEUED"


@dataclass(frozen=True)
class RunProgress:
    """What the run page shows: counters over the Map Run's items plus timing.

    ``throughput`` is finished items per second since the Map Run started; ``eta_seconds``
    extrapolates it over the items still pending or running (``None`` until known).
    ``can_redrive``: failed Map items (batches) can run again in the same execution;
    ``can_retry``: the run finished with failed images, failed batches or a failed
    execution, so a retry (a new execution of the same run) has something to do.
    ``execution_arn``: the Step Functions execution being followed (AWS only).
    """

    run_id: str
    experiment_id: str
    engine: str
    status: str = "RUNNING"
    phase: str = "starting"
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    pending: int = 0
    aborted: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    elapsed_seconds: float = 0.0
    throughput: float | None = None
    eta_seconds: float | None = None
    error: str | None = None
    cause: str | None = None
    can_cancel: bool = False
    can_redrive: bool = False
    can_retry: bool = False
    execution_arn: str | None = None

    @property
    def done(self) -> bool:
        """Whether the run ended (:data:`TERMINAL`)."""
        return self.status in TERMINAL

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data


def with_timing(progress: RunProgress, map_started: float | None, now: float) -> RunProgress:
    """Fill throughput and ETA from the counters and when the Map Run started."""
    done = progress.succeeded + progress.failed
    elapsed = (progress.finished_at or datetime.now(UTC)) - progress.started_at
    throughput = eta = None
    if map_started is not None and done > 0 and now > map_started:
        throughput = done / (now - map_started)
        left = max(progress.total - done - progress.aborted, 0)
        eta = left / throughput if progress.status not in TERMINAL else 0.0
    return replace(
        progress,
        elapsed_seconds=elapsed.total_seconds(),
        throughput=throughput,
        eta_seconds=eta,
    )
