"""The :class:`~plateseg.runs.base.Runner` on AWS Step Functions (``engine="aws"``).

It makes no Step Functions call of its own: it uses the helpers of :mod:`plateseg.runs.aws_api`.
A run id is the name of its first execution; retries are ``<run_id>--retry-<n>``
(:mod:`plateseg.runs.ids`) and :meth:`AwsRunner.progress` follows the newest one. The
Map settings are the deployment's (``cdk.json``): a start that asks for others is
refused, naming them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from plateseg.contracts import AggregateResult, Recipe
from plateseg.errors import InputError, NotFoundError
from plateseg.map_settings import MapSettings
from plateseg.planning import estimate_run
from plateseg.runs import aws_api as aws
from plateseg.runs.base import Engine, Estimate, Kind, RunOptions, execution_input
from plateseg.runs.ids import execution_name
from plateseg.runs.local import default_database, has_failures
from plateseg.runs.progress import TERMINAL, RunProgress, with_timing
from plateseg.settings import Settings

__all__ = ["AwsRunner", "StateMachineConfig"]


class StateMachineConfig(Protocol):
    """Which state machine runs run: its ARN, and the Map settings it was deployed with
    (JSON of :class:`MapSettings`; empty: unknown, the defaults are assumed)."""

    @property
    def state_machine_arn(self) -> str: ...
    @property
    def run_settings(self) -> str: ...


class AwsRunner:
    """Runs on AWS Step Functions, through :mod:`plateseg.runs.aws_api`."""

    engine: Engine = "aws"

    def __init__(
        self,
        settings: Settings,
        config: StateMachineConfig,
        client: Any = None,
        database: Callable[[], sa.Engine] | None = None,
    ) -> None:
        if not config.state_machine_arn.startswith("arn:"):
            raise NotFoundError(
                "PLATESEG_ENGINE=aws needs PLATESEG_STATE_MACHINE_ARN (the segmentation "
                "state machine's ARN)"
            )
        self.settings = settings
        self.config = config
        self._client = client
        self.database = database or default_database(settings)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            region = self.config.state_machine_arn.split(":")[3]
            self._client = boto3.client("stepfunctions", region_name=region)
        return self._client

    @property
    def map_settings(self) -> MapSettings:
        """The deployment's Map settings (``PLATESEG_RUN_SETTINGS``), else the defaults."""
        if self.config.run_settings:
            return MapSettings.model_validate_json(self.config.run_settings)
        return MapSettings()

    def execution_arn(self, run_id: str) -> str:
        """``arn:aws:states:<region>:<account>:execution:<machine>:<run_id>``."""
        return aws.execution_arn(self.config.state_machine_arn, execution_name(run_id) or run_id)

    # --- commands ---------------------------------------------------------------------

    def start(
        self,
        experiment_id: str,
        run_id: str | None,
        recipe: Recipe | Mapping[str, Any] | None = None,
        *,
        options: RunOptions | None = None,
        who: str = "",
    ) -> RunProgress:
        """Start an execution named after the run id (AWS names it when there is none).

        Raises
        ------
        InputError
            Bad input, or Map settings other than the deployment's.
        """
        options = options or RunOptions()
        checked = execution_input(experiment_id, run_id, recipe, options)
        if options.map_settings_given:
            deployed = self.map_settings
            wanted = options.map_settings(deployed)
            if wanted != deployed:
                raise InputError(
                    "on AWS the Map settings are the deployment's (cdk.json): batch size "
                    f"{deployed.items_per_batch}, concurrency {deployed.max_concurrency}; "
                    f"asked for {wanted.items_per_batch} and {wanted.max_concurrency}"
                )
        arn = aws.start_execution(self.config.state_machine_arn, checked, stepfunctions=self.client)
        return RunProgress(
            run_id=run_id or arn.rsplit(":", 1)[-1],
            experiment_id=checked.experiment_id,
            engine="aws",
            can_cancel=True,
            execution_arn=arn,
        )

    def cancel(self, run_id: str) -> RunProgress:
        _attempt, described = self._latest(run_id)
        aws.stop_execution(described.arn, cause="cancelled by plateseg", stepfunctions=self.client)
        return self.progress(run_id)

    def resume(
        self, run_id: str, kind: Kind = "start", *, interrupted_only: bool = False
    ) -> RunProgress | None:
        """Step Functions keeps running executions on its own: the run's snapshot."""
        return self.progress(run_id)

    def redrive(self, run_id: str) -> RunProgress:
        _attempt, described = self._latest(run_id)
        aws.redrive_execution(described.arn, stepfunctions=self.client)
        return self.progress(run_id)

    def retry(self, run_id: str) -> RunProgress:
        """Start ``<run_id>--retry-<n>`` (:func:`plateseg.runs.aws_api.start_retry`); its snapshot.

        Raises
        ------
        ResumeError
            The run's newest execution is still running.
        """
        arn = aws.start_retry(self.config.state_machine_arn, run_id, stepfunctions=self.client)
        return self._progress(run_id, aws.describe(arn, stepfunctions=self.client))

    def wait(self, run_id: str, timeout: float | None = None) -> AggregateResult:
        """Poll the run's newest execution until it ends (:func:`plateseg.runs.aws_api.wait`)."""
        _attempt, described = self._latest(run_id)
        final = aws.wait(described.arn, stepfunctions=self.client, timeout=timeout)
        return AggregateResult.model_validate_json(final.output)

    # --- queries ----------------------------------------------------------------------

    def _latest(self, run_id: str) -> tuple[int, aws.ExecutionStatus]:
        return aws.latest_attempt(self.config.state_machine_arn, run_id, stepfunctions=self.client)

    def progress(self, run_id: str) -> RunProgress:
        _attempt, described = self._latest(run_id)
        return self._progress(run_id, described)

    def _progress(self, run_id: str, described: aws.ExecutionStatus) -> RunProgress:
        status = "ABORTED" if described.status in ("ABORTED", "TIMED_OUT") else described.status
        try:
            experiment = json.loads(described.input or "{}").get("experiment_id", "")
        except json.JSONDecodeError:
            experiment = ""
        started = _when(described.start_date) or datetime.now(UTC)
        progress = RunProgress(
            run_id=run_id,
            experiment_id=str(experiment),
            engine="aws",
            status=status if status in TERMINAL else "RUNNING",
            phase="done" if status == "SUCCEEDED" else status.lower(),
            started_at=started,
            finished_at=_when(described.stop_date),
            error=described.error or None,
            cause=described.cause or None,
            can_cancel=status == "RUNNING",
            execution_arn=described.arn,
        )
        if described.map_runs:
            items = described.map_runs[0].items
            progress = replace(
                progress,
                pending=items.pending,
                running=items.running,
                succeeded=items.succeeded,
                failed=items.failed,
                aborted=items.aborted,
                total=items.total,
            )
        finished = progress.status in TERMINAL
        progress = replace(
            progress,
            can_redrive=finished and progress.failed > 0,
            can_retry=finished and (progress.status != "SUCCEEDED" or self._failed(run_id)),
        )
        map_start = None
        if progress.total and progress.succeeded + progress.failed:
            elapsed = (progress.finished_at or datetime.now(UTC)) - started
            map_start = -max(elapsed.total_seconds(), 1e-3)
        return with_timing(progress, map_start, 0.0)

    def _failed(self, run_id: str) -> bool:
        """Whether the results database records failures for the run (per-image errors
        inside succeeded batches are invisible to the Map Run's counters)."""
        from plateseg.results import get_run

        try:
            return has_failures(get_run(self.database(), run_id))
        except NotFoundError:
            return False

    def followed(self) -> list[RunProgress]:
        """None: Step Functions lists executions; this process follows none itself."""
        return []

    def supports_redrive(self) -> bool:
        return True

    def estimate(self, fields: int, seconds_per_field: float) -> Estimate:
        """The planning model's AWS wall time and list-price cost (prices in one place:
        :mod:`plateseg.planning.prices`) at the deployed Map settings."""
        predicted = estimate_run(
            fields, seconds_per_field, engine="aws", settings=self.map_settings
        )
        return Estimate(fields, predicted.wall_seconds, predicted.cost_usd, predicted.basis)


def _when(value: str) -> datetime | None:
    """An ISO 8601 date of :class:`plateseg.runs.aws_api.ExecutionStatus` (empty: ``None``)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
