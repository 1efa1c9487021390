"""Resources bound to a Python callable: ``handler(parameters, context)``.

Any Task resource (``arn:aws:states:::sns:publish``, ``arn:aws:states:::aws-sdk:
dynamodb:putItem``, …) can be bound, so a workflow that reaches for a service the engine
does not fake still runs locally. The handler receives the task's effective
parameters (``Parameters``/``Arguments``, JSON round-tripped) and the state's ``$$``
context object as a plain dict, and returns the task's result (JSON-serialisable).

Errors: a :class:`~plateseg.errors.StatesError` the handler raises keeps its name and
cause, so a fake can fail as the service would (``SNS.InvalidParameterException``:
service integration errors are named ``Service.ErrorName``); any other exception is
named by its class (``KeyError``), its message the cause. Both are task failures:
``Retry``/``Catch`` match them by name, ``States.ALL`` and ``States.TaskFailed``
included. The task's ``TimeoutSeconds`` bounds the call (``States.Timeout``; the
handler's thread cannot be stopped and finishes on its own).
"""

from __future__ import annotations

import copy
import json
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from plateseg.engine.retry import TaskFailure
from plateseg.errors import StatesError

if TYPE_CHECKING:
    from plateseg.engine.context import Runtime
    from plateseg.engine.integrations.services import ResourceHandler

__all__ = ["call_bound"]


def _call(handler: ResourceHandler, resource: str, event: Any, context: dict[str, Any]) -> Any:
    try:
        result = handler(event, context)
    except StatesError as err:
        raise TaskFailure(err.name, err.cause) from None
    except Exception as exc:
        raise TaskFailure(type(exc).__name__, str(exc)) from None
    try:
        return json.loads(json.dumps(result))
    except (TypeError, ValueError) as exc:
        raise TaskFailure(
            "States.Runtime",
            f"the callable bound to {resource} returned a value that is not JSON: {exc}",
        ) from None


def call_bound(resource: str, params: Any, context: Any, timeout: float | None, rt: Runtime) -> Any:
    """Call the callable bound to ``resource``; return its (JSON round-tripped) result.

    Raises
    ------
    TaskFailure
        The handler's error, or ``States.Timeout`` past ``timeout`` seconds.
    """
    handler = rt.services.resources[resource]
    event = json.loads(json.dumps(params))
    plain = copy.deepcopy(context)
    left = rt.clock.remaining()
    limit = timeout if left is None else min(timeout or left, left)
    if limit is None:
        return _call(handler, resource, event, plain)
    future = rt.invoker.submit(_call, handler, resource, event, plain)
    try:
        return future.result(timeout=max(0.0, limit))
    except FutureTimeout:
        future.cancel()
        rt.clock.check_deadline()  # the execution's own deadline ends the execution
        raise TaskFailure(
            "States.Timeout", f"Task timed out after {limit:g} seconds (resource {resource})"
        ) from None
