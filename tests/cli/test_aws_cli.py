"""``plateseg start → status → wait`` and ``validate-input`` against moto.

The state machine is created in moto from the definition the CDK app synthesizes (the
pipeline template's ``DefinitionString`` with its substitutions filled in). moto does
not execute it (its interpreter rejects ``ItemBatcher``), so what this proves is the
scripted-run contract: the CLI validates and sends the input, prints the execution ARN,
reports status as text and JSON, waits through RUNNING until the run ends, exits 0 on
success and 1 with the ASL error on failure. The run's end is simulated by setting the
execution's status in moto's backend, and the failure by moto's
``SF_EXECUTION_HISTORY_TYPE=FAILURE`` canned history.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from aws_cdk.assertions import Template
from moto import mock_aws
from moto.stepfunctions.models import stepfunctions_backends

import plateseg.cli
from plateseg.cli import aws as aws_cli
from plateseg.cli import main
from tests.stacks.conftest import render

pytestmark = pytest.mark.xdist_group("cdk")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synthesized_definition(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The pipeline template's state machine definition, substitutions filled in."""
    spec = importlib.util.spec_from_file_location("plateseg_cdk_app_cli", REPO_ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    outdir = tmp_path_factory.mktemp("cdk.out")
    built = module.build_app(outdir=str(outdir), nag=False)
    [machine] = (
        Template.from_stack(built.pipeline)
        .find_resources("AWS::StepFunctions::StateMachine")
        .values()
    )
    text: str = render(machine["Properties"]["DefinitionString"])
    values = {
        key: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:plateseg-{key}"
        for key in machine["Properties"]["DefinitionSubstitutions"]
    }
    values["BucketName"] = "plateseg-dev-store"
    filled = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)
    assert "${" not in filled
    return filled


@pytest.fixture(autouse=True)
def aws_commands() -> None:
    """The commands on the real ``plateseg`` app (a no-op once it registers them)."""
    names = {command.name for command in plateseg.cli.app.registered_commands}
    if "start" not in names:
        aws_cli.register(plateseg.cli.app)


@pytest.fixture
def machine(fake_aws: Callable[[str], None], synthesized_definition: str) -> Iterator[str]:
    fake_aws(REGION)
    with mock_aws():
        created = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="plateseg-dev-segmentation",
            definition=synthesized_definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/plateseg-states",
        )
        yield str(created["stateMachineArn"])


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
        raise SystemExit(0)
    code = info.value.code
    return int(code) if code is not None else 0


def _finish(arn: str) -> None:
    stepfunctions_backends[ACCOUNT][REGION].describe_execution(arn).status = "SUCCEEDED"


def test_the_definition_is_the_distributed_map_pipeline(synthesized_definition: str) -> None:
    definition = json.loads(synthesized_definition)
    processor = definition["States"]["Segment"]["ItemProcessor"]["ProcessorConfig"]
    assert (definition["StartAt"], processor["Mode"]) == ("Lookup", "DISTRIBUTED")


def test_start_status_wait(
    machine: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"segmenter": "classical"}), encoding="utf-8")
    assert (
        run_cli(["start", "EXP-1", "--recipe", f"@{recipe}", "--state-machine-arn", machine]) == 0
    )
    arn = capsys.readouterr().out.strip()
    assert arn.startswith(machine.replace(":stateMachine:", ":execution:") + ":")
    sent = boto3.client("stepfunctions", region_name=REGION).describe_execution(executionArn=arn)
    assert json.loads(sent["input"])["experiment_id"] == "EXP-1"

    assert run_cli(["status", arn, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["arn"], status["status"], status["map_runs"]) == (arn, "RUNNING", [])

    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        _finish(arn)

    monkeypatch.setattr("plateseg.runs.aws_api.time.sleep", sleep)
    assert run_cli(["wait", arn, "--interval", "0.1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"SUCCEEDED  {arn}")
    assert (polls, captured.err.split()) == ([0.1], ["RUNNING", "SUCCEEDED"])


def test_wait_on_a_failed_run_exits_1_with_the_error(
    machine: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_EXECUTION_HISTORY_TYPE", "FAILURE")
    assert run_cli(["start", "EXP-2", "--state-machine-arn", machine]) == 0
    arn = capsys.readouterr().out.strip()
    assert run_cli(["wait", arn, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"execution {arn} failed: AnError: An error occurred!" in " ".join(err.split())


def test_start_needs_exactly_one_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["start", "EXP-1"]) == 2
    assert "exactly one of --stack NAME or --state-machine-arn" in capsys.readouterr().err


def test_start_refuses_a_bad_experiment_before_calling_aws(
    capsys: pytest.CaptureFixture[str],
) -> None:
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:never-called"
    assert run_cli(["start", "../etc", "--state-machine-arn", arn]) == 2
    assert "experiment_id" in capsys.readouterr().err


def test_status_of_an_unknown_execution_is_exit_2(
    machine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = machine.replace(":stateMachine:", ":execution:") + ":nope"
    assert run_cli(["status", unknown]) == 2
    assert "nope" in capsys.readouterr().err


def test_validate_input_prints_the_normalized_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = tmp_path / "input.json"
    document.write_text(json.dumps({"experiment_id": "EXP-1"}), encoding="utf-8")
    assert run_cli(["validate-input", f"@{document}"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert (parsed["experiment_id"], parsed["recipe"]["segmenter"]) == ("EXP-1", "onnx")


def test_validate_input_names_the_bad_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = tmp_path / "input.json"
    document.write_text(json.dumps({"experiment_id": "EXP-1", "extra": 1}), encoding="utf-8")
    assert run_cli(["validate-input", f"@{document}"]) == 2
    assert "input.extra" in capsys.readouterr().err


def test_aws_commands_exist_after_registration() -> None:
    names = {command.name for command in plateseg.cli.app.registered_commands}
    assert {"start", "status", "wait", "validate-input"} <= names


def _aggregate_output(ok: int, failed: int) -> str:
    """The Aggregate result a pipeline execution ends with (its execution output)."""
    return json.dumps(
        {
            "run_id": "R-9",
            "experiment_id": "EXP-9",
            "status": "SUCCEEDED_WITH_FAILURES" if failed else "SUCCEEDED",
            "images_ok": ok,
            "images_failed": failed,
            "batches_failed": 0,
            "wells": 2,
            "objects": 10 * ok,
        }
    )


@pytest.mark.parametrize(
    ("ok", "failed", "code", "line"),
    [
        (4, 0, 0, ""),
        (3, 1, 10, "warning: run R-9: 1 of 4 images failed; list them with: plateseg results"),
        (0, 4, 1, "error: run R-9: all 4 images failed; list them with: plateseg results"),
    ],
    ids=["all-ok", "some-failed", "all-failed"],
)
def test_wait_exits_as_the_run_images_say(
    machine: str,
    capsys: pytest.CaptureFixture[str],
    ok: int,
    failed: int,
    code: int,
    line: str,
) -> None:
    assert run_cli(["start", "EXP-9", "--run-id", "R-9", "--state-machine-arn", machine]) == 0
    arn = capsys.readouterr().out.strip()
    execution = stepfunctions_backends[ACCOUNT][REGION].describe_execution(arn)
    execution.status = "SUCCEEDED"
    execution.output = _aggregate_output(ok, failed)
    assert run_cli(["wait", arn, "--quiet"]) == code
    captured = capsys.readouterr()
    assert captured.out.startswith(f"SUCCEEDED  {arn}")
    assert captured.err.strip().startswith(line) if line else captured.err == ""
