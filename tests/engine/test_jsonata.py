"""JSONata states and variables beyond the golden cases: the CLI, threads, validation."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from plateseg.cli import asl
from plateseg.engine import Journal, parse_definition
from plateseg.errors import DefinitionError
from tests.engine.conftest import EngineFactory

GOLDEN = Path(__file__).parent / "golden"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


def workflow_studio_default() -> dict[str, Any]:
    """The state machine Workflow Studio starts with (one Lambda Invoke state, JSONata)."""
    case = json.loads((GOLDEN / "jsonata_workflow_studio_lambda_invoke.json").read_text())
    definition: dict[str, Any] = case["definition"]
    return definition


def echo(event: Any, context: Any) -> Any:
    return event


def test_asl_validate_accepts_the_workflow_studio_default(tmp_path: Path) -> None:
    path = tmp_path / "studio.asl.json"
    path.write_text(json.dumps(workflow_studio_default()))
    result = CliRunner().invoke(asl.app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid (1 top-level states)" in result.stdout


def test_asl_run_runs_the_workflow_studio_default(tmp_path: Path) -> None:
    path = tmp_path / "studio.asl.json"
    path.write_text(json.dumps(workflow_studio_default()))
    result = CliRunner().invoke(
        asl.app,
        [
            "run",
            str(path),
            "--input",
            '{"order": 17}',
            "--bind",
            f"Echo={__name__}:echo",
            "--time-scale",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"order": 17}


@pytest.mark.parametrize(
    ("state", "fragment"),
    [
        ({"Type": "Pass", "Output": "{% $states.input. %}", "End": True}, "/States/A/Output: not"),
        ({"Type": "Pass", "Output": "{% 1 %} ", "End": True}, "must start with '{%'"),
        ({"Type": "Pass", "ResultPath": "$.x", "End": True}, "ResultPath is a JSONPath field"),
        (
            {"Type": "Task", "Resource": f"{ARN}F", "HeartbeatSeconds": 5, "End": True},
            "heartbeats",
        ),
        (
            {"Type": "Task", "Resource": f"{ARN}F", "Credentials": {}, "End": True},
            "Credentials",
        ),
        (
            {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True},
            "needs Arguments.FunctionName",
        ),
        (
            {
                "Type": "Choice",
                "Choices": [{"Condition": "$.x", "Next": "A"}],
                "Default": "A",
            },
            "Condition: must be a JSONata expression",
        ),
        ({"Type": "Pass", "Assign": {"x.$": "{% 1 %}"}, "End": True}, "do not use '.$'"),
    ],
)
def test_jsonata_definition_problems_are_named(state: dict[str, Any], fragment: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": state}})
    assert any(fragment in problem for problem in info.value.problems), info.value.problems


def test_scope_clash_names_the_state_and_variables() -> None:
    branch = {"StartAt": "S", "States": {"S": {"Type": "Pass", "Assign": {"x": 2}, "End": True}}}
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "P"},
            "P": {"Type": "Parallel", "Branches": [branch], "End": True},
        },
    }
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition)
    assert "/States/P: variables ['x'] are assigned inside state 'P'" in str(info.value)


def test_jsonata_in_many_distributed_map_threads(make_engine: EngineFactory) -> None:
    """Expressions compiled and evaluated on 32 threads at once give each item its own."""
    seen_threads: set[int] = set()

    def double(event: Any, context: Any) -> Any:
        seen_threads.add(threading.get_ident())
        return {"n": event["n"] * 2}

    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": f"{ARN}Double",
                "Arguments": {"n": "{% $states.input.v %}"},
                "Output": "{% $states.result.n + $states.input.v %}",
                "End": True,
            }
        },
    }
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "Items": "{% $map([0..299], function($i) { {'v': $i} }) %}",
                "MaxConcurrency": 32,
                "ItemProcessor": processor,
                "End": True,
            }
        },
    }
    result = make_engine({"Double": double}).run(definition, {})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [3 * i for i in range(300)]
    assert len(seen_threads) > 1


def test_now_is_the_time_of_the_evaluation(make_engine: EngineFactory) -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": "{% $now() %}", "End": True}},
    }
    engine = make_engine()
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = engine.run(definition, {}).output
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert moment >= before


def test_resumed_execution_reads_the_variables_it_had(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    calls = [0]

    def flaky(event: Any, context: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("first call fails")
        return event

    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"x": "{% $states.input.v %}"}, "Next": "B"},
            "B": {
                "Type": "Task",
                "Resource": f"{ARN}Flaky",
                "Arguments": {"x": "{% $x %}"},
                "End": True,
            },
        },
    }
    engine = make_engine({"Flaky": flaky})
    with Journal(tmp_path / "journal.sqlite") as journal:
        first = engine.run(definition, {"v": 7}, name="resumed", journal=journal)
        assert (first.status, first.error) == ("FAILED", "RuntimeError")
        second = engine.run(definition, {"v": 7}, name="resumed", journal=journal)
    assert second.status == "SUCCEEDED", second.cause
    assert second.output == {"x": 7}
    assert any(e.type == "ExecutionResumed" for e in second.events)
