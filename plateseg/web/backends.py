"""Where runs execute: the local engine (background threads) or AWS Step Functions.

The routers only see :class:`Backend`: ``start``, ``progress``, ``cancel``, ``redrive``
and ``estimate``. :class:`AwsBackend` keeps every Step Functions call of the web app in
this one module (StartExecution, DescribeExecution, ListMapRuns/DescribeMapRun,
StopExecution, RedriveExecution) so it can be swapped for :mod:`plateseg.aws` helpers.
A finished run that this process did not start is read back from the results database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from plateseg.errors import NotFoundError, ResumeError, TransientError
from plateseg.settings import Settings
from plateseg.web.config import WebSettings
from plateseg.web.runs import TERMINAL, RunManager, RunProgress, with_timing

__all__ = ["AwsBackend", "Backend", "Estimate", "LocalBackend", "make_backend"]


@dataclass(frozen=True)
class Estimate:
    """Estimated wall time (local) or cost (AWS) of segmenting ``fields`` fields."""

    fields: int
    seconds: float
    cost_usd: float | None
    basis: str


class Backend(Protocol):
    engine: str

    def start(self, experiment_id: str, run_id: str, recipe: dict[str, Any]) -> RunProgress: ...
    def progress(self, run_id: str) -> RunProgress: ...
    def cancel(self, run_id: str) -> RunProgress: ...
    def redrive(self, run_id: str) -> RunProgress: ...
    def estimate(self, fields: int, seconds_per_field: float) -> Estimate: ...
    def supports_redrive(self) -> bool: ...


class LocalBackend:
    """Runs on this machine through :class:`RunManager`."""

    engine = "local"

    def __init__(
        self,
        settings: Settings,
        manager: RunManager | None = None,
        database: Callable[[], sa.Engine] | None = None,
    ) -> None:
        self.settings = settings
        self.manager = manager or RunManager(settings)
        self.database = database or _default_database(settings)

    def start(self, experiment_id: str, run_id: str, recipe: dict[str, Any]) -> RunProgress:
        return self.manager.start(experiment_id, run_id, recipe)

    def progress(self, run_id: str) -> RunProgress:
        try:
            progress = self.manager.get(run_id)
        except NotFoundError:
            progress = recorded_progress(self.database(), run_id, "local")
        return replace(progress, can_redrive=progress.can_redrive and self.supports_redrive())

    def cancel(self, run_id: str) -> RunProgress:
        return self.manager.cancel(run_id)

    def supports_redrive(self) -> bool:
        import plateseg.runner as runner

        return hasattr(runner, "redrive_local")

    def redrive(self, run_id: str) -> RunProgress:
        import plateseg.runner as runner

        redrive_local = getattr(runner, "redrive_local", None)
        if redrive_local is None:
            raise ResumeError(
                "retrying failed images needs redrive, which this local engine does not offer "
                "yet (plateseg.runner.redrive_local)"
            )
        progress = self.progress(run_id)
        if progress.status not in TERMINAL:
            raise ResumeError(f"run {run_id!r} is still {progress.status.lower()}")
        if not progress.can_redrive:
            raise ResumeError(
                f"run {run_id!r} has nothing to redrive: no Map item failed (images that were "
                "unreadable stay failed until the files are replaced; start a new run then)"
            )
        # a cancelled run continues where it stopped; a failed one re-runs its failed items
        again = getattr(runner, "resume_local", None) if progress.status == "ABORTED" else None
        again = again or redrive_local
        return self.manager.start(
            progress.experiment_id,
            run_id,
            {},
            runner=lambda _exp, recipe=None, run_id=run_id, **kw: again(run_id, **kw),
        )

    def estimate(self, fields: int, seconds_per_field: float) -> Estimate:
        workers = self.settings.worker_count
        seconds = fields * seconds_per_field / workers + 3.0  # + pool start, lookup, aggregate
        return Estimate(fields, seconds, None, f"{workers} local worker processes")


def _default_database(settings: Settings) -> Callable[[], sa.Engine]:
    def database() -> sa.Engine:
        from plateseg.db import get_engine

        return get_engine(settings.resolved_database_url)

    return database


def recorded_progress(database: sa.Engine, run_id: str, engine: str) -> RunProgress:
    """A finished run read back from the results database (not started by this process)."""
    from plateseg.results import get_run

    run = get_run(database, run_id)
    total = run.images_ok + run.images_failed
    return RunProgress(
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        engine=run.engine or engine,
        status="SUCCEEDED" if run.status.startswith("SUCCEEDED") else run.status,
        phase="done",
        total=total,
        succeeded=run.images_ok,
        failed=run.images_failed,
        started_at=run.started_at or run.finished_at,
        finished_at=run.finished_at,
        elapsed_seconds=(run.finished_at - (run.started_at or run.finished_at)).total_seconds(),
        can_redrive=run.batches_failed > 0 or run.status in ("FAILED", "ABORTED"),
    )


class AwsBackend:
    """Runs on AWS Step Functions (``engine="aws"``)."""

    engine = "aws"

    def __init__(self, settings: Settings, config: WebSettings, client: Any = None) -> None:
        if not config.state_machine_arn.startswith("arn:"):
            raise NotFoundError(
                "PLATESEG_ENGINE=aws needs PLATESEG_STATE_MACHINE_ARN (the segmentation "
                "state machine's ARN)"
            )
        self.settings = settings
        self.config = config
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            region = self.config.state_machine_arn.split(":")[3]
            self._client = boto3.client("stepfunctions", region_name=region)
        return self._client

    def execution_arn(self, run_id: str) -> str:
        """``arn:aws:states:<region>:<account>:execution:<machine>:<run_id>``."""
        parts = self.config.state_machine_arn.split(":")
        return ":".join([*parts[:5], "execution", parts[6], run_id])

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result: dict[str, Any] = getattr(self.client, operation)(**kwargs)
            return result
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", "")
            if code in ("ExecutionDoesNotExist", "StateMachineDoesNotExist", "ResourceNotFound"):
                raise NotFoundError(f"Step Functions: {message or code}") from None
            if code in (
                "ExecutionNotRedrivable",
                "ExecutionAlreadyExists",
                "ExecutionLimitExceeded",
            ):
                raise ResumeError(f"Step Functions {operation}: {message or code}") from None
            raise TransientError(f"Step Functions {operation} failed: {code}") from None
        except BotoCoreError as exc:
            raise TransientError(
                f"Step Functions {operation} failed: {type(exc).__name__}"
            ) from None

    def start(self, experiment_id: str, run_id: str, recipe: dict[str, Any]) -> RunProgress:
        payload = {"experiment_id": experiment_id, "run_id": run_id, "recipe": recipe}
        self._call(
            "start_execution",
            stateMachineArn=self.config.state_machine_arn,
            name=run_id,
            input=json.dumps(payload),
        )
        return RunProgress(
            run_id=run_id, experiment_id=experiment_id, engine="aws", can_cancel=True
        )

    def progress(self, run_id: str) -> RunProgress:
        described = self._call("describe_execution", executionArn=self.execution_arn(run_id))
        status = str(described.get("status", "RUNNING"))
        status = "ABORTED" if status in ("ABORTED", "TIMED_OUT") else status
        try:
            experiment = json.loads(described.get("input") or "{}").get("experiment_id", "")
        except json.JSONDecodeError:
            experiment = ""
        started = described.get("startDate") or datetime.now(UTC)
        progress = RunProgress(
            run_id=run_id,
            experiment_id=str(experiment),
            engine="aws",
            status=status if status in TERMINAL else "RUNNING",
            phase="done" if status == "SUCCEEDED" else status.lower(),
            started_at=started,
            finished_at=described.get("stopDate"),
            error=described.get("error"),
            cause=described.get("cause"),
            can_cancel=status == "RUNNING",
        )
        counts = self._map_counts(self.execution_arn(run_id))
        if counts:
            progress = replace(progress, **counts)
        progress = replace(
            progress, can_redrive=progress.status in TERMINAL and progress.failed > 0
        )
        map_start = None
        if progress.total and progress.succeeded + progress.failed:
            elapsed = (progress.finished_at or datetime.now(UTC)) - started
            map_start = -max(elapsed.total_seconds(), 1e-3)
        return with_timing(progress, map_start, 0.0)

    def _map_counts(self, execution_arn: str) -> dict[str, Any]:
        try:
            runs = self._call("list_map_runs", executionArn=execution_arn).get("mapRuns", [])
        except (TransientError, NotFoundError):
            return {}
        if not runs:
            return {}
        described = self._call("describe_map_run", mapRunArn=runs[0]["mapRunArn"])
        counts = described.get("itemCounts", {})
        keys = ("pending", "running", "succeeded", "failed", "aborted", "total")
        return {key: int(counts.get(key, 0)) for key in keys}

    def cancel(self, run_id: str) -> RunProgress:
        self._call(
            "stop_execution",
            executionArn=self.execution_arn(run_id),
            error="Cancelled",
            cause="cancelled from the plateseg web UI",
        )
        return self.progress(run_id)

    def supports_redrive(self) -> bool:
        return True

    def redrive(self, run_id: str) -> RunProgress:
        self._call("redrive_execution", executionArn=self.execution_arn(run_id))
        return self.progress(run_id)

    def estimate(self, fields: int, seconds_per_field: float) -> Estimate:
        compute = fields * seconds_per_field * self.config.lambda_memory_gb
        transitions = 20 + 3 * fields  # outer states + per-item child states (upper bound)
        cost = (
            compute * self.config.lambda_gb_second_usd
            + transitions * self.config.state_transition_usd
        )
        seconds = max(seconds_per_field * 10, 30.0)
        basis = (
            f"Lambda {self.config.lambda_memory_gb:g} GB at "
            f"${self.config.lambda_gb_second_usd:.7f}/GB-s"
        )
        return Estimate(fields, seconds, cost, basis)


def make_backend(
    settings: Settings, config: WebSettings, database: Callable[[], sa.Engine] | None = None
) -> Backend:
    """The backend the settings name (``PLATESEG_ENGINE``); ``database`` opens the results DB."""
    if config.engine == "aws":
        return AwsBackend(settings, config)
    return LocalBackend(settings, database=database)
