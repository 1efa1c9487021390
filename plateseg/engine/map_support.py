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


class InlineExecutor:
    """An executor that runs each call at once, on the caller's thread."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to the caller through the future
            future.set_exception(exc)
        return future

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_RECORD_JSON = json.JSONEncoder(separators=(",", ":"))


def dumps(value: Any) -> str:
    return _RECORD_JSON.encode(value)
