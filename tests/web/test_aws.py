"""The app on AWS: Step Functions backend (moto, plus a stub where moto stops) and Lambda."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from fastapi.testclient import TestClient
from moto import mock_aws
from moto.stepfunctions.models import stepfunctions_backends

import lambdas.web
from plateseg.db import get_engine
from plateseg.errors import NotFoundError, ResumeError, TransientError
from plateseg.pipeline.aggregate import aggregate_run
from plateseg.runs.stepfunctions import AwsRunner as AwsBackend
from plateseg.settings import Settings
from plateseg.store import LocalStore
from plateseg.web import WebSettings, create_app
from tests.db.runs import standard_run

from .conftest import EXPERIMENT, TOKEN

REGION = "eu-west-1"
ACCOUNT = "123456789012"
MACHINE = f"arn:aws:states:{REGION}:123456789012:stateMachine:plateseg-segmentation"


@pytest.fixture
def machine() -> Iterator[str]:
    with mock_aws():
        client = boto3.client("stepfunctions", region_name=REGION)
        definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        created = client.create_state_machine(
            name="plateseg-segmentation",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )
        yield created["stateMachineArn"]


@pytest.fixture
def aws_client(settings: Settings, machine: str, demo: LocalStore) -> Iterator[TestClient]:
    config = WebSettings(web_token=TOKEN, engine="aws", state_machine_arn=machine)
    app = create_app(settings, config)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def test_start_describe_and_stop_an_execution(aws_client: TestClient, machine: str) -> None:
    started = aws_client.post("/api/runs", json={"experiment_id": EXPERIMENT})
    assert started.status_code == 202
    run_id = started.json()["run_id"]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{run_id}"
    described = sfn.describe_execution(executionArn=arn)
    assert json.loads(described["input"])["experiment_id"] == EXPERIMENT
    assert json.loads(described["input"])["recipe"]["segmenter"] == "onnx"

    progress = aws_client.get(f"/api/runs/{run_id}").json()
    assert (progress["engine"], progress["experiment_id"]) == ("aws", EXPERIMENT)
    assert progress["status"] == "RUNNING" and progress["can_cancel"] is True
    stopped = aws_client.post(f"/api/runs/{run_id}/cancel").json()
    assert stopped["status"] == "ABORTED"
    assert aws_client.get("/api/runs/never-started").status_code == 404


def test_preview_estimates_a_cost_on_aws(aws_client: TestClient) -> None:
    body = {"image_ids": ["P1_A01_1"]}
    estimate = aws_client.post(f"/api/experiments/{EXPERIMENT}/preview", json=body).json()[
        "estimate"
    ]
    assert estimate["engine"] == "aws"
    assert estimate["cost_usd"] > 0
    assert "Lambda batches" in estimate["basis"] and "MB" in estimate["basis"]


def _stubbed(settings: Settings) -> tuple[AwsBackend, Stubber]:
    client = boto3.client("stepfunctions", region_name=REGION)
    config = WebSettings(engine="aws", state_machine_arn=MACHINE)
    return AwsBackend(settings, config, client=client), Stubber(client)


def _expect_describe(stub: Stubber, described: dict[str, Any], map_runs: list[Any]) -> None:
    """The calls of one progress poll: probe for a retry, then plateseg.runs.aws_api.describe."""
    execution = described["executionArn"]
    stub.add_client_error(
        "describe_execution",
        "ExecutionDoesNotExist",
        "no retry",
        expected_params={"executionArn": f"{execution}--retry-1"},
    )
    stub.add_response("describe_execution", described, {"executionArn": execution})
    summaries = [
        {"executionArn": execution, "mapRunArn": m["mapRunArn"], "stateMachineArn": MACHINE,
         "startDate": m["startDate"]}
        for m in map_runs
    ]  # fmt: skip
    stub.add_response("list_map_runs", {"mapRuns": summaries}, {"executionArn": execution})
    for map_run in map_runs:
        stub.add_response("describe_map_run", map_run, {"mapRunArn": map_run["mapRunArn"]})


def test_map_run_counters_throughput_and_redrive(settings: Settings) -> None:
    backend, stub = _stubbed(settings)
    execution = backend.execution_arn("run-7")
    assert (
        execution == f"arn:aws:states:{REGION}:123456789012:execution:plateseg-segmentation:run-7"
    )
    map_run = f"arn:aws:states:{REGION}:123456789012:mapRun:plateseg-segmentation/run-7:m1"
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    stop = datetime(2026, 1, 1, 12, 1, 40, tzinfo=UTC)
    described = {
        "executionArn": execution,
        "stateMachineArn": MACHINE,
        "status": "FAILED",
        "startDate": start,
        "stopDate": stop,
        "input": json.dumps({"experiment_id": "EXP-9"}),
        "error": "States.ExceedToleratedFailureThreshold",
        "cause": "too many failed batches",
    }
    counts = {
        "pending": 0, "running": 0, "succeeded": 180, "failed": 20, "timedOut": 0,
        "aborted": 0, "total": 200, "resultsWritten": 200,
    }  # fmt: skip
    map_described = {
        "mapRunArn": map_run, "executionArn": execution, "status": "FAILED",
        "startDate": start, "maxConcurrency": 10, "toleratedFailurePercentage": 0.0,
        "toleratedFailureCount": 0, "itemCounts": counts, "executionCounts": counts,
    }  # fmt: skip
    _expect_describe(stub, described, [map_described])  # progress
    _expect_describe(stub, described, [map_described])  # redrive: which execution
    stub.add_response("redrive_execution", {"redriveDate": stop}, {"executionArn": execution})
    running = {k: v for k, v in described.items() if k not in ("stopDate", "error", "cause")}
    _expect_describe(stub, {**running, "status": "RUNNING"}, [])
    with stub:
        progress = backend.progress("run-7")
        assert (progress.status, progress.succeeded, progress.failed, progress.total) == (
            "FAILED", 180, 20, 200,
        )  # fmt: skip
        assert progress.throughput == pytest.approx(2.0)  # 200 items in 100 s
        assert (progress.can_redrive, progress.can_retry) == (True, True)
        assert progress.error == "States.ExceedToleratedFailureThreshold"
        assert progress.experiment_id == "EXP-9"
        redriven = backend.redrive("run-7")
        assert (redriven.status, redriven.can_cancel) == ("RUNNING", True)
    stub.assert_no_pending_responses()


def test_step_functions_errors_become_typed_errors(settings: Settings) -> None:
    from plateseg.runs import aws_api as aws

    backend, stub = _stubbed(settings)
    stub.add_client_error("describe_execution", "ExecutionDoesNotExist", "no retry")
    stub.add_client_error("describe_execution", "ExecutionDoesNotExist", "no such execution")
    stub.add_client_error("redrive_execution", "ExecutionNotRedrivable", "it succeeded")
    stub.add_client_error("stop_execution", "ThrottlingException", "slow down")
    with stub:
        with pytest.raises(NotFoundError, match="no such execution"):
            backend.progress("gone")
        with pytest.raises(ResumeError, match="it succeeded"):
            aws.redrive_execution(backend.execution_arn("done"), stepfunctions=backend.client)
        with pytest.raises(TransientError, match="throttled"):
            aws.stop_execution(backend.execution_arn("x"), cause="c", stepfunctions=backend.client)


def test_retry_starts_the_next_execution_of_the_run_and_is_followed(
    aws_client: TestClient, machine: str, settings: Settings, tmp_path: Path
) -> None:
    started = aws_client.post("/api/runs", json={"experiment_id": EXPERIMENT}).json()
    run_id = started["run_id"]
    first = f"{machine.replace(':stateMachine:', ':execution:')}:{run_id}"
    refused = aws_client.post(f"/api/runs/{run_id}/retry")  # still running
    assert (refused.status_code, refused.json()["error"]) == (409, "ResumeError")
    # the execution ends; its Aggregate recorded a failed image in the results database
    stepfunctions_backends[ACCOUNT][REGION].describe_execution(first).status = "SUCCEEDED"
    results = standard_run(run_id, EXPERIMENT).write(LocalStore(tmp_path / "map"))
    aggregate_run(results, LocalStore(tmp_path / "map"), get_engine(settings.resolved_database_url))
    progress = aws_client.get(f"/api/runs/{run_id}").json()
    assert (progress["status"], progress["can_retry"]) == ("SUCCEEDED", True)

    retried = aws_client.post(f"/api/runs/{run_id}/retry")
    assert retried.status_code == 202, retried.text
    assert (retried.json()["run_id"], retried.json()["status"]) == (run_id, "RUNNING")
    sfn = boto3.client("stepfunctions", region_name=REGION)
    described = sfn.describe_execution(executionArn=f"{first}--retry-1")
    sent = json.loads(described["input"])
    assert (sent["run_id"], sent["experiment_id"]) == (run_id, EXPERIMENT)
    assert (
        sent["recipe"] == json.loads(sfn.describe_execution(executionArn=first)["input"])["recipe"]
    )
    # the run page now follows the retry: running, cancellable; cancel stops the retry
    followed = aws_client.get(f"/api/runs/{run_id}").json()
    assert (followed["status"], followed["can_cancel"]) == ("RUNNING", True)
    assert aws_client.post(f"/api/runs/{run_id}/cancel").json()["status"] == "ABORTED"
    assert sfn.describe_execution(executionArn=first)["status"] == "SUCCEEDED"


def test_aws_engine_needs_a_state_machine_arn(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="PLATESEG_STATE_MACHINE_ARN"):
        AwsBackend(settings, WebSettings(engine="aws"))


def _http_event(path: str, authorizer: dict[str, Any] | None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1"},
        "requestId": "r", "stage": "$default", "domainName": "ui.example", "accountId": "1",
        "apiId": "a", "routeKey": "$default", "time": "01/Jan/2026:00:00:00 +0000",
        "timeEpoch": 0,
    }  # fmt: skip
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": "ui.example", "accept": "application/json"},
        "requestContext": context, "isBase64Encoded": False,
    }  # fmt: skip


def test_lambda_handler_serves_the_app_behind_the_authorizer(
    settings: Settings, demo: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATESEG_WEB_AUTH", "proxy")
    monkeypatch.setenv("PLATESEG_WEB_PROXY", "apigateway")  # as stacks/web.py sets it
    monkeypatch.setattr(lambdas.web, "_handler", None)
    health = lambdas.web.handler(_http_event("/health", None), None)
    assert health["statusCode"] == 200
    refused = lambdas.web.handler(_http_event("/api/experiments", None), None)
    assert refused["statusCode"] == 401
    claims = {"jwt": {"claims": {"sub": "scientist-1"}, "scopes": []}}
    listed = lambdas.web.handler(_http_event("/api/experiments", claims), None)
    assert listed["statusCode"] == 200
    assert json.loads(listed["body"])[0]["experiment_id"] == EXPERIMENT


def test_the_aws_estimate_models_the_deployed_map_settings(settings: Settings) -> None:
    deployed = {
        "max_concurrency": 100,
        "items_per_batch": 10,
        "tolerated_failure_percentage": 5,
        "child_execution_type": "STANDARD",
        "segment_memory_mb": 3008,
    }
    config = WebSettings(engine="aws", state_machine_arn=MACHINE, run_settings=json.dumps(deployed))
    estimate = AwsBackend(settings, config).estimate(1000, 1.0)
    assert "100 Lambda batches of 10 at 3008 MB" in estimate.basis
    packaged = AwsBackend(settings, WebSettings(engine="aws", state_machine_arn=MACHINE))
    assert "250 Lambda batches of 4 at 2048 MB" in packaged.estimate(1000, 1.0).basis
