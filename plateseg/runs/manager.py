"""Local runs in background threads (or the caller's), with a progress snapshot each.

:class:`RunManager` calls :func:`plateseg.runs.embedded.run_local` (or the resume, redrive or
retry function it is handed) with a ``cancel`` event and a listener that turns the
engine's events into a :class:`~plateseg.runs.progress.RunProgress` (items succeeded,
failed, running, throughput, ETA). It keeps how each run ended, so :meth:`result`
returns its :class:`~plateseg.contracts.AggregateResult` or raises the error it failed
with.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from plateseg.contracts import AggregateResult
from plateseg.engine import Event
from plateseg.errors import (
    ExecutionFailed,
    NotFoundError,
    PlatesegError,
    ResumeError,
    TransientError,
)
from plateseg.runs.progress import TERMINAL, RunProgress, with_timing
from plateseg.settings import Settings

__all__ = ["RunFunction", "RunManager"]

#: ``run_local``-compatible: ``(experiment_id, *, recipe, run_id, naming, tunables,
#: settings, listener, cancel) -> LocalRun``.
RunFunction = Callable[..., Any]


class _Tracked:
    """Mutable state of one run, guarded by the manager's lock."""

    def __init__(self, progress: RunProgress) -> None:
        self.progress = progress
        self.cancel = threading.Event()
        self.map_started: float | None = None
        #: when the run ended (monotonic): throughput stops at it instead of falling
        #: with every later look
        self.ended: float | None = None
        self.thread: threading.Thread | None = None
        self.result: AggregateResult | None = None
        self.error: BaseException | None = None


def _clock(tracked: _Tracked) -> float:
    """The time a run's figures are taken at: now while it runs, its end once ended."""
    return tracked.ended if tracked.ended is not None else time.monotonic()


class RunManager:
    """Runs local executions and reports their progress.

    Parameters
    ----------
    settings : Settings
        Passed to every run (store, database, workers).
    runner : callable, optional
        ``run_local``-compatible function (tests swap it); :func:`plateseg.runs.embedded.run_local`
        by default.
    listener : callable, optional
        Also receives every engine event of every run (the CLI's progress bar).
    foreground : bool
        Run in the calling thread (the CLI: Ctrl-C stops the run where it is) instead
        of a background thread (the web server).
    """

    def __init__(
        self,
        settings: Settings,
        runner: RunFunction | None = None,
        *,
        listener: Callable[[Event], None] | None = None,
        foreground: bool = False,
    ) -> None:
        if runner is None:
            from plateseg.runs.embedded import run_local

            runner = run_local
        self._settings = settings
        self._runner = runner
        self._listener = listener
        self._foreground = foreground
        self._runs: dict[str, _Tracked] = {}
        self._lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        return self._settings

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
        runner: RunFunction | None = None,
        *,
        naming: str | None = None,
        tunables: Any = None,
        started_by: str | None = None,
    ) -> RunProgress:
        """Start ``run_local`` (or ``runner``); return the first snapshot (in the
        foreground: the last)."""
        runner = runner or self._runner
        progress = RunProgress(
            run_id=run_id, experiment_id=experiment_id, engine="local", can_cancel=True
        )
        tracked = _Tracked(progress)
        with self._lock:
            if run_id in self._runs and self._runs[run_id].progress.status not in TERMINAL:
                raise ResumeError(f"run {run_id!r} is already running")
            self._runs[run_id] = tracked
        kwargs: dict[str, Any] = {
            "recipe": recipe,
            "run_id": run_id,
            "naming": naming,
            "tunables": tunables,
            "started_by": started_by,
            "settings": self._settings,
            "listener": lambda event: self._on_event(run_id, event),
            "cancel": tracked.cancel,
        }
        if self._foreground:
            self._work(runner, run_id, experiment_id, kwargs)
            return self.get(run_id)
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
        """Ask a running run to stop (no new batch starts; the journal keeps the rest)."""
        with self._lock:
            tracked = self._runs.get(run_id)
            if tracked is None:
                raise NotFoundError(f"run {run_id!r} is not running in this server")
            if tracked.progress.status in TERMINAL:
                raise ResumeError(f"run {run_id!r} already finished ({tracked.progress.status})")
            tracked.cancel.set()
            tracked.progress = replace(tracked.progress, phase="cancelling")
            return tracked.progress

    def wait(self, run_id: str, timeout: float | None = None) -> RunProgress:
        """Block until a run's thread ends (tests, CLI); return its final snapshot."""
        with self._lock:
            tracked = self._runs.get(run_id)
        if tracked is None:
            raise NotFoundError(f"run {run_id!r} is not running in this server")
        if tracked.thread is not None:
            tracked.thread.join(timeout)
        return self.get(run_id)

    def result(self, run_id: str, timeout: float | None = None) -> AggregateResult:
        """The result of a run that ended; the error it failed with is raised again.

        Raises
        ------
        TransientError
            The run did not end within ``timeout`` seconds (it goes on).
        """
        final = self.wait(run_id, timeout)
        with self._lock:
            tracked = self._runs[run_id]
            error, result = tracked.error, tracked.result
        if final.status not in TERMINAL:
            raise TransientError(f"run {run_id!r} still running after {timeout} s")
        if error is not None:
            raise error
        if result is None:
            raise NotFoundError(f"run {run_id!r} ended without a result")
        return result

    # --- internals ----------------------------------------------------------------

    def _on_event(self, run_id: str, event: Event) -> None:
        if self._listener is not None:
            self._listener(event)
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

    def _finish(self, run_id: str, raised: BaseException | None = None, **changes: Any) -> None:
        with self._lock:
            tracked = self._runs[run_id]
            tracked.ended = time.monotonic()
            tracked.error = raised
            tracked.progress = replace(
                tracked.progress, finished_at=datetime.now(UTC), can_cancel=False, **changes
            )

    def _work(
        self, runner: RunFunction, run_id: str, experiment_id: str, kwargs: dict[str, Any]
    ) -> None:
        try:
            outcome = runner(experiment_id, **kwargs)
        except PlatesegError as exc:
            if isinstance(exc, ExecutionFailed):
                error, cause = exc.error, exc.cause
            else:
                error, cause = type(exc).__name__, exc.message
            aborted = "abort" in str(error).lower() or "cancel" in str(error).lower()
            self._finish(
                run_id,
                exc,
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
                exc,
                status="FAILED",
                phase="failed",
                error="InternalError",
                cause=f"unexpected {type(exc).__name__} in the local engine",
            )
            return
        except BaseException as exc:  # Ctrl-C in the foreground: ended, then on to the CLI
            self._finish(run_id, exc, status="ABORTED", phase="aborted", error="Interrupted")
            raise
        result: AggregateResult | None = getattr(outcome, "result", None)
        changes: dict[str, Any] = {}
        if result is not None:  # per-image errors finish as succeeded Map items: count images
            ok, failed = int(result.images_ok), int(result.images_failed)
            changes = {"succeeded": ok, "failed": failed, "running": 0, "pending": 0}
            # redrive re-runs failed Map items (batches); per-image errors need new images
            changes["can_redrive"] = int(result.batches_failed) > 0
            # a retry also re-segments images that failed inside succeeded batches
            changes["can_retry"] = failed > 0 or int(result.batches_failed) > 0
            with self._lock:
                self._runs[run_id].result = result
        self._finish(run_id, status="SUCCEEDED", phase="done", **changes)
