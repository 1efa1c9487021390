"""Execution history: AWS-history-like events, delivered to an optional listener.

Event types: ``ExecutionStarted``, ``StateEntered``, ``StateExited``,
``TaskScheduled``, ``TaskSucceeded``, ``TaskFailed``, ``MapRunStarted``,
``MapRunProgress``, ``MapRunSucceeded``, ``MapRunFailed``, ``ExecutionSucceeded``,
``ExecutionFailed``. The listener is called under the history's lock, one event at a
time, so the callee needs no locking of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Event", "History", "Listener"]


@dataclass
class Event:
    """One history event.

    Attributes
    ----------
    type : str
        AWS-like event type, e.g. ``"MapRunProgress"``.
    timestamp : datetime
        When it happened (UTC).
    details : dict
        Event-specific fields (state name, input/output, counters, error and cause).
    """

    type: str
    timestamp: datetime
    details: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]

#: Timestamp of events a child execution does not record (nobody reads it).
_UNRECORDED = datetime(1970, 1, 1, tzinfo=UTC)


class History:
    """Thread-safe, append-only list of events with a listener.

    Parameters
    ----------
    now : callable
        Returns the timestamp for a new event.
    listener : callable, optional
        Called with every recorded event, under the lock.
    record : bool
        Keep events in :attr:`events` (child executions of a Distributed Map do not).
    """

    def __init__(
        self,
        now: Callable[[], datetime],
        listener: Listener | None = None,
        record: bool = True,
        lock: threading.RLock | None = None,
    ) -> None:
        self._now = now
        self._listener = listener
        self._record = record
        self._lock = lock or threading.RLock()
        self.events: list[Event] = []

    def emit(self, type_: str, **details: Any) -> Event:
        """Record an event and hand it to the listener."""
        event = Event(type=type_, timestamp=self._now(), details=details)
        with self._lock:
            if self._record:
                self.events.append(event)
            if self._listener is not None:
                self._listener(event)
        return event

    def child(self, record: bool) -> History:
        """A history sharing this one's lock and listener, recording or not."""
        if record and self._record:
            return self
        return _Muted(self._now, self._listener, lock=self._lock, parent=self)


#: What a muted history returns for an event it drops.
_DROPPED = Event(type="Dropped", timestamp=_UNRECORDED, details={})


class _Muted(History):
    """Child-execution history: forwards only Map Run events to the parent."""

    def __init__(
        self,
        now: Callable[[], datetime],
        listener: Listener | None,
        lock: threading.RLock,
        parent: History,
    ) -> None:
        super().__init__(now, None, record=False, lock=lock)
        self._parent = parent

    def emit(self, type_: str, **details: Any) -> Event:
        if type_.startswith("MapRun"):
            return self._parent.emit(type_, **details)
        return _DROPPED  # not recorded, not shown: no event is even built (the hot path)
