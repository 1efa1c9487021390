"""Background run manager of the local engine: one thread per run, a progress snapshot.

:class:`RunManager` starts :func:`plateseg.runner.run_local` in a daemon thread and
turns the engine's events into a :class:`RunProgress` snapshot (items succeeded, failed,
running, throughput, ETA) that the run page polls. Cancel and redrive are seams: they
are used when :mod:`plateseg.runner` offers them (a ``cancel`` event argument of
``run_local``, a ``redrive_local`` function) and refused with a clear
:class:`~plateseg.errors.ResumeError` when absent. A run can be redriven when its
execution failed or was aborted, or when Map items (batches) failed. It can be
*retried* (:func:`plateseg.runner.retry_local`: a new execution of the same run that
reuses the batches that fully succeeded) whenever anything failed, per-image errors
included: replace a corrupt file, then retry.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from plateseg.engine import Event
from plateseg.errors import NotFoundError, PlatesegError, ResumeError
from plateseg.settings import Settings

__all__ = ["QUEUED", "TERMINAL", "RunManager", "RunProgress", "failed_to_start"]

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})
#: A run accepted by the web server and waiting for a slot (:mod:`plateseg.web.admission`).
QUEUED = "QUEUED"


@dataclass(frozen=True)
class RunProgress:
    """What the run page shows: counters over the Map Run's items plus timing.

    ``throughput`` is finished items per second since the Map Run started; ``eta_seconds``
    extrapolates it over the items still pending or running (``None`` until known).
    ``can_redrive``: failed Map items (batches) can run again in the same execution;
    ``can_retry``: the run finished with failed images, failed batches or a failed
    execution, so a retry (a new execution of the same run) has something to do.
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

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data


def failed_to_start(progress: RunProgress, exc: BaseException, why: str = "") -> RunProgress:
    """``progress`` ended FAILED because starting it raised ``exc``: the error's name and
    message (an HTTP error's detail; no internals of a bug), after ``why`` when given."""
    from fastapi import HTTPException

    error, cause = type(exc).__name__, str(exc)
    if isinstance(exc, HTTPException):
        cause = str(exc.detail)
    elif not isinstance(exc, PlatesegError):
        error, cause = "InternalError", f"unexpected {error} while starting the run"
    if why:
        cause = f"{why} ({cause}); start it again"
    return replace(
        progress,
        status="FAILED",
        phase="failed",
        error=error,
        cause=cause,
        finished_at=datetime.now(UTC),
        can_cancel=False,
    )


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


class _Tracked:
    """Mutable state of one run, guarded by the manager's lock."""

    def __init__(self, progress: RunProgress, cancel: threading.Event | None) -> None:
        self.progress = progress
        self.cancel = cancel
        self.map_started: float | None = None
        #: when the run ended (monotonic): throughput stops at it instead of falling
        #: with every later look
        self.ended: float | None = None
        self.thread: threading.Thread | None = None


def _clock(tracked: _Tracked) -> float:
    """The time a run's figures are taken at: now while it runs, its end once ended."""
    return tracked.ended if tracked.ended is not None else time.monotonic()


class RunManager:
    """Runs local executions in background threads and reports their progress.

    Parameters
    ----------
    settings : Settings
        Passed to every run (store, database, workers).
    runner : callable, optional
        ``run_local``-compatible function (tests and the redrive seam swap it).
    """

    def __init__(self, settings: Settings, runner: Callable[..., Any] | None = None) -> None:
        if runner is None:
            from plateseg.runner import run_local

            runner = run_local
        self._settings = settings
        self._runner = runner
        self._runs: dict[str, _Tracked] = {}
        self._lock = threading.Lock()

    # --- queries ------------------------------------------------------------------

    def get(self, run_id: str) -> RunProgress:
        """The snapshot of a run started by this process; :class:`NotFoundError` if unknown."""
        with self._lock:
            tracked = self._runs.get(run_id)
            if tracked is None:
                raise NotFoundError(f"run {run_id!r} is not running in this server")
            return with_timing(tracked.progress, tracked.map_started, _clock(tracked))

    def active(self) -> list[RunProgress]:
        """Snapshots of every run this process started, newest first."""
        with self._lock:
            rows = [with_timing(t.progress, t.map_started, _clock(t)) for t in self._runs.values()]
        return sorted(rows, key=lambda p: p.started_at, reverse=True)

    # --- commands -----------------------------------------------------------------

    def start(
        self,
        experiment_id: str,
        run_id: str,
        recipe: dict[str, Any],
        runner: Callable[..., Any] | None = None,
    ) -> RunProgress:
        """Start ``run_local`` (or ``runner``) in a background thread; return the first snapshot."""
        runner = runner or self._runner
        supports_cancel = "cancel" in inspect.signature(runner).parameters
        cancel = threading.Event() if supports_cancel else None
        progress = RunProgress(
            run_id=run_id,
            experiment_id=experiment_id,
            engine="local",
            can_cancel=cancel is not None,
        )
        tracked = _Tracked(progress, cancel)
        with self._lock:
            if run_id in self._runs and self._runs[run_id].progress.status not in TERMINAL:
                raise ResumeError(f"run {run_id!r} is already running")
            self._runs[run_id] = tracked
        kwargs: dict[str, Any] = {
            "recipe": recipe,
            "run_id": run_id,
            "settings": self._settings,
            "listener": lambda event: self._on_event(run_id, event),
        }
        if cancel is not None:
            kwargs["cancel"] = cancel
        thread = threading.Thread(
            target=self._work,
            args=(runner, run_id, experiment_id, kwargs),
            name=f"run-{run_id}",
            daemon=True,
        )
        tracked.thread = thread
        thread.start()
        return progress

    def cancel(self, run_id: str) -> RunProgress:
        """Ask a running run to stop (when the runner supports it)."""
        with self._lock:
            tracked = self._runs.get(run_id)
            if tracked is None:
                raise NotFoundError(f"run {run_id!r} is not running in this server")
            if tracked.progress.status in TERMINAL:
                raise ResumeError(f"run {run_id!r} already finished ({tracked.progress.status})")
            if tracked.cancel is None:
                raise ResumeError(
                    "this local engine cannot cancel a run yet (plateseg.runner.run_local "
                    "has no 'cancel' argument)"
                )
            tracked.cancel.set()
            tracked.progress = replace(tracked.progress, phase="cancelling")
            return tracked.progress

    def wait(self, run_id: str, timeout: float | None = None) -> RunProgress:
        """Block until a run's thread ends (tests, CLI); return its final snapshot."""
        with self._lock:
            tracked = self._runs.get(run_id)
        if tracked is None or tracked.thread is None:
            raise NotFoundError(f"run {run_id!r} is not running in this server")
        tracked.thread.join(timeout)
        return self.get(run_id)

    # --- internals ----------------------------------------------------------------

    def _on_event(self, run_id: str, event: Event) -> None:
        with self._lock:
            tracked = self._runs[run_id]
            details = event.details
            progress = tracked.progress
            if event.type == "StateEntered":
                progress = replace(progress, phase=str(details.get("name", progress.phase)))
            elif event.type == "MapRunStarted":
                tracked.map_started = time.monotonic()
                total = int(details.get("total", 0))
                progress = replace(progress, total=total, pending=total)
            elif event.type == "MapRunProgress":
                keys = ("pending", "running", "succeeded", "failed", "aborted", "total")
                counts: dict[str, Any] = {
                    key: int(details.get(key, getattr(progress, key))) for key in keys
                }
                progress = replace(progress, **counts)
            tracked.progress = progress

    def _finish(self, run_id: str, **changes: Any) -> None:
        with self._lock:
            tracked = self._runs[run_id]
            tracked.ended = time.monotonic()
            tracked.progress = replace(
                tracked.progress, finished_at=datetime.now(UTC), can_cancel=False, **changes
            )

    def _work(
        self, runner: Callable[..., Any], run_id: str, experiment_id: str, kwargs: dict[str, Any]
    ) -> None:
        try:
            outcome = runner(experiment_id, **kwargs)
        except PlatesegError as exc:
            error = getattr(exc, "error", type(exc).__name__)
            cause = getattr(exc, "cause", exc.message)
            aborted = "abort" in str(error).lower() or "cancel" in str(error).lower()
            self._finish(
                run_id,
                status="ABORTED" if aborted else "FAILED",
                phase="aborted" if aborted else "failed",
                error=str(error),
                cause=str(cause),
                can_redrive=True,
                can_retry=True,
            )
            return
        except Exception as exc:  # a bug must not kill the server; keep the class only
            self._finish(
                run_id,
                status="FAILED",
                phase="failed",
                error="InternalError",
                cause=f"unexpected {type(exc).__name__} in the local engine",
            )
            return
        result = getattr(outcome, "result", None)
        changes: dict[str, Any] = {}
        if result is not None:  # per-image errors finish as succeeded Map items: count images
            ok, failed = int(result.images_ok), int(result.images_failed)
            changes = {"succeeded": ok, "failed": failed, "running": 0, "pending": 0}
            # redrive re-runs failed Map items (batches); per-image errors need new images
            changes["can_redrive"] = int(result.batches_failed) > 0
            # a retry also re-segments images that failed inside succeeded batches
            changes["can_retry"] = failed > 0 or int(result.batches_failed) > 0
        self._finish(run_id, status="SUCCEEDED", phase="done", **changes)
