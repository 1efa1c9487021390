"""Scripted runs on AWS: find the state machine, start a run, follow it to the end.

Thin boto3 helpers behind ``plateseg start|status|wait`` (and usable from scripts):

- :func:`resolve_state_machine_arn` reads the ``StateMachineArn`` output of a deployed
  pipeline stack (``plateseg-<stage>-pipeline``);
- :func:`start_execution` validates the input with :class:`~plateseg.contracts.ExecutionInput`
  before anything is sent, and names the execution after the run id when there is one
  (Step Functions refuses a second execution of a name, so a retried script cannot start
  the same run twice);
- :func:`describe` returns the status with the Distributed Map's item counts
  (``ListMapRuns`` + ``DescribeMapRun``);
- :func:`wait` polls with exponential backoff until the run ends;
- :func:`stop_execution`, :func:`redrive_execution`, :func:`start_retry` (a new execution
  ``<run_id>--retry-<n>``) and :func:`latest_attempt`.

The run lifecycle on AWS (``plateseg start|retry`` and the web) is
:class:`plateseg.runs.stepfunctions.AwsRunner`, built on these helpers; run ids and
execution names follow one rule, :mod:`plateseg.runs.ids`.

AWS errors become typed :mod:`plateseg.errors`: unknown stack/execution →
:class:`~plateseg.errors.NotFoundError`, malformed ARN or missing credentials/region →
:class:`~plateseg.errors.InputError`, a request the execution's state refuses (not
redrivable, name taken, too many executions) → :class:`~plateseg.errors.ResumeError`,
throttling and connection trouble → :class:`~plateseg.errors.TransientError`, a failed run →
:class:`~plateseg.errors.ExecutionFailed`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from plateseg.contracts import ExecutionInput
from plateseg.errors import ExecutionFailed, InputError, NotFoundError, ResumeError, TransientError
from plateseg.runs.ids import execution_name, retry_execution_name

__all__ = [
    "STATE_MACHINE_OUTPUT",
    "TERMINAL_STATUSES",
    "ExecutionStatus",
    "ItemCounts",
    "MapRunStatus",
    "build_input",
    "describe",
    "execution_arn",
    "execution_name",
    "latest_attempt",
    "redrive_execution",
    "resolve_state_machine_arn",
    "retry_execution_name",
    "start_execution",
    "start_retry",
    "stop_execution",
    "wait",
]

#: Output key of the pipeline stack that holds the state machine ARN.
STATE_MACHINE_OUTPUT = "StateMachineArn"

#: Execution statuses after which nothing more happens (PENDING_REDRIVE is not one).
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})

_NOT_FOUND = {
    "ExecutionDoesNotExist",
    "StateMachineDoesNotExist",
    "ResourceNotFound",
    "ResourceNotFoundException",
}
_BAD_REQUEST = {"InvalidArn", "InvalidName", "InvalidExecutionInput", "ValidationException"}
_CONFLICT = {"ExecutionNotRedrivable", "ExecutionAlreadyExists", "ExecutionLimitExceeded"}
_RETRYABLE = {"ThrottlingException", "Throttling", "TooManyRequestsException", "ServiceUnavailable"}
#: ``itemCounts`` keys of DescribeMapRun, in :class:`ItemCounts` field order.
_COUNT_KEYS = "total pending running succeeded failed timedOut aborted resultsWritten".split()  # noqa: SIM905


@dataclass(frozen=True)
class ItemCounts:
    """Counts of one Map Run (items, or child executions) by status; all ``int >= 0``."""

    total: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    aborted: int = 0
    results_written: int = 0

    @classmethod
    def from_api(cls, counts: dict[str, Any] | None) -> ItemCounts:
        """From the ``itemCounts``/``executionCounts`` object of ``DescribeMapRun``."""
        counts = counts or {}
        values = [int(counts.get(key, 0)) for key in _COUNT_KEYS]
        return cls(*values)


@dataclass(frozen=True)
class MapRunStatus:
    """One Distributed Map run: its ARN, status and counts."""

    arn: str
    status: str
    items: ItemCounts
    executions: ItemCounts


@dataclass(frozen=True)
class ExecutionStatus:
    """Where a run stands.

    Attributes
    ----------
    arn, name, status : str
        ``status`` is RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED or PENDING_REDRIVE.
    start_date, stop_date : str
        ISO 8601; ``stop_date`` empty while running.
    error, cause : str
        ASL error name and cause of a failed run (empty otherwise).
    map_runs : list of MapRunStatus
        The Distributed Map runs started so far (one per redrive-free run).
    input : str
        The execution input as JSON text.
    output : str
        The execution output as JSON text (the Aggregate result once it succeeded).
    """

    arn: str
    name: str
    status: str
    start_date: str
    stop_date: str = ""
    error: str = ""
    cause: str = ""
    map_runs: list[MapRunStatus] = field(default_factory=list)
    input: str = ""
    output: str = ""

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``plateseg status --json``)."""
        return asdict(self)


def _client(service: str, client: Any) -> Any:
    if client is not None:
        return client
    import boto3

    return boto3.client(service)


@contextmanager
def _aws_errors(what: str) -> Iterator[None]:
    """Turn botocore exceptions into plateseg's typed errors naming ``what``."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", exc))
        if code in _NOT_FOUND or "does not exist" in message:
            raise NotFoundError(f"{what}: {message}") from None
        if code in _CONFLICT:
            raise ResumeError(f"{what}: {message or code}") from None
        if code in _RETRYABLE:
            raise TransientError(f"{what}: AWS throttled the request ({code}); retry") from None
        if code in _BAD_REQUEST:
            raise InputError(f"{what}: {code}: {message}") from None
        raise InputError(f"{what}: AWS refused the request: {code}: {message}") from None
    except NoCredentialsError:
        raise InputError(f"{what}: no AWS credentials (set AWS_PROFILE or keys)") from None
    except NoRegionError:
        raise InputError(f"{what}: no AWS region (set AWS_REGION or --region)") from None
    except EndpointConnectionError as exc:
        raise TransientError(f"{what}: cannot reach AWS: {exc}") from None
    except BotoCoreError as exc:
        raise InputError(f"{what}: {exc}") from None


def resolve_state_machine_arn(stack_name: str, *, cloudformation: Any = None) -> str:
    """The ``StateMachineArn`` output of a deployed pipeline stack.

    Raises
    ------
    NotFoundError
        If the stack does not exist or has no such output (names the outputs it has).
    """
    client = _client("cloudformation", cloudformation)
    with _aws_errors(f"stack {stack_name!r}"):
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    if not stacks:
        raise NotFoundError(f"stack {stack_name!r} does not exist")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if STATE_MACHINE_OUTPUT not in outputs:
        raise NotFoundError(
            f"stack {stack_name!r} has no output {STATE_MACHINE_OUTPUT!r} "
            f"(outputs: {', '.join(sorted(outputs)) or 'none'}); is it the pipeline stack?"
        )
    return str(outputs[STATE_MACHINE_OUTPUT])


def build_input(
    experiment_id: str, recipe: Any = None, run_id: str | None = None, naming: str | None = None
) -> ExecutionInput:
    """The validated execution input (raises ExecutionInputError/RecipeError naming fields)."""
    from plateseg.runs.base import RunOptions, execution_input

    return execution_input(experiment_id, run_id or None, recipe, RunOptions(naming=naming))


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:aws:states:<region>:<account>:execution:<machine>:<name>`` (else InputError)."""
    parts = state_machine_arn.split(":")
    if len(parts) != 7 or parts[5] != "stateMachine":
        raise InputError(f"{state_machine_arn!r} is not a state machine ARN")
    return ":".join([*parts[:5], "execution", parts[6], name])


def start_execution(
    state_machine_arn: str,
    execution_input: ExecutionInput,
    *,
    stepfunctions: Any = None,
    name: str | None = None,
) -> str:
    """Start one run; returns the execution ARN.

    The execution is named ``name``, else after the run id (else AWS picks a name).

    Raises
    ------
    NotFoundError
        If the state machine does not exist.
    InputError
        If the ARN is malformed or an execution of that name already exists.
    """
    client = _client("stepfunctions", stepfunctions)
    payload = execution_input.model_dump(mode="json", exclude_none=True)
    request: dict[str, Any] = {"stateMachineArn": state_machine_arn, "input": json.dumps(payload)}
    name = name or execution_name(execution_input.run_id)
    if name:
        request["name"] = name
    with _aws_errors(f"state machine {state_machine_arn}"):
        response = client.start_execution(**request)
    return str(response["executionArn"])


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value or "")


def _failure_from_history(client: Any, arn: str) -> tuple[str, str]:
    """Error and cause from the last failure event (when DescribeExecution has none)."""
    events = client.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=20)
    for event in events.get("events", []):
        for key, details in event.items():
            if key.endswith("FailedEventDetails") or key.endswith("AbortedEventDetails"):
                return str(details.get("error", "")), str(details.get("cause", ""))
            if key.endswith("TimedOutEventDetails"):
                return str(details.get("error", "States.Timeout")), str(details.get("cause", ""))
    return "", ""


def describe(execution_arn: str, *, stepfunctions: Any = None) -> ExecutionStatus:
    """Status of one run with the item counts of its Distributed Map runs.

    Raises
    ------
    NotFoundError
        If there is no such execution.
    """
    client = _client("stepfunctions", stepfunctions)
    with _aws_errors(f"execution {execution_arn}"):
        execution = client.describe_execution(executionArn=execution_arn)
        map_runs = []
        paginator = client.get_paginator("list_map_runs")
        for page in paginator.paginate(executionArn=execution_arn):
            for summary in page.get("mapRuns", []):
                run = client.describe_map_run(mapRunArn=summary["mapRunArn"])
                map_runs.append(
                    MapRunStatus(
                        arn=str(run.get("mapRunArn", summary["mapRunArn"])),
                        status=str(run.get("status", "")),
                        items=ItemCounts.from_api(run.get("itemCounts")),
                        executions=ItemCounts.from_api(run.get("executionCounts")),
                    )
                )
        error, cause = str(execution.get("error", "")), str(execution.get("cause", ""))
        status = str(execution["status"])
        if status in TERMINAL_STATUSES - {"SUCCEEDED"} and not error:
            error, cause = _failure_from_history(client, execution_arn)
    return ExecutionStatus(
        arn=str(execution["executionArn"]),
        name=str(execution.get("name", "")),
        status=status,
        start_date=_iso(execution.get("startDate")),
        stop_date=_iso(execution.get("stopDate")),
        error=error,
        cause=cause,
        map_runs=map_runs,
        input=str(execution.get("input") or ""),
        output=str(execution.get("output") or ""),
    )


def stop_execution(arn: str, *, cause: str, stepfunctions: Any = None) -> None:
    """Stop a running execution (``StopExecution`` with error ``Cancelled``)."""
    client = _client("stepfunctions", stepfunctions)
    with _aws_errors(f"execution {arn}"):
        client.stop_execution(executionArn=arn, error="Cancelled", cause=cause)


def redrive_execution(arn: str, *, stepfunctions: Any = None) -> None:
    """``RedriveExecution``: failed Map items run again; ResumeError if not redrivable."""
    client = _client("stepfunctions", stepfunctions)
    with _aws_errors(f"execution {arn}"):
        client.redrive_execution(executionArn=arn)


def latest_attempt(
    state_machine_arn: str, run_id: str, *, stepfunctions: Any = None
) -> tuple[int, ExecutionStatus]:
    """A run's newest execution: ``(0, first)`` or ``(n, retry n)``; NotFoundError if none."""
    client = _client("stepfunctions", stepfunctions)
    attempt = 0
    while True:
        probe = execution_arn(state_machine_arn, retry_execution_name(run_id, attempt + 1))
        try:
            with _aws_errors(f"execution {probe}"):
                client.describe_execution(executionArn=probe)
        except NotFoundError:
            break
        attempt += 1
    name = retry_execution_name(run_id, attempt) if attempt else execution_name(run_id) or run_id
    return attempt, describe(execution_arn(state_machine_arn, name), stepfunctions=client)


def start_retry(state_machine_arn: str, run_id: str, *, stepfunctions: Any = None) -> str:
    """Start the next retry of a finished run; returns the new execution ARN.

    A new execution ``<run_id>--retry-<n>`` with the input of the run's newest execution
    and ``run_id`` set: Segment reuses every batch that fully succeeded before, segments
    the rest, and Aggregate rewrites the run. NotFoundError if the run has no execution,
    ResumeError while its newest execution is still running.
    """
    client = _client("stepfunctions", stepfunctions)
    attempt, latest = latest_attempt(state_machine_arn, run_id, stepfunctions=client)
    if not latest.done:
        raise ResumeError(
            f"run {run_id!r} is still {latest.status.lower()} ({latest.name}): "
            "retry it when it ends"
        )
    data = json.loads(latest.input or "{}")
    data["run_id"] = data.get("run_id") or run_id
    name = retry_execution_name(run_id, attempt + 1)
    return start_execution(
        state_machine_arn, ExecutionInput.parse(data), stepfunctions=client, name=name
    )


def wait(
    execution_arn: str,
    *,
    stepfunctions: Any = None,
    interval: float = 5.0,
    max_interval: float = 60.0,
    backoff: float = 1.5,
    timeout: float | None = None,
    sleep: Callable[[float], None] | None = None,
    on_poll: Callable[[ExecutionStatus], None] | None = None,
) -> ExecutionStatus:
    """Poll until the run ends; return its final status if it succeeded.

    Parameters
    ----------
    interval, max_interval, backoff : float
        First wait in seconds, its cap, and the factor it grows by after each poll.
    timeout : float, optional
        Give up after this many seconds of waiting (the run keeps going).
    sleep, on_poll : callable, optional
        Injected for tests (``time.sleep`` by default) and progress display.

    Raises
    ------
    ExecutionFailed
        If the run FAILED, TIMED_OUT or was ABORTED (with its error and cause).
    TransientError
        If ``timeout`` passed first.
    """
    if interval <= 0 or backoff < 1 or max_interval < interval:
        raise InputError(
            f"wait: need interval > 0 ({interval}), backoff >= 1 ({backoff}) and "
            f"max_interval >= interval ({max_interval})"
        )
    waited = 0.0
    delay = interval
    while True:
        status = describe(execution_arn, stepfunctions=stepfunctions)
        if on_poll is not None:
            on_poll(status)
        if status.status == "SUCCEEDED":
            return status
        if status.done:
            raise ExecutionFailed(
                status.error or status.status, status.cause or status.status.lower(), execution_arn
            )
        if timeout is not None and waited + delay > timeout:
            raise TransientError(
                f"execution {execution_arn} still {status.status} after {waited:.0f} s; "
                "it keeps running - wait again later"
            )
        (sleep or time.sleep)(delay)
        waited += delay
        delay = min(delay * backoff, max_interval)
