"""Where runs execute: the local engine (background threads) or AWS Step Functions.

The routers only see :class:`Backend`: ``start``, ``progress``, ``cancel``, ``redrive``,
``retry`` and ``estimate``: :class:`LocalBackend` here, the Step Functions one in
:mod:`plateseg.web.aws_backend`. A finished run that this process did not start is read
back from the results database.

*Retry* runs a finished run again as a new execution of the same run id
(:func:`plateseg.runner.retry_local`, :func:`plateseg.aws.start_retry`): batches that
fully succeeded are reused from their checkpoints, everything else is segmented again,
and Aggregate rewrites the run. Unlike redrive it also retries images that failed
inside a succeeded batch (a corrupt file replaced since).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from plateseg.errors import NotFoundError, ResumeError
from plateseg.map_settings import MapSettings
from plateseg.planning import estimate_run
from plateseg.settings import Settings
from plateseg.web.config import WebSettings
from plateseg.web.runs import TERMINAL, RunManager, RunProgress

__all__ = [
    "Backend",
    "Estimate",
    "LocalBackend",
    "default_database",
    "has_failures",
    "make_backend",
    "recorded_progress",
]


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
        self.database = database or default_database(settings)

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
        """The planning model's local wall time, at the default Map settings."""
        predicted = estimate_run(
            fields,
            seconds_per_field,
            engine="local",
            settings=MapSettings(),
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


def default_database(settings: Settings) -> Callable[[], sa.Engine]:
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
        can_retry=has_failures(run),
    )


def has_failures(run: Any) -> bool:
    """Whether a recorded run has anything a retry would run again."""
    failed = run.images_failed > 0 or run.batches_failed > 0
    return bool(failed or run.status in ("FAILED", "ABORTED"))


def make_backend(
    settings: Settings, config: WebSettings, database: Callable[[], sa.Engine] | None = None
) -> Backend:
    """The backend the settings name (``PLATESEG_ENGINE``); ``database`` opens the results DB."""
    if config.engine == "aws":
        from plateseg.web.aws_backend import AwsBackend  # it builds on this module

        return AwsBackend(settings, config, database=database)
    return LocalBackend(settings, database=database)
