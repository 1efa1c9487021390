"""Lambda invocation in worker processes: results, errors as Lambda reports them, crashes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from plateseg.engine.invoker import function_name_of
from plateseg.settings import Settings, use_settings
from tests.engine.conftest import EngineFactory, RecordingClock, machine

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
FAKES = "tests.engine.fake_functions"


def test_function_name_of_every_reference_form() -> None:
    for reference in ("fn", "fn:live", f"{ARN}fn", f"{ARN}fn:3", "000000000000:function:fn"):
        assert function_name_of(reference) == "fn"


def test_worker_crash_is_lambda_unknown_and_retried(
    make_engine: EngineFactory, clock: RecordingClock, tmp_path: Path
) -> None:
    definition = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": f"{ARN}crash",
                "End": True,
                "Retry": [
                    {"ErrorEquals": ["Lambda.Unknown"], "IntervalSeconds": 3, "MaxAttempts": 2}
                ],
            },
        }
    )
    engine = make_engine({"crash": f"{FAKES}:crash_once"})
    payload = {"marker": str(tmp_path / "crashed"), "parent_pid": os.getpid()}
    result = engine.run(definition, payload)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {"survived": True, "pid_differs": True}
    assert (tmp_path / "crashed").exists()
    assert clock.sleeps == [3.0]
    failures = [e.details for e in result.events if e.type == "TaskFailed"]
    assert [f["error"] for f in failures] == ["Lambda.Unknown"]
    assert "crash" in failures[0]["cause"]
    assert engine.invoker.crashes == 1


def test_worker_errors_and_initializer(
    make_engine: EngineFactory, settings: Settings, tmp_path: Path
) -> None:
    definition = machine(
        {
            "Echo": {
                "Type": "Task",
                "Resource": f"{ARN}echo",
                "ResultPath": "$.echo",
                "Next": "Boom",
            },
            "Boom": {"Type": "Task", "Resource": f"{ARN}boom", "End": True},
        }
    )
    engine = make_engine(
        {"echo": f"{FAKES}:echo", "boom": f"{FAKES}:fail_transient"},
        worker_initializer=use_settings,
        worker_initargs=(settings.model_dump(mode="json"),),
    )
    result = engine.run(definition, {"x": [1, 2]})
    assert result.status == "FAILED"
    echoed = [e.details["output"] for e in result.events if e.type == "TaskSucceeded"]
    assert echoed == [{"event": {"x": [1, 2]}, "function": "echo"}]
    assert result.error == "StoreUnavailableError"
    cause = json.loads(result.cause or "{}")
    assert cause["errorType"] == "StoreUnavailableError"
    assert cause["errorMessage"].startswith("throttled while handling")
    assert any("fake_functions.py" in line for line in cause["stackTrace"])
