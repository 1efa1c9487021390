"""Run a Task whose resource is not a Lambda function: bound, ``aws-sdk:s3``, or
``states:startExecution``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plateseg.engine.integrations.bound import call_bound
from plateseg.engine.integrations.catalog import classify
from plateseg.engine.integrations.s3_sdk import run_s3
from plateseg.engine.integrations.sfn import run_start_execution
from plateseg.errors import StatesError

if TYPE_CHECKING:
    from plateseg.engine.context import Runtime

__all__ = ["run_integration"]


def run_integration(
    resource: str, params: Any, rt: Runtime, context: Any, timeout: float | None
) -> Any:
    """The result of one call of ``resource`` with ``params``.

    Raises
    ------
    TaskFailure
        The integration's error (``S3.NoSuchKeyException``, ``States.TaskFailed``, …).
    """
    found = classify(resource, rt.services.resources)
    if found is None or found.kind == "lambda":  # validation refuses these
        raise StatesError("States.Runtime", f"resource {resource!r} is not bound")
    if found.kind == "bound":
        return call_bound(resource, params, context, timeout, rt)
    if found.kind == "s3":
        return run_s3(found.detail, params, rt)
    return run_start_execution(found.detail, params, rt, timeout)
