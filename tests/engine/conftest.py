"""Engine fixtures: a clock that records sleeps, and engines closed after each test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from plateseg.engine import Clock, LocalEngine
from plateseg.settings import Settings
from plateseg.store import LocalStore


class RecordingClock(Clock):
    """Never sleeps; records every requested sleep in ASL seconds."""

    def __init__(self, seed: int | None = 0) -> None:
        super().__init__(time_scale=0, seed=seed)
        self.sleeps: list[float] = []
        self._record_lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._record_lock:
            self.sleeps.append(seconds)


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()


EngineFactory = Callable[..., LocalEngine]


@pytest.fixture
def make_engine(
    clock: RecordingClock, store: LocalStore, settings: Settings
) -> Iterator[EngineFactory]:
    """Build engines whose buckets all map to the test's local store."""
    engines: list[LocalEngine] = []

    def factory(functions: dict[str, Any] | None = None, **kwargs: Any) -> LocalEngine:
        kwargs.setdefault("buckets", lambda _name: store)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("workers", 1)
        engine = LocalEngine(functions=functions or {}, **kwargs)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


def machine(states: dict[str, Any], start: str | None = None) -> dict[str, Any]:
    """A definition from its states; StartAt is the first state unless given."""
    return {"StartAt": start or next(iter(states)), "States": states}
