"""Admission control for runs: a bounded number run at once, a bounded queue, then 429.

On one machine every local run starts a pool of worker processes; fifty users pressing
"Start" at once must not start fifty pools on two cores. :class:`AdmittedBackend` wraps
any :class:`~plateseg.web.backends.Backend`:

* up to ``max_active`` runs execute at once;
* the next ``max_queued`` starts are accepted (HTTP 202) with status ``QUEUED`` and a
  phase naming their place in the queue; a dispatcher thread starts them, oldest first,
  as running ones finish; a queued run can be cancelled (it ends ``ABORTED`` without
  ever starting);
* a start beyond that is refused with **429 Too Many Requests**, a ``Retry-After``
  header and a message naming the limits (``web_max_active_runs``,
  ``web_max_queued_runs``), never a 5xx.

A redrive or a retry starts a run too: it is admitted when a slot is free and refused
with 429 otherwise (it is not queued: the user asked for it on a run they look at).

The hook (one line where the backend is built, e.g. ``AppState.backend``)::

    self._backend = with_admission(make_backend(...), self.config)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException

from plateseg.errors import NotFoundError, PlatesegError, ResumeError
from plateseg.web.backends import Backend, Estimate
from plateseg.web.config import WebSettings
from plateseg.web.runs import TERMINAL, RunProgress

__all__ = ["QUEUED", "AdmittedBackend", "RunsBusy", "with_admission"]

QUEUED = "QUEUED"


class RunsBusy(HTTPException):
    """429: the server already runs and queues as many runs as it accepts."""

    def __init__(self, active: int, queued: int, retry_after: int) -> None:
        super().__init__(
            status_code=429,
            detail=(
                f"this server is busy: {active} runs running and {queued} queued "
                "(limits web_max_active_runs / web_max_queued_runs); "
                f"try again in {retry_after} s"
            ),
            headers={"Retry-After": str(retry_after)},
        )


@dataclass
class _Waiting:
    experiment_id: str
    run_id: str
    recipe: dict[str, Any]
    progress: RunProgress


class AdmittedBackend:
    """A backend that runs at most ``max_active`` runs and queues ``max_queued`` more.

    Parameters
    ----------
    inner : Backend
        The backend that really runs (local engine or Step Functions).
    max_active : int
        Runs executing at once (>= 1).
    max_queued : int
        Accepted runs waiting for a slot (>= 0); starts beyond are refused with 429.
    poll_seconds : float
        How often the dispatcher checks whether a running run finished.
    retry_after : int
        Seconds suggested to a refused client (``Retry-After``).
    """

    def __init__(
        self,
        inner: Backend,
        max_active: int,
        max_queued: int,
        poll_seconds: float = 0.25,
        retry_after: int = 5,
    ) -> None:
        if max_active < 1 or max_queued < 0:
            raise ValueError(f"admission needs max_active >= 1, max_queued >= 0: {max_active=}")
        self.inner = inner
        self.engine = inner.engine
        self.max_active = max_active
        self.max_queued = max_queued
        self.poll_seconds = poll_seconds
        self.retry_after = retry_after
        self._active: set[str] = set()
        self._queue: deque[_Waiting] = deque()
        self._ended: dict[str, RunProgress] = {}  # queued runs cancelled or failed to start
        self._starting: dict[str, RunProgress] = {}  # admitted, inner.start not returned yet
        self._lock = threading.Lock()
        self._dispatcher: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:  # manager, retry, ... of the inner backend
        return getattr(self.inner, name)

    # --- the Backend protocol ---------------------------------------------------------

    def start(self, experiment_id: str, run_id: str, recipe: dict[str, Any]) -> RunProgress:
        """Start now, queue (status ``QUEUED``), or refuse with :class:`RunsBusy` (429).

        Raises
        ------
        ResumeError
            ``run_id`` is already queued or running here (HTTP 409).
        """
        with self._lock:
            self._reap()
            if run_id in self._active or any(w.run_id == run_id for w in self._queue):
                raise ResumeError(f"run {run_id!r} is already queued or running")
            if len(self._active) < self.max_active and not self._queue:
                self._admit(run_id, None)
                waiting = None
            elif len(self._queue) < self.max_queued:
                progress = RunProgress(
                    run_id=run_id,
                    experiment_id=experiment_id,
                    engine=self.inner.engine,
                    status=QUEUED,
                    phase=f"queued ({len(self._queue)} ahead)",
                    can_cancel=True,
                )
                waiting = _Waiting(experiment_id, run_id, recipe, progress)
                self._queue.append(waiting)
                self._ensure_dispatcher()
            else:
                raise RunsBusy(len(self._active), len(self._queue), self.retry_after)
        if waiting is not None:
            return waiting.progress
        return self._started(run_id, lambda: self.inner.start(experiment_id, run_id, recipe))

    def progress(self, run_id: str) -> RunProgress:
        """A queued run's place in the queue, else the inner backend's progress."""
        with self._lock:
            for ahead, waiting in enumerate(self._queue):
                if waiting.run_id == run_id:
                    return replace(waiting.progress, phase=f"queued ({ahead} ahead)")
            known = self._ended.get(run_id) or self._starting.get(run_id)
        return known if known is not None else self.inner.progress(run_id)

    def cancel(self, run_id: str) -> RunProgress:
        """Remove a queued run (it ends ``ABORTED``), else cancel the running one."""
        with self._lock:
            for waiting in self._queue:
                if waiting.run_id == run_id:
                    self._queue.remove(waiting)
                    ended = replace(
                        waiting.progress,
                        status="ABORTED",
                        phase="cancelled before it started",
                        finished_at=datetime.now(UTC),
                        can_cancel=False,
                    )
                    self._ended[run_id] = ended
                    return ended
        return self.inner.cancel(run_id)

    def redrive(self, run_id: str) -> RunProgress:
        """Redrive when a slot is free; 429 otherwise (a redrive is never queued)."""
        return self._now_or_busy(run_id, lambda: self.inner.redrive(run_id))

    def retry(self, run_id: str) -> RunProgress:
        """Retry a run's failed images when a slot is free; 429 otherwise (never queued)."""
        return self._now_or_busy(run_id, lambda: self.inner.retry(run_id))

    def estimate(self, fields: int, seconds_per_field: float) -> Estimate:
        return self.inner.estimate(fields, seconds_per_field)

    def supports_redrive(self) -> bool:
        return self.inner.supports_redrive()

    # --- internals --------------------------------------------------------------------

    def queued(self) -> list[RunProgress]:
        """Snapshots of the runs waiting for a slot, next to start first."""
        with self._lock:
            return [
                replace(w.progress, phase=f"queued ({ahead} ahead)")
                for ahead, w in enumerate(self._queue)
            ]

    def counts(self) -> tuple[int, int]:
        """``(running, queued)`` right now."""
        with self._lock:
            self._reap()
            return len(self._active), len(self._queue)

    def _now_or_busy(self, run_id: str, start: Callable[[], RunProgress]) -> RunProgress:
        """Run ``start`` in a free slot at once, or raise :class:`RunsBusy`."""
        with self._lock:
            self._reap()
            if run_id in self._active or any(w.run_id == run_id for w in self._queue):
                # its slot is its own: a refused redrive must not free it (409, not 429)
                raise ResumeError(f"run {run_id!r} is still queued or running")
            if len(self._active) >= self.max_active or self._queue:
                raise RunsBusy(len(self._active), len(self._queue), self.retry_after)
            self._admit(run_id, None)
        return self._started(run_id, start)

    def _admit(self, run_id: str, progress: RunProgress | None) -> None:
        """Take a slot for ``run_id`` (caller holds the lock)."""
        self._active.add(run_id)
        self._ended.pop(run_id, None)
        self._starting[run_id] = progress or RunProgress(
            run_id=run_id, experiment_id="", engine=self.inner.engine, phase="starting"
        )

    def _started(self, run_id: str, start: Callable[[], RunProgress]) -> RunProgress:
        """Call ``start``; free the slot again when it raises."""
        try:
            return start()
        except BaseException:
            with self._lock:
                self._active.discard(run_id)
            raise
        finally:
            with self._lock:
                self._starting.pop(run_id, None)

    def _finished(self, run_id: str) -> bool:
        if run_id in self._starting:
            return False
        try:
            return self.inner.progress(run_id).status in TERMINAL
        except NotFoundError:
            return True
        except PlatesegError:  # e.g. AWS throttled: keep the slot, look again later
            return False

    def _reap(self) -> None:
        """Free the slots of finished runs (caller holds the lock)."""
        for run_id in [r for r in self._active if self._finished(r)]:
            self._active.discard(run_id)

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or not self._dispatcher.is_alive():
            self._dispatcher = threading.Thread(
                target=self._dispatch, name="run-admission", daemon=True
            )
            self._dispatcher.start()

    def _dispatch(self) -> None:
        """Start queued runs, oldest first, while slots are free; end when the queue is."""
        while True:
            with self._lock:
                self._reap()
                if not self._queue:
                    self._dispatcher = None
                    return
                ready: list[_Waiting] = []
                while self._queue and len(self._active) < self.max_active:
                    waiting = self._queue.popleft()
                    self._admit(waiting.run_id, replace(waiting.progress, phase="starting"))
                    ready.append(waiting)
            for waiting in ready:
                self._start_queued(waiting)
            time.sleep(self.poll_seconds)

    def _start_queued(self, waiting: _Waiting) -> None:
        inner = self.inner
        try:
            self._started(
                waiting.run_id,
                lambda: inner.start(waiting.experiment_id, waiting.run_id, waiting.recipe),
            )
        except Exception as exc:  # the dispatcher must outlive any one run's start
            error, cause = type(exc).__name__, str(exc)
            if isinstance(exc, HTTPException):
                cause = str(exc.detail)
            elif not isinstance(exc, PlatesegError):
                error, cause = "InternalError", f"unexpected {error} while starting the run"
            with self._lock:
                self._ended[waiting.run_id] = replace(
                    waiting.progress,
                    status="FAILED",
                    phase="failed",
                    error=error,
                    cause=cause,
                    finished_at=datetime.now(UTC),
                    can_cancel=False,
                )


def with_admission(backend: Backend, config: WebSettings) -> Backend:
    """``backend`` behind admission control as ``config`` sets it.

    Only the local engine is bounded (it shares this machine's cores); Step Functions
    scales on its own and has its own quotas. ``web_max_active_runs=0`` turns it off.
    """
    if backend.engine != "local" or config.web_max_active_runs == 0:
        return backend
    admitted: Backend = AdmittedBackend(
        backend, config.web_max_active_runs, config.web_max_queued_runs
    )
    return admitted
