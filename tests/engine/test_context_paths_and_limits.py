"""Issue 17: ``$$`` in path fields, intrinsic edge cases, oversized task results, ResultPath.

AWS behaviour comes from LocalStack's AWS-validated snapshots (localstack/localstack,
``tests/aws/services/stepfunctions/v2``): ``context_object/test_context_object``,
``intrinsic_functions/test_generic``, ``test_json_manipulation``, ``test_array`` and
``error_handling/test_states_errors``.
"""

from __future__ import annotations

from typing import Any

import pytest

from plateseg.engine.intrinsics import evaluate_intrinsic
from plateseg.engine.paths import PAYLOAD_LIMIT_BYTES, read_path
from plateseg.errors import StatesError
from tests.engine.conftest import EngineFactory, machine

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
OVERSIZED_CAUSE = (
    "returned a result with a size exceeding the maximum number of bytes service limit."
)


def big(event: Any, context: Any) -> str:
    """A result just over the 256 KiB payload limit, from a tiny event."""
    return "x" * PAYLOAD_LIMIT_BYTES


# --- $$ in InputPath / OutputPath ----------------------------------------------------


def test_input_path_context_root_is_the_whole_context_object(make_engine: EngineFactory) -> None:
    definition = machine({"P": {"Type": "Pass", "InputPath": "$$", "End": True}})
    result = make_engine().run(definition, {"input-value": 0}, name="run-1")
    assert result.status == "SUCCEEDED", result.cause
    context = result.output
    assert set(context) == {"Execution", "StateMachine", "State"}
    assert context["Execution"]["Input"] == {"input-value": 0}
    assert context["Execution"]["Name"] == "run-1"
    assert context["State"]["Name"] == "P"


def test_output_path_context_reads_the_state_being_left(make_engine: EngineFactory) -> None:
    definition = machine({"Named": {"Type": "Pass", "OutputPath": "$$.State.Name", "End": True}})
    result = make_engine().run(definition, {})
    assert (result.status, result.output) == ("SUCCEEDED", "Named")


def test_context_path_missing_field_is_runtime(make_engine: EngineFactory) -> None:
    definition = machine({"P": {"Type": "Pass", "InputPath": "$$.Execution.Nope", "End": True}})
    result = make_engine().run(definition, {})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert "$$.Execution.Nope" in (result.cause or "")


def test_context_path_without_a_context_object_fails_instead_of_reading_null() -> None:
    with pytest.raises(StatesError) as info:
        read_path({"a": 1}, "$$.Execution.Input", field="ItemsPath")
    assert info.value.name == "States.Runtime"
    assert "ItemsPath" in info.value.cause


# --- intrinsics ------------------------------------------------------------------------


def run(text: str, data: Any) -> Any:
    return evaluate_intrinsic(text, data, {})


def test_format_writes_arrays_and_nested_values_in_java_form() -> None:
    data = {"v": [1, "a", None, True, {"k": [2.5]}]}
    assert run("States.Format('{}', $.v)", data) == "[1, a, null, true, {k=[2.5]}]"


def test_string_to_json_rejects_nan() -> None:
    with pytest.raises(StatesError) as info:
        run("States.StringToJson($.s)", {"s": "NaN"})
    assert info.value.name == "States.IntrinsicFailure"


@pytest.mark.parametrize(
    ("array", "value", "expected"),
    [
        ([True], 1, False),
        ([1], True, False),
        ([False], 0, False),
        ([{"a": 1, "b": 2}], {"b": 2, "a": 1}, True),
        ([[1, True]], [1, True], True),
        ([None], None, True),
    ],
)
def test_array_contains_compares_json_values_exactly(
    array: list[Any], value: Any, expected: bool
) -> None:
    assert run("States.ArrayContains($.a, $.v)", {"a": array, "v": value}) is expected


def test_array_unique_keeps_true_and_1_apart() -> None:
    assert run("States.ArrayUnique($.a)", {"a": [1, True, 1, True, 0, False]}) == [
        1,
        True,
        0,
        False,
    ]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(-9, 3, -6), (1.49, -1.49, 0), (0.5, 0, 1), (-0.5, 0, 0), (3.5, 0, 4), (-3.5, 0, -3)],
)
def test_math_add_rounds_each_argument_half_up(a: float, b: float, expected: int) -> None:
    result = run("States.MathAdd($.a, $.b)", {"a": a, "b": b})
    assert result == expected and isinstance(result, int)


# --- oversized task results ------------------------------------------------------------


def _task(resource: str, catch: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": resource, "Next": "Done"}
    states = {"T": state, "Done": {"Type": "Pass", "End": True}}
    if catch is not None:
        state["Catch"] = catch
        states["Caught"] = {"Type": "Pass", "End": True}
    return machine(states)


def test_oversized_function_arn_result_is_caught_by_states_all(make_engine: EngineFactory) -> None:
    definition = _task(f"{ARN}big", [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}])
    result = make_engine({"big": big}).run(definition, {})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {
        "Error": "States.DataLimitExceeded",
        "Cause": f"The state/task '{ARN}big' {OVERSIZED_CAUSE}",
    }
    failed = [e for e in result.events if e.type == "TaskFailed"]
    assert [e.details["error"] for e in failed] == ["States.DataLimitExceeded"]


def test_oversized_lambda_invoke_result_is_caught_by_name(make_engine: EngineFactory) -> None:
    definition = _task(
        "arn:aws:states:::lambda:invoke",
        [{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "Caught"}],
    )
    definition["States"]["T"]["Parameters"] = {"FunctionName": "big", "Payload": {}}
    result = make_engine({"big": big}).run(definition, {})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["Cause"] == f"The state/task 'lambda' {OVERSIZED_CAUSE}"


def test_oversized_result_without_catch_fails_the_execution(make_engine: EngineFactory) -> None:
    result = make_engine({"big": big}).run(_task(f"{ARN}big"), {})
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")


def test_oversized_state_output_is_still_not_caught_by_states_all(
    make_engine: EngineFactory,
) -> None:
    """Input + result over the limit after ResultPath is the state's output, not the task's."""
    half = "y" * (PAYLOAD_LIMIT_BYTES // 2 + 10)
    definition = _task(f"{ARN}echo", [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}])
    definition["States"]["T"]["ResultPath"] = "$.copy"
    result = make_engine({"echo": lambda e, c: e["s"]}).run(definition, {"s": half})
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")


# --- ResultPath ------------------------------------------------------------------------


def test_result_path_past_an_array_end_is_match_failure(make_engine: EngineFactory) -> None:
    definition = machine({"P": {"Type": "Pass", "Result": 1, "ResultPath": "$.l[3]", "End": True}})
    result = make_engine().run(definition, {"l": [0]})
    assert (result.status, result.error) == ("FAILED", "States.ResultPathMatchFailure")
