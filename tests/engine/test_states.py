"""Whole executions of small definitions: data flow, Choice, Wait, Fail, Retry, Catch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plateseg.engine import LocalEngine
from plateseg.errors import DefinitionError, StoreUnavailableError
from tests.engine.conftest import EngineFactory, RecordingClock, machine

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


class Flaky:
    """Fails ``failures`` times with a transient error, then echoes its event."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, event: Any, context: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreUnavailableError(f"throttled (call {self.calls})")
        return {"echo": event, "calls": self.calls}


def test_jsonpath_data_flow(make_engine: EngineFactory) -> None:
    seen: list[Any] = []

    def fn(event: Any, context: Any) -> Any:
        seen.append(event)
        return {"value": event["x"] * 2, "noise": 1}

    definition = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": f"{ARN}double",
                "InputPath": "$.in",
                "Parameters": {
                    "x.$": "$.x",
                    "name.$": "$$.Execution.Name",
                    "state.$": "$$.State.Name",
                },
                "ResultSelector": {"v.$": "$.value"},
                "ResultPath": "$.in.result",
                "OutputPath": "$.in",
                "End": True,
            },
        }
    )
    result = make_engine({"double": fn}).run(definition, {"in": {"x": 21}, "other": 1}, name="e1")
    assert result.status == "SUCCEEDED", result.cause
    assert seen == [{"x": 21, "name": "e1", "state": "T"}]
    assert result.output == {"x": 21, "result": {"v": 42}}
    assert result.execution_arn.endswith(":execution:plateseg-segmentation:e1")


def test_pass_result_and_null_result_path(make_engine: EngineFactory) -> None:
    definition = machine(
        {
            "P1": {"Type": "Pass", "Result": {"r": 1}, "ResultPath": "$.p", "Next": "P2"},
            "P2": {"Type": "Pass", "Result": "ignored", "ResultPath": None, "Next": "P3"},
            "P3": {
                "Type": "Pass",
                "Parameters": {"sum.$": "States.MathAdd($.p.r, $.a)"},
                "End": True,
            },
        }
    )
    assert make_engine().run(definition, {"a": 2}).output == {"sum": 3}


def test_lambda_invoke_envelope(make_engine: EngineFactory) -> None:
    definition = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": f"{ARN}echo:live", "Payload": {"k.$": "$.k"}},
                "ResultSelector": {"p.$": "$.Payload", "code.$": "$.StatusCode"},
                "End": True,
            },
        }
    )
    engine = make_engine({"echo": lambda e, c: {"got": e, "fn": c.function_name}})
    result = engine.run(definition, {"k": 5})
    assert result.output == {"p": {"got": {"k": 5}, "fn": "echo"}, "code": 200}


def test_choice_routes_and_no_match(make_engine: EngineFactory) -> None:
    definition = machine(
        {
            "C": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.n", "NumericGreaterThan": 0, "Next": "Pos"},
                    {
                        "And": [
                            {"Variable": "$.n", "IsNumeric": True},
                            {"Variable": "$.n", "NumericLessThan": 0},
                        ],
                        "Next": "Neg",
                    },
                ],
            },
            "Pos": {"Type": "Pass", "Result": "positive", "End": True},
            "Neg": {"Type": "Pass", "Result": "negative", "End": True},
        }
    )
    engine = make_engine()
    assert engine.run(definition, {"n": 3}).output == "positive"
    assert engine.run(definition, {"n": -3}).output == "negative"
    zero = engine.run(definition, {"n": 0})
    assert (zero.status, zero.error) == ("FAILED", "States.NoChoiceMatched")


def test_wait_goes_through_the_clock(make_engine: EngineFactory, clock: RecordingClock) -> None:
    definition = machine(
        {
            "W1": {"Type": "Wait", "Seconds": 5, "Next": "W2"},
            "W2": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "W3"},
            "W3": {"Type": "Wait", "Timestamp": "2000-01-01T00:00:00Z", "End": True},
        }
    )
    result = make_engine().run(definition, {"delay": 7})
    assert result.status == "SUCCEEDED"
    assert clock.sleeps == [5.0, 7.0, 0.0]


def test_fail_state_with_paths(make_engine: EngineFactory) -> None:
    definition = machine({"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}})
    result = make_engine().run(definition, {"e": "MyError", "c": "because"})
    assert (result.status, result.error, result.cause) == ("FAILED", "MyError", "because")
    assert result.events[-1].type == "ExecutionFailed"


def test_retry_backoff_then_success(make_engine: EngineFactory, clock: RecordingClock) -> None:
    flaky = Flaky(failures=2)
    definition = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": f"{ARN}flaky",
                "End": True,
                "Retry": [
                    {"ErrorEquals": ["NotThisOne"], "MaxAttempts": 5},
                    {
                        "ErrorEquals": ["StoreUnavailableError"],
                        "IntervalSeconds": 2,
                        "BackoffRate": 3,
                        "MaxAttempts": 3,
                        "JitterStrategy": "NONE",
                    },
                ],
            },
        }
    )
    result = make_engine({"flaky": flaky}).run(definition, {"a": 1})
    assert result.status == "SUCCEEDED"
    assert result.output == {"echo": {"a": 1}, "calls": 3}
    assert clock.sleeps == [2.0, 6.0]
    types = [e.type for e in result.events]
    assert types.count("TaskFailed") == 2 and types.count("TaskSucceeded") == 1


def test_retry_exhausted_then_catch(make_engine: EngineFactory, clock: RecordingClock) -> None:
    flaky = Flaky(failures=10)
    definition = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": f"{ARN}flaky",
                "Next": "Done",
                "Retry": [
                    {
                        "ErrorEquals": ["States.TaskFailed"],
                        "MaxAttempts": 2,
                        "IntervalSeconds": 1,
                        "MaxDelaySeconds": 1,
                    }
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Handle"}],
            },
            "Handle": {"Type": "Pass", "End": True},
            "Done": {"Type": "Succeed"},
        }
    )
    result = make_engine({"flaky": flaky}).run(definition, {"a": 1})
    assert result.status == "SUCCEEDED"
    assert flaky.calls == 3 and clock.sleeps == [1.0, 1.0]
    err = result.output["err"]
    assert result.output["a"] == 1 and err["Error"] == "StoreUnavailableError"
    cause = json.loads(err["Cause"])
    assert cause["errorType"] == "StoreUnavailableError"
    assert cause["errorMessage"] == "throttled (call 3)"
    assert any("in __call__" in line for line in cause["stackTrace"])


def test_max_attempts_zero_never_retries(make_engine: EngineFactory) -> None:
    flaky = Flaky(failures=1)
    definition = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": f"{ARN}flaky",
                "End": True,
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}],
            }
        }
    )
    result = make_engine({"flaky": flaky}).run(definition, {})
    assert (result.status, result.error, flaky.calls) == ("FAILED", "StoreUnavailableError", 1)


def test_runtime_error_is_not_caught(make_engine: EngineFactory) -> None:
    definition = machine(
        {
            "P": {
                "Type": "Pass",
                "InputPath": "$.missing",
                "Next": "Done",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
            },
            "Done": {"Type": "Succeed"},
        }
    )
    # Pass has no Catch field in ASL: the definition itself is rejected.
    with pytest.raises(DefinitionError, match="/States/P/Catch"):
        make_engine().run(definition, {})
    task = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": f"{ARN}echo",
                "InputPath": "$.missing",
                "Next": "Done",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
            },
            "Done": {"Type": "Succeed"},
        }
    )
    result = make_engine({"echo": lambda e, c: e}).run(task, {})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


def test_unknown_function_is_named(make_engine: EngineFactory) -> None:
    definition = machine({"T": {"Type": "Task", "Resource": f"{ARN}ghost", "End": True}})
    result = make_engine({"echo": lambda e, c: e}).run(definition, {})
    assert result.error == "Lambda.ResourceNotFoundException"
    assert "ghost" in (result.cause or "") and "echo" in (result.cause or "")


def test_timeout_seconds(make_engine: EngineFactory) -> None:
    import threading

    release = threading.Event()

    def slow(event: Any, context: Any) -> Any:
        release.wait(5)
        return 1

    definition = machine(
        {"T": {"Type": "Task", "Resource": f"{ARN}slow", "End": True, "TimeoutSeconds": 1}}
    )
    result = make_engine({"slow": slow}).run(definition, {})
    release.set()
    assert (result.status, result.error) == ("FAILED", "States.Timeout")


def test_payload_limit_fails_execution(make_engine: EngineFactory) -> None:
    definition = machine({"T": {"Type": "Task", "Resource": f"{ARN}big", "End": True}})
    result = make_engine({"big": lambda e, c: "x" * 300_000}).run(definition, {})
    assert result.error == "States.DataLimitExceeded"


def test_parallel_branches(make_engine: EngineFactory) -> None:
    branch = lambda v: {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": v, "End": True}}}  # noqa: E731
    definition = machine(
        {
            "Par": {
                "Type": "Parallel",
                "Branches": [branch(1), branch(2)],
                "ResultSelector": {"first.$": "$[0]", "all.$": "$"},
                "End": True,
            }
        }
    )
    assert make_engine().run(definition, {}).output == {"first": 1, "all": [1, 2]}


def test_listener_sees_every_event(make_engine: EngineFactory) -> None:
    seen: list[str] = []
    definition = machine({"P": {"Type": "Pass", "End": True}})
    engine: LocalEngine = make_engine()
    result = engine.run(definition, {}, listener=lambda e: seen.append(e.type))
    assert seen == [e.type for e in result.events]
    assert seen == ["ExecutionStarted", "StateEntered", "StateExited", "ExecutionSucceeded"]
