"""The :class:`~plateseg.web.backends.Backend` on AWS Step Functions (``engine="aws"``).

It makes no Step Functions call of its own: it uses the helpers of :mod:`plateseg.aws`
(the ones behind ``plateseg start|status|wait|retry``); a finished run is read back from
the results database as for the local engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from plateseg.errors import NotFoundError, ResumeError
from plateseg.map_settings import MapSettings
from plateseg.planning import estimate_run
from plateseg.settings import Settings
from plateseg.web.backends import Estimate, default_database, has_failures
from plateseg.web.config import WebSettings
from plateseg.web.runs import TERMINAL, RunProgress, with_timing

__all__ = ["AwsBackend"]


class AwsBackend:
    """Runs on AWS Step Functions (``engine="aws"``), through :mod:`plateseg.aws`.

    A run id is the name of its first execution; retries are ``<run_id>--retry-<n>``
    and :meth:`progress` follows the newest one.
    """

    engine = "aws"

    def __init__(
        self,
        settings: Settings,
        config: WebSettings,
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

    def execution_arn(self, run_id: str) -> str:
        """``arn:aws:states:<region>:<account>:execution:<machine>:<run_id>``."""
        from plateseg.aws import execution_arn, execution_name

        return execution_arn(self.config.state_machine_arn, execution_name(run_id) or run_id)

    def start(
        self, experiment_id: str, run_id: str, recipe: dict[str, Any], who: str = ""
    ) -> RunProgress:
        from plateseg.aws import build_input, start_execution

        execution_input = build_input(experiment_id, recipe, run_id)
        start_execution(self.config.state_machine_arn, execution_input, stepfunctions=self.client)
        return RunProgress(
            run_id=run_id, experiment_id=experiment_id, engine="aws", can_cancel=True
        )

    def progress(self, run_id: str) -> RunProgress:
        from plateseg.aws import latest_attempt

        _attempt, described = latest_attempt(
            self.config.state_machine_arn, run_id, stepfunctions=self.client
        )
        return self._progress(run_id, described)

    def _progress(self, run_id: str, described: Any) -> RunProgress:
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

    def cancel(self, run_id: str) -> RunProgress:
        from plateseg.aws import latest_attempt, stop_execution

        _attempt, described = latest_attempt(
            self.config.state_machine_arn, run_id, stepfunctions=self.client
        )
        stop_execution(
            described.arn, cause="cancelled from the plateseg web UI", stepfunctions=self.client
        )
        return self.progress(run_id)

    def supports_redrive(self) -> bool:
        return True

    def redrive(self, run_id: str) -> RunProgress:
        from plateseg.aws import latest_attempt, redrive_execution

        _attempt, described = latest_attempt(
            self.config.state_machine_arn, run_id, stepfunctions=self.client
        )
        redrive_execution(described.arn, stepfunctions=self.client)
        return self.progress(run_id)

    def retry(self, run_id: str) -> RunProgress:
        """Start ``<run_id>--retry-<n>`` (:func:`plateseg.aws.start_retry`); its snapshot.

        Raises
        ------
        ResumeError
            The run's newest execution is still running, or nothing failed.
        """
        from plateseg.aws import describe, start_retry

        if not self.progress(run_id).can_retry:
            raise ResumeError(
                f"run {run_id!r} has nothing to retry: it is running, or no image or batch failed"
            )
        arn = start_retry(self.config.state_machine_arn, run_id, stepfunctions=self.client)
        return self._progress(run_id, describe(arn, stepfunctions=self.client))

    def estimate(self, fields: int, seconds_per_field: float) -> Estimate:
        """The planning model's AWS wall time and list-price cost (prices in one place:
        :mod:`plateseg.planning.prices`) at the deployed Map settings
        (``PLATESEG_RUN_SETTINGS``, set by the web stack), else the defaults."""
        run = (
            MapSettings.model_validate_json(self.config.run_settings)
            if self.config.run_settings
            else MapSettings()
        )
        predicted = estimate_run(
            fields,
            seconds_per_field,
            engine="aws",
            settings=run,
        )
        return Estimate(fields, predicted.wall_seconds, predicted.cost_usd, predicted.basis)


def _when(value: str) -> datetime | None:
    """An ISO 8601 date of :class:`plateseg.aws.ExecutionStatus` (empty: ``None``)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
