"""``arn:aws:states:::states:startExecution`` (Request Response, ``.sync``, ``.sync:2``).

The child is a state machine registered with the engine (by ``StateMachineArn``), run
locally. Shapes follow AWS's recorded responses (LocalStack's snapshots
``tests/aws/services/stepfunctions/v2/services/test_sfn_task_service.snapshot.json``,
``…/v2/callback/test_callback.snapshot.json``, ``…/error_handling/test_task_service_sfn
.snapshot.json``):

* Request Response: ``ExecutionArn``, ``StartDate`` and the SDK's HTTP metadata; the
  child runs on its own thread while the parent goes on (the engine's ``run`` returns
  once every child it started has ended).
* ``.sync``: the child's DescribeExecution — ``ExecutionArn``, ``Input`` and ``Output``
  as JSON *strings*, ``InputDetails``/``OutputDetails`` ``{"Included": true}``,
  ``Name``, ``StartDate``, ``StateMachineArn``, ``Status``, ``StopDate``.
  ``.sync:2``: the same with ``Input`` and ``Output`` as JSON.
* a child that fails, times out or is aborted fails the task with ``States.TaskFailed``,
  whose cause is that description (as JSON text) with the child's ``Error`` and
  ``Cause`` and without ``Output``.
* an unknown ``StateMachineArn``: ``StepFunctions.StateMachineDoesNotExistException``.

The engine's choices where the recordings are silent: dates are epoch milliseconds
(numbers); a string ``Input`` is the input's JSON text (not JSON:
``StepFunctions.InvalidExecutionInputException``); a name already used for that state
machine in this engine is ``StepFunctions.ExecutionAlreadyExistsException``; a
``.sync:2`` failure's cause holds ``Input`` as JSON too; the task's ``TimeoutSeconds``
bounds the child run (``States.Timeout``), and stopping the parent stops a ``.sync``
child.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from plateseg.engine.clock import Clock, ExecutionClock
from plateseg.engine.context import Aborted
from plateseg.engine.retry import TaskFailure

if TYPE_CHECKING:
    from plateseg.engine.context import Runtime
    from plateseg.engine.integrations.services import ChildRunner
    from plateseg.engine.local_engine import ExecutionResult

__all__ = ["run_start_execution"]

#: Characters the StartExecution API refuses in an execution name.
_BAD_NAME = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


def _service_error(code: str, message: str) -> TaskFailure:
    request = uuid.uuid4()
    return TaskFailure(
        f"StepFunctions.{code}Exception",
        f"{message} (Service: AWSStepFunctions; Status Code: 400; Error Code: {code}; "
        f"Request ID: {request}; Proxy: null)",
    )


def _millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _input(params: dict[str, Any]) -> Any:
    value = params.get("Input")
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise _service_error(
                "InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc.msg}'"
            ) from None
    return value


def _name(params: dict[str, Any]) -> str:
    name = params.get("Name")
    if name is None:
        return str(uuid.uuid4())
    if not isinstance(name, str) or not 1 <= len(name) <= 80 or _BAD_NAME.search(name):
        raise _service_error("InvalidName", f"Invalid Name: '{name}'")
    return name


def describe(result: ExecutionResult, json_fields: bool) -> dict[str, Any]:
    """The child's DescribeExecution as the task sees it (``json_fields``: ``.sync:2``)."""
    view: dict[str, Any] = {
        "ExecutionArn": result.execution_arn,
        "Input": result.input if json_fields else _compact(result.input),
        "InputDetails": {"Included": True},
        "Name": result.name,
        "StartDate": _millis(result.start_date),
        "StateMachineArn": result.state_machine_arn,
        "Status": result.status,
        "StopDate": _millis(result.stop_date),
    }
    if result.status == "SUCCEEDED":
        view["Output"] = result.output if json_fields else _compact(result.output)
        view["OutputDetails"] = {"Included": True}
    else:
        if result.error:
            view["Error"] = result.error
        if result.cause:
            view["Cause"] = result.cause
    return dict(sorted(view.items()))


def _started(execution_arn: str, start: datetime) -> dict[str, Any]:
    """The Request Response output: StartExecution's answer with the SDK's metadata."""
    request = str(uuid.uuid4())
    body = _compact({"executionArn": execution_arn, "startDate": start.timestamp()})
    headers = {
        "connection": "keep-alive",
        "Content-Length": str(len(body)),
        "Content-Type": "application/x-amz-json-1.0",
        "Date": format_datetime(start.astimezone(UTC), usegmt=True),
        "x-amzn-RequestId": request,
    }
    return {
        "ExecutionArn": execution_arn,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {k: [v] for k, v in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request},
        "StartDate": _millis(start),
    }


def _execution_arn(state_machine_arn: str, name: str) -> str:
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def run_start_execution(
    pattern: str, params: Any, rt: Runtime, timeout: float | None
) -> dict[str, Any]:
    """Start a registered child state machine as ``pattern`` says; return the task result.

    Raises
    ------
    TaskFailure
        ``States.TaskFailed`` (the child did not succeed), ``States.Timeout`` (the
        task's ``TimeoutSeconds``), ``StepFunctions.*Exception`` (StartExecution's own
        errors).
    """
    if not isinstance(params, dict) or not isinstance(params.get("StateMachineArn"), str):
        raise _service_error("InvalidArn", "Invalid Arn: StateMachineArn must be a string")
    arn: str = params["StateMachineArn"]
    runner: ChildRunner | None = rt.services.children
    if runner is None or not runner.knows(arn):
        raise _service_error("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'")
    input_obj, name = _input(params), _name(params)
    if not runner.claim(arn, name):
        raise _service_error(
            "ExecutionAlreadyExists", f"Execution Already Exists: '{_execution_arn(arn, name)}'"
        )
    if pattern == "request":
        start = rt.clock.now()
        rt.services.launch(runner.start(arn, input_obj, name), name)
        return _started(_execution_arn(arn, name), start)
    task_clock: ExecutionClock | None = None
    clock: Clock = rt.clock
    if timeout is not None:
        clock = task_clock = ExecutionClock(rt.clock, timeout)
    result = runner.run(arn, input_obj, name, clock=clock, invoker=rt.invoker, stop=rt.stop)
    rt.services.record(result)
    if result.status == "SUCCEEDED":
        return describe(result, json_fields=pattern == "sync:2")
    if result.status == "ABORTED" and rt.stop.is_set():
        raise Aborted("the execution was stopped")
    if result.status == "TIMED_OUT":
        rt.clock.check_deadline()  # the parent's own deadline ends the parent
        if task_clock is not None and task_clock.own_remaining() <= 0:
            raise TaskFailure(
                "States.Timeout",
                f"Task timed out after {timeout:g} seconds (execution {result.execution_arn})",
            )
    raise TaskFailure("States.TaskFailed", _compact(describe(result, pattern == "sync:2")))
