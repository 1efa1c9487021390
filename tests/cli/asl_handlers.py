"""Handlers the ``plateseg asl run --bind`` tests bind by ``module:callable``."""

from __future__ import annotations

from typing import Any


def double(event: Any, context: Any) -> Any:
    """Double ``event["x"]`` and report the function name from the context."""
    return {"x": event["x"] * 2, "function": context.function_name}


def explode(event: Any, context: Any) -> Any:
    """Always fail with a ``KeyError``."""
    raise KeyError("no such well")


def publish(params: Any, context: Any) -> Any:
    """``sns:publish`` stand-in: a message id naming the message and the state."""
    return {"MessageId": f"{context['State']['Name']}:{params['Message']}"}
