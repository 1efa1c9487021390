"""One state, one attempt: the JSONPath pipeline in the specification's order.

``InputPath → Parameters → (work) → ResultSelector → (Assign) → ResultPath →
OutputPath``; ``Assign`` reads the selected result and takes effect once the output is
made. JSONata states run in :mod:`plateseg.engine.jsonata_states`. Retry and Catch
wrap these functions in :mod:`plateseg.engine.execution`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from plateseg.engine.choice import evaluate_rule
from plateseg.engine.context import Runtime
from plateseg.engine.definition import (
    LAMBDA_ARN,
    LAMBDA_INVOKE,
    ChoiceState,
    FailState,
    MapState,
    ParallelState,
    PassState,
    State,
    SucceedState,
    TaskState,
    WaitState,
)
from plateseg.engine.intrinsics import evaluate_intrinsic
from plateseg.engine.paths import (
    check_payload_size,
    over_payload_limit,
    read_path,
    write_result,
)
from plateseg.engine.retry import TaskFailure
from plateseg.engine.templates import evaluate_template
from plateseg.engine.variables import evaluate_jsonpath_assign
from plateseg.errors import StatesError

__all__ = ["StepOutcome", "effective_input", "finish", "run_once"]

#: (output, next state name or None when the machine ends here)
StepOutcome = tuple[Any, str | None]


def effective_input(state: State, raw_input: Any, context: Any) -> Any:
    """Apply InputPath (``null`` → ``{}``) and Parameters."""
    data = _read_input(state, raw_input, context)
    if state.has_parameters:
        data = evaluate_template(state.parameters, data, context)
        check_payload_size(data, f"input of state '{state.name}' after Parameters")
    return data


def finish(state: State, raw_input: Any, result: Any, context: Any) -> Any:
    """Apply ResultSelector, Assign (set last), ResultPath (``null`` keeps the input)
    and OutputPath."""
    if state.result_selector is not None:
        result = evaluate_template(state.result_selector, result, context)
    assigned = evaluate_jsonpath_assign(state.assign, result, context)
    output = (
        raw_input
        if state.result_path is None
        else write_result(raw_input, state.result_path, result)
    )
    output = _output_only(state, output, context)
    check_payload_size(output, f"output of state '{state.name}'")
    _set(state, assigned, context)
    return output


def _set(state: State, assigned: dict[str, Any] | None, context: Any) -> None:
    if assigned:
        context.variables.assign(assigned, f"state '{state.name}'")


def _read_input(state: State, raw_input: Any, context: Any) -> Any:
    """InputPath: ``null`` gives ``{}``; a ``$$`` path reads the context object."""
    if state.input_path is None:
        return {}
    return read_path(raw_input, state.input_path, context=context, field="InputPath")


def _output_only(state: State, data: Any, context: Any) -> Any:
    """OutputPath: ``null`` gives ``{}``; a ``$$`` path reads the context object."""
    if state.output_path is None:
        return {}
    return read_path(data, state.output_path, context=context, field="OutputPath")


def run_once(
    state: State, raw_input: Any, rt: Runtime, entered: datetime, retry_count: int
) -> StepOutcome:
    """Run one attempt of ``state`` on ``raw_input``.

    Raises
    ------
    StatesError
        The state's error (a task's, a ``States.*`` error, a Fail state's).
    """
    if state.query_language == "JSONata":
        from plateseg.engine.jsonata_states import run_jsonata

        return run_jsonata(state, raw_input, rt, entered, retry_count)
    context = (
        rt.context_object(state.name, entered, retry_count)
        if state.reads_context
        else rt.bare_context()
    )
    if isinstance(state, FailState):
        raise _fail_error(state, raw_input, context)
    if isinstance(state, ChoiceState | WaitState | SucceedState):
        data = _read_input(state, raw_input, context)
        assign, target = state.assign, state.next
        if isinstance(state, ChoiceState):
            rule = next((r for r in state.choices if evaluate_rule(r, data, context)), None)
            if rule is None and state.default is None:
                raise StatesError(
                    "States.NoChoiceMatched",
                    f"No Choice rule of state '{state.name}' matched the input "
                    "and there is no Default",
                )
            target = rule.next if rule is not None else state.default
            if rule is not None and rule.assign:  # added to the state's Assign
                assign = {**(state.assign or {}), **rule.assign}
        if isinstance(state, WaitState):
            rt.clock.sleep(_wait_seconds(state, data, rt, context))
        assigned = evaluate_jsonpath_assign(assign, data, context)
        output = _output_only(state, data, context)
        _set(state, assigned, context)
        return output, target
    data = effective_input(state, raw_input, context)
    if isinstance(state, PassState):
        result = state.result if state.has_result else data
    elif isinstance(state, TaskState):
        result = _run_task(state, data, rt, context)
    elif isinstance(state, ParallelState):
        result = _run_parallel(state, data, rt)
    elif isinstance(state, MapState):
        from plateseg.engine.map_state import run_map

        result = run_map(state, data, rt, entered)
    else:  # pragma: no cover - parse_definition rejects other types
        raise StatesError("States.Runtime", f"state type {state.type!r} cannot run")
    return finish(state, raw_input, result, context), state.next


def _fail_error(state: FailState, raw_input: Any, context: Any) -> StatesError:
    def pick(literal: str | None, path: str | None, field: str) -> str:
        if path is None:
            return literal or ""
        if path.startswith("States."):
            value = evaluate_intrinsic(path, raw_input, context, field=field)
        else:
            value = read_path(raw_input, path, context=context, field=field)
        if not isinstance(value, str):
            raise StatesError(
                "States.Runtime",
                f"{field} of state '{state.name}' must select a string, got {type(value).__name__}",
            )
        return value

    error = pick(state.error, state.error_path, "ErrorPath")
    cause = pick(state.cause, state.cause_path, "CausePath")
    return StatesError(error, cause)


def _wait_seconds(state: WaitState, data: Any, rt: Runtime, context: Any) -> float:
    from plateseg.engine.choice import parse_timestamp

    if state.seconds is not None:
        return float(state.seconds)
    if state.seconds_path is not None:
        value = read_path(data, state.seconds_path, context=context, field="SecondsPath")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise StatesError(
                "States.Runtime",
                f"SecondsPath of state '{state.name}' must "
                f"select a non-negative integer, got {value!r}",
            )
        return float(value)
    stamp = state.timestamp
    if state.timestamp_path is not None:
        stamp = read_path(data, state.timestamp_path, context=context, field="TimestampPath")
    moment = parse_timestamp(stamp)
    if moment is None:
        raise StatesError(
            "States.Runtime",
            f"state '{state.name}': {stamp!r} is not an RFC 3339 timestamp with a time zone",
        )
    return max(0.0, (moment - rt.clock.now()).total_seconds())


def _envelope(payload: Any) -> dict[str, Any]:
    import uuid

    request_id = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Executed-Version": "$LATEST",
        "x-amzn-RequestId": request_id,
    }
    return {
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {k: [v] for k, v in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    }


def _run_task(state: TaskState, params: Any, rt: Runtime, context: Any) -> Any:
    seconds = state.timeout_seconds  # a JSONata expression is resolved before this
    timeout: float | None = None if isinstance(seconds, str) else seconds
    if state.timeout_seconds_path is not None:
        value = read_path(
            params, state.timeout_seconds_path, context=context, field="TimeoutSecondsPath"
        )
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise StatesError(
                "States.Runtime",
                f"TimeoutSecondsPath of state '{state.name}' "
                f"must select a positive integer, got {value!r}",
            )
        timeout = value
    if state.resource in rt.services.resources or not (
        state.resource == LAMBDA_INVOKE or LAMBDA_ARN.match(state.resource)
    ):
        return _run_integration(state, params, rt, context, timeout)
    if state.resource == LAMBDA_INVOKE:
        function = params.get("FunctionName") if isinstance(params, dict) else None
        if not isinstance(function, str):
            raise StatesError(
                "States.Runtime", f"state '{state.name}': Parameters.FunctionName must be a string"
            )
        payload = params.get("Payload", {})
    else:
        match = LAMBDA_ARN.match(state.resource)
        assert match is not None
        function, payload = match.group(1), params
    rt.history.emit(
        "TaskScheduled",
        name=state.name,
        resource=state.resource,
        function=function,
        parameters=payload,
    )
    try:
        returned = rt.invoker.invoke(function, payload, timeout)
        result = _envelope(returned) if state.resource == LAMBDA_INVOKE else returned
        if over_payload_limit(result) is not None:
            raise _oversized_result(state)
    except StatesError as err:
        rt.history.emit("TaskFailed", name=state.name, error=err.name, cause=err.cause)
        raise
    rt.history.emit("TaskSucceeded", name=state.name, output=returned)
    return result


def _run_integration(
    state: TaskState, params: Any, rt: Runtime, context: Any, timeout: float | None
) -> Any:
    """A bound resource, ``aws-sdk:s3`` action or ``states:startExecution``."""
    from plateseg.engine.integrations.dispatch import run_integration

    rt.history.emit("TaskScheduled", name=state.name, resource=state.resource, parameters=params)
    try:
        result = run_integration(state.resource, params, rt, context, timeout)
        if over_payload_limit(result) is not None:
            raise _oversized_result(state)
    except StatesError as err:
        rt.history.emit("TaskFailed", name=state.name, error=err.name, cause=err.cause)
        raise
    rt.history.emit("TaskSucceeded", name=state.name, output=result)
    return result


def _oversized_result(state: TaskState) -> TaskFailure:
    """A task result over 256 KiB: a task failure, so ``States.ALL`` catches it.

    AWS reports it in ``TaskFailed`` (``LambdaFunctionFailed`` for a function ARN
    resource) with the resource type ``lambda`` or the function ARN in the cause.
    """
    resource = "lambda" if state.resource == LAMBDA_INVOKE else state.resource
    return TaskFailure(
        "States.DataLimitExceeded",
        f"The state/task '{resource}' returned a result with a size exceeding "
        "the maximum number of bytes service limit.",
    )


def _run_parallel(state: ParallelState, data: Any, rt: Runtime) -> list[Any]:
    from plateseg.engine.execution import run_siblings

    jobs = [(branch, data) for branch in state.branches]
    return run_siblings(jobs, rt, len(jobs), f"parallel-{state.name}")
