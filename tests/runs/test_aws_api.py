"""boto3 helpers for scripted runs, against moto (Step Functions, CloudFormation) and stubs.

moto's Step Functions runs no definition in its default mode: an execution is RUNNING
(or FAILED with ``SF_EXECUTION_HISTORY_TYPE=FAILURE``, with a canned history) until
stopped, and it has no Map Runs. So these tests prove the API calls, the input
validation, the ARN resolution and the polling/failure logic; the Map Run counts are
checked with botocore's Stubber on the real response shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.stepfunctions.models import stepfunctions_backends

from plateseg import contracts
from plateseg.errors import (
    ExecutionFailed,
    ExecutionInputError,
    InputError,
    NotFoundError,
    RecipeError,
    ResumeError,
    TransientError,
)
from plateseg.runs import aws_api as aws

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/plateseg-states"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def aws_env(fake_aws: Callable[[str], None]) -> Iterator[None]:
    fake_aws(REGION)
    with mock_aws():
        yield


@pytest.fixture
def sfn(aws_env: None) -> Any:
    return boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture
def machine(sfn: Any) -> str:
    created = sfn.create_state_machine(
        name="plateseg-dev-segmentation", definition=DEFINITION, roleArn=ROLE
    )
    return str(created["stateMachineArn"])


def _finish(arn: str, status: str = "SUCCEEDED") -> None:
    """Stand in for AWS finishing the run (moto never does by itself)."""
    backend = stepfunctions_backends[ACCOUNT][REGION]
    backend.describe_execution(arn).status = status


# --- input ----------------------------------------------------------------------------


def test_build_input_validates_experiment_id() -> None:
    with pytest.raises(ExecutionInputError, match="experiment_id"):
        aws.build_input("../etc")


def test_build_input_validates_the_recipe() -> None:
    with pytest.raises(RecipeError, match="recipe"):
        aws.build_input("E1", {"version": 9})


def test_execution_name_drops_colons() -> None:
    assert aws.execution_name("2026-11-23T05:00:00") == "2026-11-23T05-00-00"
    assert aws.execution_name(None) is None


# --- start and describe ------------------------------------------------------------------


def test_start_sends_the_validated_input_and_names_the_run(sfn: Any, machine: str) -> None:
    arn = aws.start_execution(machine, aws.build_input("E1", run_id="run-1"))
    described = sfn.describe_execution(executionArn=arn)
    assert described["name"] == "run-1"
    assert json.loads(described["input"]) == {
        "experiment_id": "E1",
        "run_id": "run-1",
        "recipe": aws.build_input("E1").recipe.model_dump(mode="json", exclude_none=True),
    }


def test_start_on_a_missing_state_machine_is_not_found(aws_env: None) -> None:
    missing = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:nope"
    with pytest.raises(NotFoundError, match="nope"):
        aws.start_execution(missing, aws.build_input("E1"))


def test_describe_a_running_execution(machine: str) -> None:
    arn = aws.start_execution(machine, aws.build_input("E1"))
    status = aws.describe(arn)
    assert (status.status, status.done, status.map_runs, status.error) == ("RUNNING", False, [], "")


def test_describe_unknown_execution_is_not_found(machine: str) -> None:
    unknown = machine.replace(":stateMachine:", ":execution:") + ":missing"
    with pytest.raises(NotFoundError, match="missing"):
        aws.describe(unknown)


def test_describe_a_malformed_arn_is_an_input_error(aws_env: None) -> None:
    with pytest.raises(InputError, match="not-an-arn"):
        aws.describe("not-an-arn")


# --- the stack output ---------------------------------------------------------------------


@pytest.fixture
def cloudformation() -> Iterator[tuple[Any, Stubber]]:
    """A CloudFormation client with botocore's Stubber (moto's needs extra packages)."""
    client = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        yield client, stub


def _stack(stub: Stubber, name: str, outputs: dict[str, str]) -> None:
    stack = {
        "StackName": name,
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/1",
        "CreationTime": "2026-11-23T05:00:00Z",
        "StackStatus": "CREATE_COMPLETE",
        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
    }
    stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": name})


def test_state_machine_arn_comes_from_the_stack_output(
    cloudformation: tuple[Any, Stubber],
) -> None:
    client, stub = cloudformation
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:plateseg-dev-segmentation"
    _stack(stub, "plateseg-dev-pipeline", {"StateMachineArn": arn, "BucketName": "b"})
    assert aws.resolve_state_machine_arn("plateseg-dev-pipeline", cloudformation=client) == arn


def test_stack_without_the_output_names_what_it_has(cloudformation: tuple[Any, Stubber]) -> None:
    client, stub = cloudformation
    _stack(stub, "plateseg-dev-storage", {"BucketName": "b"})
    with pytest.raises(NotFoundError, match=r"no output 'StateMachineArn' \(outputs: BucketName\)"):
        aws.resolve_state_machine_arn("plateseg-dev-storage", cloudformation=client)


def test_missing_stack_is_not_found(cloudformation: tuple[Any, Stubber]) -> None:
    client, stub = cloudformation
    stub.add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message="Stack with id plateseg-nope does not exist",
        http_status_code=400,
        expected_params={"StackName": "plateseg-nope"},
    )
    with pytest.raises(NotFoundError, match="stack 'plateseg-nope': Stack with id"):
        aws.resolve_state_machine_arn("plateseg-nope", cloudformation=client)


# --- wait ------------------------------------------------------------------------------


def test_wait_polls_with_backoff_until_success(machine: str) -> None:
    arn = aws.start_execution(machine, aws.build_input("E1"))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 4:
            _finish(arn)

    final = aws.wait(arn, interval=1.0, backoff=2.0, max_interval=5.0, sleep=sleep)
    assert (final.status, waits) == ("SUCCEEDED", [1.0, 2.0, 4.0, 5.0])


def test_wait_reports_the_failure_from_the_history(
    machine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_EXECUTION_HISTORY_TYPE", "FAILURE")
    arn = aws.start_execution(machine, aws.build_input("E1"))
    with pytest.raises(ExecutionFailed) as caught:
        aws.wait(arn, sleep=lambda _: None)
    assert (caught.value.error, caught.value.cause, caught.value.execution) == (
        "AnError",
        "An error occurred!",
        arn,
    )


def test_wait_on_an_aborted_run_fails(machine: str, sfn: Any) -> None:
    arn = aws.start_execution(machine, aws.build_input("E1"))
    sfn.stop_execution(executionArn=arn)
    with pytest.raises(ExecutionFailed, match="ABORTED"):
        aws.wait(arn, sleep=lambda _: None)


def test_wait_gives_up_after_the_timeout(machine: str) -> None:
    arn = aws.start_execution(machine, aws.build_input("E1"))
    with pytest.raises(TransientError, match="still RUNNING after 3 s"):
        aws.wait(arn, interval=1.0, backoff=2.0, timeout=5.0, sleep=lambda _: None)


def test_wait_refuses_nonsense_intervals() -> None:
    with pytest.raises(InputError, match="backoff >= 1"):
        aws.wait("arn", backoff=0.5)


# --- Map Run counts (stubbed: moto has no Map Runs) -------------------------------------


def test_describe_adds_the_map_run_item_counts() -> None:
    client = boto3.client(
        "stepfunctions",
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:m:run-1"
    map_run = f"arn:aws:states:{REGION}:{ACCOUNT}:mapRun:m/SegmentFields:abc"
    counts = {
        "pending": 1,
        "running": 2,
        "succeeded": 90,
        "failed": 3,
        "timedOut": 0,
        "aborted": 0,
        "total": 96,
        "resultsWritten": 93,
    }
    started = "2026-11-23T05:00:00Z"
    with Stubber(client) as stub:
        stub.add_response(
            "describe_execution",
            {
                "executionArn": arn,
                "stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:m",
                "status": "RUNNING",
                "startDate": started,
            },
            {"executionArn": arn},
        )
        stub.add_response(
            "list_map_runs",
            {
                "mapRuns": [
                    {
                        "executionArn": arn,
                        "mapRunArn": map_run,
                        "stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:m",
                        "startDate": started,
                    }
                ]
            },
            {"executionArn": arn},
        )
        stub.add_response(
            "describe_map_run",
            {
                "mapRunArn": map_run,
                "executionArn": arn,
                "status": "RUNNING",
                "startDate": started,
                "maxConcurrency": 100,
                "toleratedFailurePercentage": 10.0,
                "toleratedFailureCount": 0,
                "itemCounts": counts,
                "executionCounts": {**counts, "total": 10, "succeeded": 9, "failed": 1},
            },
            {"mapRunArn": map_run},
        )
        status = aws.describe(arn, stepfunctions=client)
    [run] = status.map_runs
    assert (run.items.total, run.items.succeeded, run.items.failed, run.items.running) == (
        96,
        90,
        3,
        2,
    )
    assert (run.executions.total, run.executions.failed) == (10, 1)
    assert status.to_dict()["map_runs"][0]["items"]["results_written"] == 93


# --- the JSON Schema file ----------------------------------------------------------------

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "execution-input.schema.json"
REGENERATE = (
    '.venv/bin/python -c "import json; from plateseg.contracts import execution_input_schema; '
    "open('schemas/execution-input.schema.json', 'w').write("
    "json.dumps(execution_input_schema(), indent=2) + '\\n')\""
)


def test_schema_file_is_generated_from_the_contract() -> None:
    on_disk = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert on_disk == contracts.execution_input_schema(), (
        f"schema is stale; regenerate: {REGENERATE}"
    )


def test_schema_requires_the_experiment_and_forbids_extras() -> None:
    schema = contracts.execution_input_schema()
    assert (schema["required"], schema["additionalProperties"]) == (["experiment_id"], False)
    assert {"experiment_id", "run_id", "recipe"} <= set(schema["properties"])


# --- retry, redrive, stop: the calls the web UI makes through this module ---------------


def test_execution_arn_and_retry_names() -> None:
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:m"
    assert aws.execution_arn(machine, "r1") == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:m:r1"
    with pytest.raises(InputError, match="not a state machine ARN"):
        aws.execution_arn("arn:aws:states:x", "r1")
    assert aws.retry_execution_name("a:b", 3) == "a-b--retry-3"
    long_name = aws.retry_execution_name("r" * 80, 12)
    assert len(long_name) == 80 and long_name.endswith("--retry-12")


def test_retries_are_numbered_executions_of_the_same_input(sfn: Any, machine: str) -> None:
    first = aws.start_execution(machine, aws.build_input("E1", {"params": {}}, "run-5"))
    with pytest.raises(ResumeError, match="still running"):
        aws.start_retry(machine, "run-5")
    _finish(first, "FAILED")
    retry_1 = aws.start_retry(machine, "run-5")
    assert retry_1.endswith(":run-5--retry-1")
    _finish(retry_1)
    retry_2 = aws.start_retry(machine, "run-5")
    attempt, latest = aws.latest_attempt(machine, "run-5")
    assert (attempt, latest.arn, latest.status) == (2, retry_2, "RUNNING")
    sent = json.loads(sfn.describe_execution(executionArn=retry_2)["input"])
    assert sent == json.loads(sfn.describe_execution(executionArn=first)["input"])
    aws.stop_execution(retry_2, cause="enough")
    assert sfn.describe_execution(executionArn=retry_2)["status"] == "ABORTED"
    with pytest.raises(NotFoundError):
        aws.start_retry(machine, "never-started")


def test_an_execution_that_cannot_be_redriven_is_a_resume_error() -> None:
    client = boto3.client(
        "stepfunctions", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:m:run-1"
    with Stubber(client) as stub:
        stub.add_response("redrive_execution", {"redriveDate": "2026-11-23T05:00:00Z"})
        stub.add_client_error("redrive_execution", "ExecutionNotRedrivable", "it succeeded")
        aws.redrive_execution(arn, stepfunctions=client)
        with pytest.raises(ResumeError, match="it succeeded"):
            aws.redrive_execution(arn, stepfunctions=client)
