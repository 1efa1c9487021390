"""The runners from the one factory: what the CLI and the web share."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from plateseg.errors import InputError, NotFoundError
from plateseg.map_settings import DEFAULTS, MapSettings
from plateseg.runs import LocalRunner, RunOptions, StateMachine, make_runner
from plateseg.runs.stepfunctions import AwsRunner
from plateseg.settings import Settings

REGION = "eu-west-1"


@pytest.fixture
def machine(fake_aws: Callable[[str], None]) -> Iterator[str]:
    fake_aws(REGION)
    with mock_aws():
        created = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="plateseg-dev-segmentation",
            definition=json.dumps({"StartAt": "D", "States": {"D": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )
        yield str(created["stateMachineArn"])


def test_the_factory_gives_the_engine_asked_for(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    local = make_runner(settings)
    assert isinstance(local, LocalRunner) and local.engine == "local"
    assert local.map_settings == DEFAULTS
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:m"
    deployed = MapSettings(items_per_batch=10, max_concurrency=100)
    aws = make_runner(
        settings, engine="aws", state_machine=StateMachine(arn, deployed.model_dump_json())
    )
    assert isinstance(aws, AwsRunner) and aws.map_settings == deployed
    with pytest.raises(NotFoundError, match="PLATESEG_STATE_MACHINE_ARN"):
        make_runner(settings, engine="aws")


def test_on_aws_other_map_settings_than_the_deployments_are_refused(tmp_path: Path) -> None:
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:m"
    deployed = MapSettings(items_per_batch=10, max_concurrency=100)
    runner = make_runner(
        Settings(home=tmp_path),
        engine="aws",
        state_machine=StateMachine(arn, deployed.model_dump_json()),
    )
    with pytest.raises(InputError, match=r"deployment's \(cdk.json\): batch size 10"):
        runner.start("E1", "r1", options=RunOptions(items_per_batch=3))


def test_a_start_on_aws_carries_the_naming_and_names_the_execution_after_the_run(
    machine: str, tmp_path: Path
) -> None:
    runner = make_runner(Settings(home=tmp_path), engine="aws", state_machine=StateMachine(machine))
    started = runner.start(
        "E1",
        "run-7",
        {"segmenter": "classical"},
        options=RunOptions(naming="operetta", items_per_batch=DEFAULTS.items_per_batch),
    )
    assert started.execution_arn is not None and started.execution_arn.endswith(":run-7")
    sent = boto3.client("stepfunctions", region_name=REGION).describe_execution(
        executionArn=started.execution_arn
    )
    payload = json.loads(sent["input"])
    assert (payload["run_id"], payload["naming"]) == ("run-7", "operetta")
    assert runner.progress("run-7").execution_arn == started.execution_arn


def test_plateseg_start_takes_the_naming(
    machine: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cli.test_cli import run_cli

    for variable in ("LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("USER", "ada")
    args = ["start", "E1", "--naming", "cellomics", "--run-id", "r-9"]
    assert run_cli([*args, "--state-machine-arn", machine]) == 0
    arn = capsys.readouterr().out.strip()
    sent = boto3.client("stepfunctions", region_name=REGION).describe_execution(executionArn=arn)
    # who started it travels in the input; Lookup records it with the run
    assert json.loads(sent["input"])["naming"] == "cellomics"
    assert json.loads(sent["input"])["started_by"] == "ada"
    assert run_cli(["start", "E1", "--run-id", "v1.2", "--state-machine-arn", machine]) == 2
    assert "invalid run id 'v1.2'" in capsys.readouterr().err


def test_who_started_a_run_is_checked_at_the_edge() -> None:
    from plateseg.errors import ExecutionInputError
    from plateseg.runs.base import execution_input

    checked = execution_input("E1", None, None, RunOptions(started_by="ada@lab.example"))
    assert checked.started_by == "ada@lab.example"
    with pytest.raises(ExecutionInputError, match="started_by"):
        execution_input("E1", None, None, RunOptions(started_by="ada\nrm -rf"))
