"""One state, one attempt, in a JSONata state; and what ``Assign`` and ``Catch`` do.

A JSONata state has no InputPath, Parameters, ResultSelector, ResultPath or OutputPath:
``Arguments`` (Task, Parallel) is what the work receives, ``Output`` what the state
passes on (by default the result of a Task, Parallel or Map, the input of any other
state), and ``Assign`` sets variables. Expressions see ``$states.input`` (the state's
input), ``$states.context``, ``$states.result`` in ``Output``/``Assign`` after the work,
and ``$states.errorOutput`` in a catcher. ``Output`` and ``Assign`` are both evaluated
with the variables as they were on entry; the assignments take effect afterwards.

A JSONata Map is resolved here into the fields the JSONPath Map machinery runs
(:mod:`plateseg.engine.map_state`): ``Items`` evaluated (an object gives its values,
each with its property name as ``Map.Item.Key``), ``ItemReader`` read,
``ItemSelector`` applied per item with ``$states.context.Map.Item``, and every number,
``BatchInput`` and ``Arguments`` evaluated once, at the start of the Map state.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from plateseg.engine.context import Context, Runtime
from plateseg.engine.jsonata_eval import evaluate_template, is_expression, query_error
from plateseg.engine.model import (
    ChoiceState,
    FailState,
    MapState,
    ParallelState,
    State,
    TaskState,
    WaitState,
)
from plateseg.engine.paths import check_payload_size, write_result
from plateseg.engine.retry import Catcher
from plateseg.engine.variables import evaluate_jsonpath_assign
from plateseg.errors import StatesError

__all__ = ["catch_output", "run_jsonata"]

#: (output, next state name or None when the machine ends here)
StepOutcome = tuple[Any, str | None]


def _env(rt: Runtime, context: Context, raw_input: Any, **states: Any) -> dict[str, Any]:
    return {**rt.scope.visible(), "states": {"input": raw_input, "context": context, **states}}


def _with(env: dict[str, Any], **states: Any) -> dict[str, Any]:
    return {**env, "states": {**env["states"], **states}}


def _typed(value: Any, field: str, kind: str, text: Any) -> Any:
    """``value`` if it is of ``kind``; else the QueryEvaluationError AWS raises."""
    checks = {
        "boolean": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "non-negative integer": lambda v: _integer(v) and v >= 0,
        "positive integer": lambda v: _integer(v) and v > 0,
        "number": lambda v: not isinstance(v, bool) and isinstance(v, int | float),
    }
    if not checks[kind](value):
        shown = text[2:-2].strip() if is_expression(text) else text
        raise query_error(
            f"The JSONata expression '{shown}' specified for the field '{field}' returned an "
            f"unexpected result type. Expected {kind}, got {type(value).__name__} {value!r}."
        )
    return int(value) if kind.endswith("integer") else value


def _integer(value: Any) -> bool:
    number = not isinstance(value, bool) and isinstance(value, int | float)
    return number and float(value).is_integer()


def _field(value: Any, env: dict[str, Any], field: str, kind: str) -> Any:
    """A scalar field that may be an expression, evaluated and type-checked."""
    return _typed(evaluate_template(value, env, field), field, kind, value)


def run_jsonata(
    state: State, raw_input: Any, rt: Runtime, entered: datetime, retry_count: int
) -> StepOutcome:
    """Run one attempt of a JSONata ``state`` on ``raw_input``."""
    from plateseg.engine import states as jsonpath

    context = rt.context_object(state.name, entered, retry_count)
    env = _env(rt, context, raw_input)
    if isinstance(state, FailState):
        error = _field(state.error or "", env, "Error", "string")
        cause = _field(state.cause or "", env, "Cause", "string")
        raise StatesError(error, cause)
    if isinstance(state, ChoiceState):
        return _choice(state, raw_input, env)
    result: Any = raw_input
    has_result = state.type in ("Task", "Parallel", "Map")
    if isinstance(state, WaitState):
        rt.clock.sleep(_wait_seconds(state, env, rt))
    elif isinstance(state, TaskState | ParallelState):
        args = raw_input
        if state.has_arguments:
            args = evaluate_template(state.arguments, env, "Arguments")
            check_payload_size(args, f"input of state '{state.name}' after Arguments")
        if isinstance(state, TaskState):
            timeout = state.timeout_seconds
            if timeout is not None:
                timeout = _field(timeout, env, "TimeoutSeconds", "positive integer")
            task = replace(state, timeout_seconds=timeout)
            result = jsonpath._run_task(task, args, rt, context)
        else:
            result = jsonpath._run_parallel(state, args, rt)
    elif isinstance(state, MapState):
        result = _run_map(state, raw_input, rt, entered, env, context)
    env = _with(env, result=result) if has_result else env
    output = result
    if state.has_output:
        output = evaluate_template(state.output, env, "Output")
    assigned = evaluate_template(state.assign, env, "Assign") if state.assign else None
    check_payload_size(output, f"output of state '{state.name}'")
    if assigned:
        rt.scope.assign(assigned, f"state '{state.name}'")
    return output, state.next


def _choice(state: ChoiceState, raw_input: Any, env: dict[str, Any]) -> StepOutcome:
    for index, rule in enumerate(state.choices):
        field = f"Choices/{index}/Condition"
        if _field(rule.operand, env, field, "boolean"):
            template = rule.output if rule.has_output else state.output
            has_output = rule.has_output or state.has_output
            # AWS: the state's Assign applies whichever rule matched; the rule's own
            # Assign is added to it (its values win for a name both assign).
            assign = {**(state.assign or {}), **(rule.assign or {})}
            return _finish_choice(state, raw_input, env, template, has_output, assign, rule.next)
    if state.default is None:
        raise StatesError(
            "States.NoChoiceMatched",
            f"No Choice rule of state '{state.name}' matched and there is no Default",
        )
    return _finish_choice(
        state, raw_input, env, state.output, state.has_output, state.assign, state.default
    )


def _finish_choice(
    state: State,
    raw_input: Any,
    env: dict[str, Any],
    template: Any,
    has_output: bool,
    assign: Any,
    target: str | None,
) -> StepOutcome:
    output = evaluate_template(template, env, "Output") if has_output else raw_input
    assigned = evaluate_template(assign, env, "Assign") if assign else None
    check_payload_size(output, f"output of state '{state.name}'")
    if assigned:
        variables = env["states"]["context"].variables
        variables.assign(assigned, f"state '{state.name}'")
    return output, target


def _wait_seconds(state: WaitState, env: dict[str, Any], rt: Runtime) -> float:
    from plateseg.engine.choice import parse_timestamp

    if state.seconds is not None:
        return float(_field(state.seconds, env, "Seconds", "non-negative integer"))
    stamp = _field(state.timestamp, env, "Timestamp", "string")
    moment = parse_timestamp(stamp)
    if moment is None:
        raise query_error(
            f"The field 'Timestamp' of state '{state.name}' evaluated to {stamp!r}, "
            "which is not an RFC 3339 timestamp with a time zone"
        )
    return max(0.0, (moment - rt.clock.now()).total_seconds())


# --- the Map state -----------------------------------------------------------------------


def _run_map(
    state: MapState,
    raw_input: Any,
    rt: Runtime,
    entered: datetime,
    env: dict[str, Any],
    context: Context,
) -> Any:
    from plateseg.engine.item_io import read_items
    from plateseg.engine.map_state import run_map

    reader = None
    if state.item_reader is not None:
        reader = _resolve_reader(state.item_reader, env)
        items = read_items(reader, raw_input, context, rt.buckets)
    else:
        items = evaluate_template(state.items, env, "Items") if state.has_items else raw_input
    keys: list[str] | None = None
    if isinstance(items, dict):  # a JSON object: its values, in order, keyed by name
        keys, items = list(items), list(items.values())
    elif not isinstance(items, list):
        raise query_error(
            f"The field 'Items' of Map state '{state.name}' must evaluate to an array or "
            f"an object, got {type(items).__name__}"
        )
    if state.has_item_selector:
        selected = []
        for index, item in enumerate(items):
            key = keys[index] if keys is not None else None
            item_context = rt.context_object(state.name, entered, item=(index, item), key=key)
            item_env = _with(env, context=item_context)
            selected.append(evaluate_template(state.item_selector, item_env, "ItemSelector"))
        items = selected
    concurrency = state.max_concurrency
    if is_expression(concurrency):
        concurrency = _field(concurrency, env, "MaxConcurrency", "non-negative integer")
    pct, count = state.tolerated_percentage, state.tolerated_count
    if pct is not None:
        pct = _field(pct, env, "ToleratedFailurePercentage", "number")
        if not 0 <= pct <= 100:
            raise query_error(
                f"Map state '{state.name}': ToleratedFailurePercentage must be between 0 "
                f"and 100, got {pct!r}"
            )
    if count is not None:
        count = _field(count, env, "ToleratedFailureCount", "non-negative integer")
    resolved = replace(
        state,
        query_language="JSONPath",
        items_path="$",
        item_selector=None,
        has_item_selector=False,
        item_reader=None,
        max_concurrency=concurrency,
        max_concurrency_path=None,
        item_batcher=_resolve_batcher(state.item_batcher, env),
        result_writer=_resolve_writer(state.result_writer, env),
        tolerated_percentage=pct,
        tolerated_percentage_path=None,
        tolerated_count=count,
        tolerated_count_path=None,
    )
    return run_map(resolved, items, rt, entered)


def _resolve_reader(reader: Any, env: dict[str, Any]) -> dict[str, Any]:
    config = dict(reader.get("ReaderConfig", {}))
    if is_expression(config.get("MaxItems")):
        field = "ItemReader/ReaderConfig/MaxItems"
        config["MaxItems"] = _field(config["MaxItems"], env, field, "non-negative integer")
    arguments = evaluate_template(reader.get("Arguments", {}), env, "ItemReader/Arguments")
    return {"Resource": reader["Resource"], "ReaderConfig": config, "Parameters": arguments}


def _resolve_batcher(batcher: Any, env: dict[str, Any]) -> dict[str, Any] | None:
    if batcher is None:
        return None
    out = dict(batcher)
    for key in ("MaxItemsPerBatch", "MaxInputBytesPerBatch"):
        if is_expression(out.get(key)):
            out[key] = _field(out[key], env, f"ItemBatcher/{key}", "positive integer")
    if "BatchInput" in out:
        out["BatchInput"] = evaluate_template(out["BatchInput"], env, "ItemBatcher/BatchInput")
    return out


def _resolve_writer(writer: Any, env: dict[str, Any]) -> dict[str, Any] | None:
    """The ResultWriter as the JSONPath Map reads it: ``Arguments`` evaluated into
    ``Parameters``; ``WriterConfig`` as written (a ``WriterConfig`` alone exports nothing)."""
    if writer is None:
        return None
    out = {k: writer[k] for k in ("Resource", "WriterConfig") if k in writer}
    if "Arguments" in writer:
        field = "ResultWriter/Arguments"
        out["Parameters"] = evaluate_template(writer["Arguments"], env, field)
    return out


# --- Catch, in both languages --------------------------------------------------------------


def catch_output(
    state: State, catcher: Catcher, raw_input: Any, error: StatesError, rt: Runtime
) -> Any:
    """The state's output when ``catcher`` caught ``error``; its ``Assign`` is applied.

    JSONPath: the error output placed at the catcher's ``ResultPath`` (``$`` in its
    ``Assign`` is the error output). JSONata: the catcher's ``Output`` (by default the
    error output), with ``$states.errorOutput``.
    """
    error_output = {"Error": error.name, "Cause": error.cause}
    context = rt.context_object(state.name, rt.clock.now())
    if state.query_language == "JSONata":
        env = _env(rt, context, raw_input, errorOutput=error_output)
        output = error_output
        if catcher.has_output:
            output = evaluate_template(catcher.output, env, "Catch/Output")
        assigned = (
            evaluate_template(catcher.assign, env, "Catch/Assign") if catcher.assign else None
        )
    else:
        output = (
            raw_input
            if catcher.result_path is None
            else write_result(raw_input, catcher.result_path, error_output)
        )
        assigned = evaluate_jsonpath_assign(catcher.assign, error_output, context)
    if assigned:
        rt.scope.assign(assigned, f"a catcher of state '{state.name}'")
    return output
