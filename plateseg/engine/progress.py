"""Progress of a running execution for the CLI and the web UI: counters, items/s, ETA.

:class:`ProgressTracker` is an engine listener (pass it as ``listener=``, or call it
from yours). It keeps the latest Map Run counters and derives the throughput from the
items finished over a sliding window of recent ``MapRunProgress`` events; a
:meth:`ProgressTracker.snapshot` can be taken from any thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from plateseg.engine.events import Event, Listener

__all__ = ["Progress", "ProgressTracker"]


@dataclass(frozen=True)
class Progress:
    """A point-in-time view of an execution.

    Attributes
    ----------
    status : str
        ``"RUNNING"``, ``"SUCCEEDED"``, ``"FAILED"`` or ``"ABORTED"``.
    state : str or None
        The top-level state last entered.
    map_run_arn : str or None
        The Map Run being counted (the latest one).
    total, pending, running, succeeded, failed, aborted : int
        Item counters of that Map Run.
    items_per_second : float or None
        Items finished (succeeded or failed) per second over the recent window.
    eta_seconds : float or None
        Remaining items / items_per_second, when the rate is known.
    """

    status: str
    state: str | None
    map_run_arn: str | None
    total: int
    pending: int
    running: int
    succeeded: int
    failed: int
    aborted: int
    items_per_second: float | None
    eta_seconds: float | None

    @property
    def done(self) -> int:
        """Items finished, succeeded or failed."""
        return self.succeeded + self.failed


class ProgressTracker:
    """Listener turning engine events into :class:`Progress` snapshots.

    Parameters
    ----------
    window_seconds : float
        Throughput is measured over the progress events of this many recent seconds.
    forward : callable, optional
        Another listener to hand every event to (after tracking it).
    monotonic : callable
        Time source (seconds); injectable for tests.
    """

    def __init__(
        self,
        window_seconds: float = 10.0,
        forward: Listener | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window_seconds
        self._forward = forward
        self._now = monotonic
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, int]] = deque()
        self._counts = {k: 0 for k in ("total", "pending", "running", "succeeded", "failed")}
        self._counts["aborted"] = 0
        self._status = "RUNNING"
        self._state: str | None = None
        self._map_run: str | None = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._track(event)
        if self._forward is not None:
            self._forward(event)

    def _track(self, event: Event) -> None:
        details = event.details
        if event.type == "StateEntered":
            self._state = details.get("name")
        elif event.type == "MapRunStarted":
            self._map_run = details.get("map_run_arn")
            self._samples.clear()
            self._counts = {k: 0 for k in self._counts}
            self._counts["total"] = self._counts["pending"] = int(details.get("total", 0))
        elif event.type in ("MapRunProgress", "MapRunResumed"):
            for key in self._counts:
                if key in details:
                    self._counts[key] = int(details[key])
            now = self._now()
            done = self._counts["succeeded"] + self._counts["failed"]
            if event.type == "MapRunResumed":
                self._samples.clear()  # items taken from the journal took no time now
            self._samples.append((now, done))
            while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
                self._samples.popleft()
        elif event.type.startswith("Execution") and event.type not in (
            "ExecutionStarted",
            "ExecutionResumed",
        ):
            ended = event.type.removeprefix("Execution")  # Succeeded, Failed, TimedOut, ...
            self._status = "TIMED_OUT" if ended == "TimedOut" else ended.upper()

    def snapshot(self) -> Progress:
        """The current progress (thread-safe)."""
        with self._lock:
            rate = None
            if len(self._samples) >= 2:
                (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
                if t1 > t0 and d1 > d0:
                    rate = (d1 - d0) / (t1 - t0)
            remaining = self._counts["pending"] + self._counts["running"]
            eta = remaining / rate if rate else (0.0 if self._status != "RUNNING" else None)
            return Progress(
                status=self._status,
                state=self._state,
                map_run_arn=self._map_run,
                items_per_second=rate,
                eta_seconds=eta,
                **self._counts,
            )
