"""``plateseg asl validate`` and ``plateseg asl run``: outputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from plateseg.cli import asl

SEGMENTATION = Path(__file__).resolve().parents[2] / "statemachines" / "segmentation.asl.json"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, document: Any, name: str = "sm.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def test_segmentation_definition_is_valid(runner: CliRunner) -> None:
    result = runner.invoke(asl.app, ["validate", str(SEGMENTATION)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout


def test_validate_reports_every_problem_with_pointer_and_state(
    runner: CliRunner, tmp_path: Path
) -> None:
    document = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Nxt": "B", "Arguments": {}},
            "B": {"Type": "Pass", "End": True, "InputPath": "$.[bad"},
            "C": {"Type": "Pass", "End": True, "Parameters": {"x.$": "States.Nope(1)"}},
        },
    }
    result = runner.invoke(asl.app, ["validate", str(write(tmp_path, document))])
    assert result.exit_code == 2
    err = result.stderr
    assert "/States/A/Nxt: unknown field 'Nxt' for a Pass state 'A' (did you mean 'Next'?)" in err
    assert "/States/A/Arguments" in err and "JSONata" in err
    assert "/States/A: state 'A' needs exactly one of Next or End" in err
    assert "/States/B/InputPath" in err
    assert "/States/C/Parameters/x.$" in err and "States.Nope" in err
    assert "/States/C: state 'C' is not reachable" in err


def test_validate_accepts_jsonata_and_names_what_is_unsupported(
    runner: CliRunner, tmp_path: Path
) -> None:
    document = {"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}
    result = runner.invoke(asl.app, ["validate", str(write(tmp_path, document))])
    assert result.exit_code == 0, result.output
    document["States"]["A"] = {
        "Type": "Task",
        "Resource": f"{ARN}F",
        "HeartbeatSeconds": 60,
        "End": True,
    }
    result = runner.invoke(asl.app, ["validate", str(write(tmp_path, document))])
    assert result.exit_code == 2
    assert "/States/A/HeartbeatSeconds: unsupported field" in result.stderr


def test_validate_non_json_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    result = runner.invoke(asl.app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "not JSON" in result.stderr and "line 1" in result.stderr


def test_run_prints_output_and_exits_0(runner: CliRunner, tmp_path: Path) -> None:
    document = {
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": f"{ARN}Double", "ResultPath": "$.r", "End": True}
        },
    }
    result = runner.invoke(
        asl.app,
        [
            "run",
            str(write(tmp_path, document)),
            "--input",
            '{"x": 21}',
            "--bind",
            "Double=tests.cli.asl_handlers:double",
            "--time-scale",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"x": 21, "r": {"x": 42, "function": "Double"}}


def test_run_lambda_invoke_input_from_file(runner: CliRunner, tmp_path: Path) -> None:
    document = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": f"{ARN}Double:live", "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "End": True,
            }
        },
    }
    (tmp_path / "in.json").write_text('{"x": 2}')
    args = ["run", str(write(tmp_path, document)), "--input", f"@{tmp_path / 'in.json'}"]
    result = runner.invoke(asl.app, [*args, "--bind", "Double=tests.cli.asl_handlers:double"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"x": 4, "function": "Double"}


def test_run_failure_prints_error_and_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    document = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": f"{ARN}X", "End": True}},
    }
    args = ["run", str(write(tmp_path, document)), "--bind", "X=tests.cli.asl_handlers:explode"]
    result = runner.invoke(asl.app, args)
    assert result.exit_code == 1
    failure = json.loads(result.stdout)
    assert failure["Error"] == "KeyError"
    assert json.loads(failure["Cause"])["errorMessage"] == "'no such well'"


def test_run_invalid_definition_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    document = {"StartAt": "Missing", "States": {"A": {"Type": "Pass", "End": True}}}
    result = runner.invoke(asl.app, ["run", str(write(tmp_path, document))])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "/StartAt" in result.stderr


def test_run_reads_items_from_store(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "s3" / "bkt").mkdir(parents=True)
    (tmp_path / "s3" / "bkt" / "items.json").write_text("[1, 2, 3]")
    document = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": "bkt", "Key": "items.json"},
                },
                "ItemBatcher": {"MaxItemsPerBatch": 2},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "OutputPath": "$.Items", "End": True}},
                },
                "End": True,
            }
        },
    }
    args = ["run", str(write(tmp_path, document)), "--store", str(tmp_path / "s3")]
    result = runner.invoke(asl.app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [[1, 2], [3]]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", "expected FUNCTION=module:callable"),
        ("F=no_such_module_xyz:h", "cannot import 'no_such_module_xyz'"),
        ("F=tests.cli.asl_handlers:missing", "has no callable 'missing'"),
    ],
)
def test_bad_bind_is_a_clear_error(
    runner: CliRunner, tmp_path: Path, spec: str, message: str
) -> None:
    document = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    result = runner.invoke(asl.app, ["run", str(write(tmp_path, document)), "--bind", spec])
    assert result.exit_code == 2
    assert message in result.stderr


SNS = "arn:aws:states:::sns:publish"


def _publishing() -> dict[str, Any]:
    return {
        "StartAt": "Notify",
        "States": {
            "Notify": {
                "Type": "Task",
                "Resource": SNS,
                "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:1:t", "Message.$": "$.m"},
                "End": True,
            }
        },
    }


def test_validate_names_an_unbound_resource_and_accepts_it_bound(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(tmp_path, _publishing())
    result = runner.invoke(asl.app, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"/States/Notify/Resource: unsupported resource '{SNS}'" in result.stderr
    assert f"--bind {SNS}=module:callable" in result.stderr
    bind = f"{SNS}=tests.cli.asl_handlers:publish"
    result = runner.invoke(asl.app, ["validate", str(path), "--bind", bind])
    assert result.exit_code == 0, result.output


def test_run_calls_a_bound_resource(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, _publishing())
    bind = f"{SNS}=tests.cli.asl_handlers:publish"
    result = runner.invoke(asl.app, ["run", str(path), "--input", '{"m": "hi"}', "--bind", bind])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"MessageId": "Notify:hi"}


def test_bind_by_lambda_arn_binds_the_function(runner: CliRunner, tmp_path: Path) -> None:
    document = {
        "StartAt": "A",
        "States": {"A": {"Type": "Task", "Resource": f"{ARN}Double:live", "End": True}},
    }
    bind = f"{ARN}Double=tests.cli.asl_handlers:double"
    result = runner.invoke(
        asl.app, ["run", str(write(tmp_path, document)), "--input", '{"x": 4}', "--bind", bind]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"x": 8, "function": "Double"}


CHILD_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:HelloWorld"


def _parent(resource: str = "arn:aws:states:::states:startExecution.sync:2") -> dict[str, Any]:
    return {
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Task",
                "Resource": resource,
                "Parameters": {"StateMachineArn": CHILD_ARN, "Input.$": "$", "Name": "c"},
                "OutputPath": "$.Output",
                "End": True,
            }
        },
    }


def test_run_starts_a_registered_child_state_machine(runner: CliRunner, tmp_path: Path) -> None:
    child = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Parameters": {"seen.$": "$.x", "env": "${Env}"}, "End": True}
        },
    }
    child_path = write(tmp_path, child, "child.json")
    result = runner.invoke(
        asl.app,
        [
            "run",
            str(write(tmp_path, _parent())),
            "--input",
            '{"x": 3}',
            "--state-machine",
            f"{CHILD_ARN}={child_path}",
            "--sub",
            "Env=test",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"seen": 3, "env": "test"}


def test_run_without_the_child_fails_as_aws_does(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(asl.app, ["run", str(write(tmp_path, _parent()))])
    assert result.exit_code == 1
    failure = json.loads(result.stdout)
    assert failure["Error"] == "StepFunctions.StateMachineDoesNotExistException"


def test_validate_checks_child_state_machines(runner: CliRunner, tmp_path: Path) -> None:
    bad_child = write(tmp_path, {"StartAt": "P", "States": {"P": {"Type": "Pass"}}}, "c.json")
    result = runner.invoke(
        asl.app,
        [
            "validate",
            str(write(tmp_path, _parent())),
            "--state-machine",
            f"HelloWorld={bad_child}",
        ],
    )
    assert result.exit_code == 2
    assert "state machine HelloWorld: /States/P: state 'P' needs exactly one of Next" in (
        result.stderr
    )
    result = runner.invoke(
        asl.app, ["run", str(write(tmp_path, _parent())), "--state-machine", "Bad"]
    )
    assert result.exit_code == 2
    assert "expected ARN=FILE" in result.stderr


def test_validate_refuses_the_callback_pattern(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, _parent("arn:aws:states:::states:startExecution.waitForTaskToken"))
    result = runner.invoke(asl.app, ["validate", str(path)])
    assert result.exit_code == 2
    assert ".waitForTaskToken" in result.stderr
