"""Admission control for runs: a bounded number run at once, a bounded queue, then 429.

On one machine every local run starts a pool of worker processes; fifty users pressing
"Start" at once must not start fifty pools on two cores. :class:`AdmittedBackend` wraps
a :class:`~plateseg.runs.Runner` and is one itself:

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

Accepted runs survive a restart: with a store, every start is recorded *before* it is
answered 202 (:mod:`plateseg.web.accepted` says how), :meth:`AdmittedBackend.recover`
takes them back when the server starts, and :meth:`AdmittedBackend.close` (shutdown)
stops dispatching, leaving what waits recorded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from plateseg.contracts import AggregateResult, Recipe
from plateseg.errors import NotFoundError, PlatesegError, ResumeError, TransientError
from plateseg.runs.base import Engine, Estimate, Kind, Runner, RunOptions, execution_input
from plateseg.runs.ids import new_run_id
from plateseg.runs.local import LocalRunner
from plateseg.runs.manager import RunManager
from plateseg.runs.progress import QUEUED, TERMINAL, RunProgress
from plateseg.store import Store
from plateseg.web.accepted import AcceptedRun, AcceptedRuns, Ledger, failed_to_start, unreadable
from plateseg.web.config import WebSettings
from plateseg.web.errors import RunsBusy

__all__ = ["QUEUED", "STOPPED_CAUSE", "AdmittedBackend", "RunsBusy", "with_admission"]

#: The cause of a run that was running when the server stopped and cannot be resumed.
STOPPED_CAUSE = "the server stopped while the run was in progress and it cannot be resumed"


@dataclass
class _Waiting:
    record: AcceptedRun  # the request: experiment, run id, recipe, options, kind
    progress: RunProgress
    resume: bool = False  # it was running when the server stopped

    @property
    def run_id(self) -> str:
        return self.record.run_id


class AdmittedBackend:
    """A backend that runs at most ``max_active`` runs and queues ``max_queued`` more.

    Parameters
    ----------
    inner : Runner
        The runner that really runs (local engine or Step Functions).
    max_active : int
        Runs executing at once (>= 1).
    max_queued : int
        Accepted runs waiting for a slot (>= 0); starts beyond are refused with 429.
    poll_seconds : float
        How often the dispatcher checks whether a running run finished.
    retry_after : int
        Seconds suggested to a refused client (``Retry-After``).
    accepted : AcceptedRuns, optional
        Where accepted runs are recorded so a restart loses none; without it the
        queue lives in memory only.
    """

    def __init__(
        self,
        inner: Runner,
        max_active: int,
        max_queued: int,
        poll_seconds: float = 0.25,
        retry_after: int = 5,
        accepted: AcceptedRuns | None = None,
    ) -> None:
        if max_active < 1 or max_queued < 0:
            raise ValueError(f"admission needs max_active >= 1, max_queued >= 0: {max_active=}")
        self.inner = inner
        self.engine: Engine = inner.engine
        self.map_settings = inner.map_settings
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
        self._ledger = Ledger(accepted)

    @property
    def manager(self) -> RunManager:
        """The run manager of the local runner inside (tests wait on it)."""
        if not isinstance(self.inner, LocalRunner):
            raise NotFoundError(f"the {self.engine} engine has no local run manager")
        return self.inner.manager

    def start(
        self,
        experiment_id: str,
        run_id: str | None,
        recipe: Recipe | Mapping[str, Any] | None = None,
        *,
        options: RunOptions | None = None,
        who: str = "",
    ) -> RunProgress:
        """Start now, queue (status ``QUEUED``), or refuse with :class:`RunsBusy` (429).

        The request is checked first (``ExecutionInputError``/``RecipeError``: 422) and
        recorded (:mod:`plateseg.web.accepted`) before this returns (``StoreError``: not
        accepted). ``ResumeError`` (409): ``run_id`` is already queued or running here;
        ``TransientError`` (503): the server is shutting down.
        """
        options = options or RunOptions()
        if who and options.started_by is None:  # recorded with the run
            options = options.model_copy(update={"started_by": who})
        run_id = run_id or new_run_id(experiment_id)
        checked = execution_input(experiment_id, run_id, recipe, options)
        recipe = checked.recipe.model_dump(mode="json")
        with self._lock:
            if self._ledger.closed:
                raise TransientError("this server is shutting down: start the run again shortly")
            self._reap()
            if run_id in self._active or any(w.run_id == run_id for w in self._queue):
                raise ResumeError(f"run {run_id!r} is already queued or running")
            record = AcceptedRun(
                run_id=run_id,
                experiment_id=experiment_id,
                recipe=recipe,
                naming=options.naming,
                items_per_batch=options.items_per_batch,
                max_concurrency=options.max_concurrency,
                who=who,
                accepted_at=self._ledger.stamp(),
            )
            if len(self._active) < self.max_active and not self._queue:
                self._ledger.save(record.model_copy(update={"stage": "started"}))
                self._admit(run_id, RunProgress(run_id, experiment_id, self.inner.engine, QUEUED))
                waiting = None
                if self._ledger.durable:  # forget the record when the run ends
                    self._ensure_dispatcher()
            elif len(self._queue) < self.max_queued:
                progress = RunProgress(
                    run_id=run_id,
                    experiment_id=experiment_id,
                    engine=self.inner.engine,
                    status=QUEUED,
                    phase=f"queued ({len(self._queue)} ahead)",
                    can_cancel=True,
                )
                self._ledger.save(record)
                waiting = _Waiting(record, progress)
                self._queue.append(waiting)
                self._ensure_dispatcher()
            else:
                raise RunsBusy(len(self._active), len(self._queue), self.retry_after)
        if waiting is not None:
            return waiting.progress
        try:
            return self._started(
                run_id, lambda: self.inner.start(experiment_id, run_id, recipe, options=options)
            )
        except BaseException:  # refused after all (e.g. 409): it was never accepted
            with self._lock:
                self._ledger.forget(run_id)
            raise

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
                    self._end(waiting, ended)
                    return ended
        return self.inner.cancel(run_id)

    def redrive(self, run_id: str) -> RunProgress:
        """Redrive when a slot is free; 429 otherwise (a redrive is never queued)."""
        return self._now_or_busy(run_id, lambda: self.inner.redrive(run_id), "redrive")

    def retry(self, run_id: str) -> RunProgress:
        """Retry a run's failed images when a slot is free; 429 otherwise (never queued)."""
        return self._now_or_busy(run_id, lambda: self.inner.retry(run_id), "retry")

    def resume(
        self, run_id: str, kind: Kind = "start", *, interrupted_only: bool = False
    ) -> RunProgress | None:  # :meth:`recover` resumes recorded runs
        return self.inner.resume(run_id, kind, interrupted_only=interrupted_only)

    def wait(self, run_id: str, timeout: float | None = None) -> AggregateResult:
        return self.inner.wait(run_id, timeout)

    def followed(self) -> list[RunProgress]:
        """Runs the engine runs, then those being handed to it or queued, then those
        that ended before starting or could not be resumed; each run once."""
        listed: dict[str, RunProgress] = {}
        for progress in [*self.inner.followed(), *self.queued(), *self.ended()]:
            listed.setdefault(progress.run_id, progress)
        return list(listed.values())

    def estimate(self, fields: int, seconds_per_field: float) -> Estimate:
        return self.inner.estimate(fields, seconds_per_field)

    def supports_redrive(self) -> bool:
        return self.inner.supports_redrive()

    # --- internals --------------------------------------------------------------------

    def queued(self) -> list[RunProgress]:
        """Snapshots of the runs being handed to the engine, then of those waiting for
        a slot, next to start first."""
        with self._lock:
            return [
                replace(p, status=QUEUED, phase="starting") for p in self._starting.values()
            ] + [
                replace(w.progress, phase=f"queued ({ahead} ahead)")
                for ahead, w in enumerate(self._queue)
            ]

    def ended(self) -> list[RunProgress]:
        """Runs accepted here that ended without the engine finishing them: cancelled
        while queued, failed to start, or not resumable after a restart."""
        with self._lock:
            return sorted(self._ended.values(), key=lambda p: p.started_at, reverse=True)

    def recover(self) -> None:
        """Take back the runs recorded before the server stopped (call once, at start).

        Runs that were waiting are queued again in the order they were accepted, after
        the runs that were running, which are resumed (:meth:`Runner.resume
        <plateseg.runs.base.Runner.resume>`) as slots allow; a run that
        finished meanwhile is only forgotten; ended ones stay listed (:meth:`ended`).
        """
        if not self._ledger.durable:
            return
        records, damaged = self._ledger.load()
        running: list[_Waiting] = []
        waiting: list[_Waiting] = []
        with self._lock:
            for run_id in damaged:
                self._ended[run_id] = unreadable(run_id, self.inner.engine)
            for record in records:
                if record.stage == "ended":
                    self._ended[record.run_id] = record.progress(self.inner.engine)
                    continue
                started = record.stage == "started"
                # a start that finished meanwhile is only forgotten (unsure: not finished,
                # resuming looks again); a redrive or retry: its journal tells
                if started and record.kind == "start" and self._finished(record.run_id, False):
                    self._ledger.drop(record.run_id)
                    continue
                entry = _Waiting(record, record.waiting(self.inner.engine), resume=started)
                (running if entry.resume else waiting).append(entry)
            self._queue.extendleft(reversed(running + waiting))
            if self._queue:
                self._ensure_dispatcher()

    def close(self) -> None:
        """Stop starting queued runs (server shutdown); they stay recorded."""
        with self._lock:
            self._ledger.closed = True

    def counts(self) -> tuple[int, int]:
        """``(running, queued)`` right now."""
        with self._lock:
            self._reap()
            return len(self._active), len(self._queue)

    def _now_or_busy(
        self, run_id: str, start: Callable[[], RunProgress], kind: Kind
    ) -> RunProgress:
        """Run ``start`` in a free slot at once (recorded as ``kind``), or raise
        :class:`RunsBusy`."""
        try:
            experiment_id = self.inner.progress(run_id).experiment_id
        except PlatesegError:
            experiment_id = ""  # the inner backend names what is wrong with the run id
        with self._lock:
            self._reap()
            if run_id in self._active or any(w.run_id == run_id for w in self._queue):
                # its slot is its own: a refused redrive must not free it (409, not 429)
                raise ResumeError(f"run {run_id!r} is still queued or running")
            if len(self._active) >= self.max_active or self._queue:
                raise RunsBusy(len(self._active), len(self._queue), self.retry_after)
            self._ledger.save(
                AcceptedRun(
                    run_id=run_id,
                    experiment_id=experiment_id,
                    kind=kind,
                    accepted_at=self._ledger.stamp(),
                    stage="started",
                )
            )
            self._admit(run_id, None)
            if self._ledger.durable:  # forget the record when the run ends
                self._ensure_dispatcher()
        try:
            return self._started(run_id, start)
        except BaseException:  # refused (nothing to redrive, ...): it was never accepted
            with self._lock:
                self._ledger.forget(run_id)
            raise

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

    def _finished(self, run_id: str, unknown: bool = True) -> bool:
        """Whether the engine finished ``run_id``; ``unknown``: the answer for a run it
        does not know (a slot's run: finished; a run recorded before a restart: not)."""
        if run_id in self._starting:
            return False
        try:
            return self.inner.progress(run_id).status in TERMINAL
        except NotFoundError:
            return unknown
        except PlatesegError:  # e.g. AWS throttled: keep the slot, look again later
            return False

    def _reap(self) -> None:
        """Free the slots of finished runs (caller holds the lock)."""
        for run_id in [r for r in self._active if self._finished(r)]:
            self._active.discard(run_id)
            self._ledger.forget(run_id)

    def _end(self, waiting: _Waiting, ended: RunProgress) -> None:
        """A run ended outside the engine: keep it listed, now and after a restart
        (caller holds the lock)."""
        self._ended[waiting.run_id] = ended
        self._ledger.end(waiting.record, ended)

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or not self._dispatcher.is_alive():
            self._dispatcher = threading.Thread(
                target=self._dispatch, name="run-admission", daemon=True
            )
            self._dispatcher.start()

    def _dispatch(self) -> None:
        """Start queued runs, oldest first, while slots are free; end when the queue is
        empty and (with records to drop as runs end) no run is active."""
        while True:
            with self._lock:
                self._reap()
                watching = self._ledger.durable and bool(self._active)
                if (not self._queue and not watching) or self._ledger.closed:
                    self._dispatcher = None
                    return
                ready: list[_Waiting] = []
                while self._queue and len(self._active) < self.max_active:
                    waiting = self._queue.popleft()
                    self._admit(waiting.run_id, replace(waiting.progress, phase="starting"))
                    if waiting.record.stage == "queued":
                        self._ledger.save(waiting.record.model_copy(update={"stage": "started"}))
                    ready.append(waiting)
            for waiting in ready:
                self._start_queued(waiting)
            time.sleep(self.poll_seconds)

    def _start_queued(self, waiting: _Waiting) -> None:
        inner, request = self.inner, waiting.record

        def start() -> RunProgress:
            resumed = (
                inner.resume(request.run_id, request.kind, interrupted_only=True)
                if waiting.resume
                else None
            )
            return resumed or inner.start(
                request.experiment_id, request.run_id, request.recipe, options=request.options()
            )

        try:
            self._started(request.run_id, start)
        except Exception as exc:  # the dispatcher must outlive any one run's start
            ended = failed_to_start(waiting.progress, exc, STOPPED_CAUSE if waiting.resume else "")
            with self._lock:
                self._end(waiting, ended)


def with_admission(backend: Runner, config: WebSettings, store: Store | None = None) -> Runner:
    """``backend`` behind admission control as ``config`` sets it.

    Only the local engine is bounded (it shares this machine's cores); Step Functions
    scales on its own, has its own quotas and keeps its executions across a restart of
    this server. ``web_max_active_runs=0`` turns it off. With ``store``, accepted runs
    are recorded there and survive a restart (:meth:`AdmittedBackend.recover`).
    """
    if backend.engine != "local" or config.web_max_active_runs == 0:
        return backend
    admitted: Runner = AdmittedBackend(
        backend,
        config.web_max_active_runs,
        config.web_max_queued_runs,
        accepted=AcceptedRuns(store) if store is not None else None,
    )
    return admitted
