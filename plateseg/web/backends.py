"""Where runs execute: the local engine (background threads) or AWS Step Functions.

The routers only see :class:`Backend`: ``start``, ``progress``, ``cancel``, ``redrive``,
``retry`` and ``estimate``. :class:`AwsBackend` makes no Step Functions call of its own:
it uses the helpers of :mod:`plateseg.aws` (the ones behind ``plateseg start|status|
wait|retry``). A finished run that this process did not start is read back from the
results database.

*Retry* runs a finished run again as a new execution of the same run id
(:func:`plateseg.runner.retry_local`, :func:`plateseg.aws.start_retry`): batches that
fully succeeded are reused from their checkpoints, everything else is segmented again,
and Aggregate rewrites the run. Unlike redrive it also retries images that failed
inside a succeeded batch (a corrupt file replaced since).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from plateseg.contracts import RunSettings
from plateseg.definition import packaged_run_settings
from plateseg.errors import NotFoundError, ResumeError
from plateseg.planning import estimate_run
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

    def start(
        self, experiment_id: str, run_id: str, recipe: dict[str, Any], who: str = ""
    ) -> RunProgress: ...
    def progress(self, run_id: str) -> RunProgress: ...
    def cancel(self, run_id: str) -> RunProgress: ...
    def redrive(self, run_id: str) -> RunProgress: ...
    def retry(self, run_id: str) -> RunProgress: ...
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

    def start(
        self, experiment_id: str, run_id: str, recipe: dict[str, Any], who: str = ""
    ) -> RunProgress:
        return self.manager.start(experiment_id, run_id, recipe)

    def resume(
        self, experiment_id: str, run_id: str, recipe: dict[str, Any], kind: str = "start"
    ) -> RunProgress:
        """Continue a run (``kind``: its start, redrive or retry) this server was running
        when it stopped.

        From its journal (:func:`plateseg.runner.resume_local`: finished states and
        batches are not run again) when the engine had begun it: the run's own journal,
        or for a retry that of its newest retry execution. A start the engine had not
        begun (no journal yet, or one that records no execution) starts from the
        beginning. A journal that records an ended execution (it ended before the server
        stopped, or a redrive or retry had not begun) starts nothing: the run's
        snapshot is returned.

        Raises
        ------
        ResumeError
            The journal cannot be read.
        """
        from plateseg.runner import journal_path, resume_local

        name = _newest_retry(self.settings.home / "runs", run_id) if kind == "retry" else run_id
        recorded = _journaled(journal_path(name, self.settings))
        if recorded is None and kind == "start":
            return self.manager.start(experiment_id, run_id, recipe)
        if recorded is None or recorded["status"] != "RUNNING":
            return self.progress(run_id)

        def resuming(
            _experiment_id: str,
            *,
            settings: Settings,
            listener: Callable[..., None],
            cancel: threading.Event,
            **_: Any,
        ) -> Any:
            return resume_local(name, settings=settings, listener=listener, cancel=cancel)

        return self.manager.start(experiment_id, run_id, {}, runner=resuming)

    def progress(self, run_id: str) -> RunProgress:
        """This server's snapshot, else the results database's record, else how the
        run's journal says it ended (a run that failed before Aggregate wrote it)."""
        try:
            progress = self.manager.get(run_id)
        except NotFoundError:
            try:
                progress = recorded_progress(self.database(), run_id, "local")
            except NotFoundError:
                progress = self._journaled_progress(run_id)
        return replace(progress, can_redrive=progress.can_redrive and self.supports_redrive())

    def _journaled_progress(self, run_id: str) -> RunProgress:
        """How a run's journal says it ended; :class:`NotFoundError` if it did not."""
        from plateseg.runner import journal_path

        missing = NotFoundError(f"run {run_id!r} is not known to this server")
        try:
            path = journal_path(run_id, self.settings)
            recorded = _journaled(path)
        except ResumeError:  # not a local run id, or an unreadable journal
            raise missing from None
        if recorded is None or recorded["status"] not in ("FAILED", "ABORTED", "TIMED_OUT"):
            raise missing
        status = "FAILED" if recorded["status"] == "FAILED" else "ABORTED"
        ended = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        return RunProgress(
            run_id=run_id,
            experiment_id=str(recorded["input"].get("experiment_id", "")),
            engine="local",
            status=status,
            phase=status.lower(),
            started_at=ended,
            finished_at=ended,
            error=recorded["error"],
            cause=recorded["cause"],
            can_redrive=True,
            can_retry=True,
        )

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

    def retry(self, run_id: str) -> RunProgress:
        """Start a retry of a finished run in the background; its first snapshot.

        Raises
        ------
        ResumeError
            The run is still running, nothing failed, or it has no local journal.
        """
        from plateseg.runner import journal_path, retry_local

        progress = self.progress(run_id)
        if progress.status not in TERMINAL:
            raise ResumeError(f"run {run_id!r} is still {progress.status.lower()}")
        if not progress.can_retry:
            raise ResumeError(f"run {run_id!r} has nothing to retry: no image or batch failed")
        if not journal_path(run_id, self.settings).exists():
            raise ResumeError(
                f"run {run_id!r} was not run on this machine (no journal in "
                f"{self.settings.home / 'runs'}): start a new run instead"
            )
        return self.manager.start(
            progress.experiment_id,
            run_id,
            {},
            runner=lambda _exp, recipe=None, run_id=run_id, **kw: retry_local(run_id, **kw),
        )

    def estimate(self, fields: int, seconds_per_field: float) -> Estimate:
        """The planning model's local wall time, at the definition's batch size."""
        run = packaged_run_settings()
        predicted = estimate_run(
            fields,
            seconds_per_field,
            engine="local",
            batch_size=run.items_per_batch,
            max_concurrency=run.max_concurrency,
            workers=self.settings.worker_count,
        )
        return Estimate(fields, predicted.wall_seconds, None, predicted.basis)


def _newest_retry(runs: Path, run_id: str) -> str:
    """The execution name of the newest retry of ``run_id`` (``run_id`` when none)."""
    from plateseg.aws import retry_execution_name

    prefix = retry_execution_name(run_id, 0).removesuffix("0")
    numbers = [0]
    if runs.is_dir():
        for folder in runs.iterdir():
            tail = folder.name.removeprefix(prefix)
            if folder.name.startswith(prefix) and tail.isdigit():
                numbers.append(int(tail))
    newest = max(numbers)
    return retry_execution_name(run_id, newest) if newest else run_id


def _journaled(path: Path) -> dict[str, Any] | None:
    """The execution a local run's journal records; ``None`` when the engine has not
    begun it (no journal, or none recorded).

    Raises
    ------
    ResumeError
        The journal cannot be read (damaged file).
    """
    from plateseg.engine import Journal

    if not path.exists():
        return None
    try:
        journal = Journal(path)
        try:
            return journal.execution()
        finally:
            journal.close()
    except (sqlite3.Error, ValueError) as exc:
        raise ResumeError(f"the journal {path} cannot be read: {exc}") from exc


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
        can_retry=_has_failures(run),
    )


def _has_failures(run: Any) -> bool:
    """Whether a recorded run has anything a retry would run again."""
    failed = run.images_failed > 0 or run.batches_failed > 0
    return bool(failed or run.status in ("FAILED", "ABORTED"))


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
        self.database = database or _default_database(settings)

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
            return _has_failures(get_run(self.database(), run_id))
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
        (``PLATESEG_RUN_SETTINGS``, set by the web stack), else the definition's."""
        run = (
            RunSettings.model_validate_json(self.config.run_settings)
            if self.config.run_settings
            else packaged_run_settings()
        )
        predicted = estimate_run(
            fields,
            seconds_per_field,
            engine="aws",
            batch_size=run.items_per_batch,
            max_concurrency=run.max_concurrency,
            memory_mb=run.segment_memory_mb,
        )
        return Estimate(fields, predicted.wall_seconds, predicted.cost_usd, predicted.basis)


def make_backend(
    settings: Settings, config: WebSettings, database: Callable[[], sa.Engine] | None = None
) -> Backend:
    """The backend the settings name (``PLATESEG_ENGINE``); ``database`` opens the results DB."""
    if config.engine == "aws":
        return AwsBackend(settings, config, database=database)
    return LocalBackend(settings, database=database)


def _when(value: str) -> datetime | None:
    """An ISO 8601 date of :class:`plateseg.aws.ExecutionStatus` (empty: ``None``)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
