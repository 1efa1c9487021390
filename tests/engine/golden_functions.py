"""Lambda stand-ins the golden cases bind by function name (fresh per case)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Transient(Exception):
    """A retryable error; its class name is the ASL error name."""


def echo(event: Any, context: Any) -> Any:
    """Return the event unchanged."""
    return event


def raise_value_error(event: Any, context: Any) -> Any:
    """Always fail as a Python ``ValueError('bad value')`` would in Lambda."""
    raise ValueError("bad value")


def slow(event: Any, context: Any) -> Any:
    """Outlive a one-second ``TimeoutSeconds`` (real time)."""
    time.sleep(1.5)
    return event


def fail_twice(with_event: bool) -> Callable[[Any, Any], Any]:
    """A handler failing with :class:`Transient` on its first two calls."""
    calls = [0]

    def handler(event: Any, context: Any) -> Any:
        calls[0] += 1
        if calls[0] <= 2:
            raise Transient(f"call {calls[0]} failed")
        return {"attempts": calls[0], "event": event} if with_event else {"attempts": calls[0]}

    return handler


def golden_functions() -> dict[str, Callable[[Any, Any], Any]]:
    """Function name → handler, with fresh state for stateful handlers."""
    return {
        "Echo": echo,
        "Raise": raise_value_error,
        "Slow": slow,
        "FailTwice": fail_twice(with_event=False),
        "FailTwiceEcho": fail_twice(with_event=True),
    }
