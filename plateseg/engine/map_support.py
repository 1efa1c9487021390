"""Helpers of a Map Run: child names, the inline executor, compact record JSON."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from plateseg.engine.definition import StateMachine

__all__ = ["InlineExecutor", "dumps", "is_pure", "uuid5_name"]


def uuid5_name(namespace: bytes, index: int) -> str:
    """``str(uuid.uuid5(UUID(bytes=namespace), str(index)))``, without the UUID objects."""
    digest = bytearray(hashlib.sha1(namespace + str(index).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_PURE_TYPES = frozenset({"Pass", "Choice", "Succeed", "Fail"})


def is_pure(machine: StateMachine) -> bool:
    """True when no state of ``machine`` can block (no Task, Wait, Map or Parallel).

    Such child executions only compute; running them one after another on the Map
    Run's own thread is faster than handing each to a thread.
    """
    return all(state.type in _PURE_TYPES for state in machine.states.values())


class _Done(Future[Any]):
    """A future born finished: no condition variable, callbacks run at once.

    What :class:`InlineExecutor` hands back for each child of a pure Map Run (tens of
    thousands per run); only ``result``, ``exception``, ``done`` and
    ``add_done_callback`` are used on it.
    """

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        # Future.__init__ (a Condition and its lock) is skipped on purpose: nothing waits.
        self._value = value
        self._error = error

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Any:
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._error

    def add_done_callback(self, fn: Callable[[Future[Any]], object]) -> None:
        fn(self)


class InlineExecutor:
    """An executor that runs each call at once, on the caller's thread."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        try:
            return _Done(fn(*args))
        except BaseException as exc:  # handed to the caller through the future
            return _Done(error=exc)

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_RECORD_JSON = json.JSONEncoder(separators=(",", ":"))


def dumps(value: Any) -> str:
    return _RECORD_JSON.encode(value)
