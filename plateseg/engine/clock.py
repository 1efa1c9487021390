"""Time for the engine: every wait and retry interval goes through a :class:`Clock`.

``time_scale`` multiplies every sleep (0 never sleeps), so tests and demos run a
definition with real ``Wait`` states and back-off without waiting for them. The clock
also owns the random generator used for retry jitter, so a seeded clock gives
reproducible delays.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime

__all__ = ["Clock"]


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
