"""Time for the engine: every wait and retry interval goes through a :class:`Clock`.

``time_scale`` multiplies every sleep (0 never sleeps), so tests and demos run a
definition with real ``Wait`` states and back-off without waiting for them. The clock
also owns the random generator used for retry jitter, so a seeded clock gives
reproducible delays.

An execution with a top-level ``TimeoutSeconds`` runs on an :class:`ExecutionClock`
wrapped around the engine's clock. It measures the execution's time in ASL seconds:
real time elapsed plus, for every sleep, the ASL seconds the scaled clock skipped. So
``Wait 100`` under ``time_scale=0`` counts as 100 seconds, and the execution ends with
``States.Timeout`` at its deadline whatever the scale. Each thread keeps its own
account (branches waiting side by side do not add up); :meth:`Clock.fork` hands it to
the jobs a Parallel or Map runs on its threads and takes the latest back at the end.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from plateseg.errors import StatesError

__all__ = ["Clock", "ExecutionClock", "ExecutionTimedOut", "Fork"]


class ExecutionTimedOut(StatesError):
    """The execution ran past its top-level ``TimeoutSeconds``.

    It ends the execution (status ``TIMED_OUT``): no Retry or Catch applies, as in
    Step Functions, where an execution timeout is not an error a state can handle.
    """

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__(
            "States.Timeout",
            f"The execution ran longer than its TimeoutSeconds ({timeout_seconds:g} seconds)",
        )


class Clock:
    """Wall-clock time, scaled sleeps and the jitter random source.

    Parameters
    ----------
    time_scale : float
        Factor applied to every sleep; ``0`` returns at once, ``1`` sleeps for real.
    seed : int, optional
        Seed of the random generator used for ``JitterStrategy: FULL``.
    """

    def __init__(self, time_scale: float = 1.0, seed: int | None = None) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, got {time_scale}")
        self.time_scale = float(time_scale)
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (ASL seconds) scaled by ``time_scale``."""
        if seconds > 0 and self.time_scale > 0:
            time.sleep(seconds * self.time_scale)

    def uniform(self, low: float, high: float) -> float:
        """A random float in ``[low, high]`` (thread-safe)."""
        with self._lock:
            return self._random.uniform(low, high)

    def remaining(self) -> float | None:
        """ASL seconds left before the execution's deadline; ``None`` without one."""
        return None

    def check_deadline(self) -> None:
        """Raise :class:`ExecutionTimedOut` once the deadline has passed (never here)."""

    def fork(self, slots: int) -> Fork:
        """Carry this thread's account of time to jobs run on ``slots`` threads."""
        return Fork(self, slots)

    def _lag(self) -> float:
        """ASL seconds this thread is ahead of real time (skipped by scaled sleeps)."""
        return 0.0

    def _set_lag(self, lag: float) -> None:
        """Set this thread's lag (a plain clock keeps none)."""


class Fork:
    """Jobs run on at most ``slots`` threads at once (a Parallel's branches, a Map's
    iterations): each starts when a slot frees, in ASL time.

    :meth:`wrap` a callable before handing it to a pool: it takes the slot that frees
    first (all are free at the starting thread's time) and gives it back at the time
    it reached, so ``MaxConcurrency: 1`` adds its iterations' waits up while branches
    side by side do not. After the jobs, :meth:`join` moves the starting thread to
    the latest time any reached (a Parallel state ends with its slowest branch).
    """

    def __init__(self, clock: Clock, slots: int) -> None:
        self._clock = clock
        self._start = clock._lag()
        self._free = [self._start] * max(1, slots)  # a heap: when each slot frees
        self._latest = self._start
        self._lock = threading.Lock()

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` started in the first free slot, its end time recorded."""

        def run(*args: Any) -> Any:
            with self._lock:  # the pool runs no more than ``slots`` jobs at once
                begin = heapq.heappop(self._free) if self._free else self._start
            self._clock._set_lag(begin)
            try:
                return fn(*args)
            finally:
                end = self._clock._lag()
                with self._lock:
                    heapq.heappush(self._free, end)
                    self._latest = max(self._latest, end)

        return run

    def join(self) -> None:
        """Move the calling (starting) thread to the latest time reached."""
        self._clock._set_lag(max(self._latest, self._clock._lag()))


class ExecutionClock(Clock):
    """One execution's clock: ``base`` plus a deadline of ``timeout_seconds``.

    Parameters
    ----------
    base : Clock
        The engine's clock; sleeps, ``now`` and jitter go through it. It may itself be
        an :class:`ExecutionClock` (a child execution run by ``states:startExecution.sync``
        inside its parent, or a task's own ``TimeoutSeconds`` around it): the clocks
        then share one account of time, and the earliest deadline ends the run.
    timeout_seconds : float
        The definition's top-level ``TimeoutSeconds`` (ASL seconds from now).
    """

    def __init__(self, base: Clock, timeout_seconds: float) -> None:
        self.base = base
        self.time_scale = base.time_scale
        self.timeout_seconds = timeout_seconds
        self._outer = base if isinstance(base, ExecutionClock) else None
        self._started = time.monotonic()
        self._local = threading.local()
        #: ASL seconds the outer clock had lived when this one started.
        self._offset = self._outer.elapsed() if self._outer is not None else 0.0

    def now(self) -> datetime:
        return self.base.now()

    def uniform(self, low: float, high: float) -> float:
        return self.base.uniform(low, high)

    def _lag(self) -> float:
        if self._outer is not None:
            return self._outer._lag()
        lag: float = getattr(self._local, "lag", 0.0)
        return lag

    def _set_lag(self, lag: float) -> None:
        if self._outer is not None:
            self._outer._set_lag(lag)
        else:
            self._local.lag = lag

    def elapsed(self) -> float:
        """ASL seconds since the execution started, as this thread has lived them."""
        if self._outer is not None:
            return self._outer.elapsed() - self._offset
        return time.monotonic() - self._started + self._lag()

    def own_remaining(self) -> float:
        """ASL seconds left before this clock's own deadline (outer ones aside)."""
        return self.timeout_seconds - self.elapsed()

    def remaining(self) -> float:
        left = self.own_remaining()
        if self._outer is not None:
            left = min(left, self._outer.remaining())
        return left

    def check_deadline(self) -> None:
        """Raise the :class:`ExecutionTimedOut` of the outermost deadline passed."""
        if self._outer is not None:
            self._outer.check_deadline()
        if self.own_remaining() <= 0:
            raise ExecutionTimedOut(self.timeout_seconds)

    def sleep(self, seconds: float) -> None:
        """Sleep as the base clock does; a sleep that reaches the deadline ends there."""
        left = self.own_remaining()
        if self._outer is not None:
            self._outer.sleep(min(seconds, max(0.0, left)))  # an outer deadline raises
            if seconds >= left:
                raise ExecutionTimedOut(self.timeout_seconds)
            return
        if seconds >= left:
            self._advance(max(0.0, left))
            raise ExecutionTimedOut(self.timeout_seconds)
        self._advance(seconds)

    def _advance(self, seconds: float) -> None:
        started = time.monotonic()
        self.base.sleep(seconds)
        slept = time.monotonic() - started
        self._set_lag(self._lag() + max(0.0, seconds - slept))
