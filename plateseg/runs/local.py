"""The :class:`~plateseg.runs.base.Runner` of the local engine.

Runs execute :mod:`plateseg.runs.embedded` (the state machine on this machine, journaled)
through a :class:`~plateseg.runs.manager.RunManager`. A finished run that this process
did not start is read back from the results database, or from its journal when it
failed before Aggregate wrote it.

*Retry* runs a finished run again as a new execution of the same run id
(:func:`plateseg.runs.embedded.retry_local`): batches that fully succeeded are reused from
their checkpoints, everything else is segmented again, and Aggregate rewrites the run.
Unlike redrive it also retries images that failed inside a succeeded batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from plateseg.contracts import AggregateResult, Recipe
from plateseg.engine import Event
from plateseg.errors import NotFoundError, ResumeError
from plateseg.map_settings import DEFAULTS, MapSettings
from plateseg.planning import estimate_run
from plateseg.runs import embedded as engine_runs
from plateseg.runs.base import Engine, Estimate, Kind, RunOptions, execution_input
from plateseg.runs.ids import base_run_id, new_run_id, retry_execution_name, retry_number
from plateseg.runs.manager import RunFunction, RunManager
from plateseg.runs.progress import RunProgress
from plateseg.settings import Settings

__all__ = ["LocalRunner", "default_database", "has_failures", "recorded_progress"]


class LocalRunner:
    """Runs on this machine.

    Parameters
    ----------
    settings : Settings
        Store, database, workers.
    manager : RunManager, optional
        Where runs execute (tests hand one with a stand-in for ``run_local``).
    database : callable, optional
        Opens the results database.
    listener : callable, optional
        Receives every engine event (the CLI's progress bar).
    foreground : bool
        Commands run the execution in the calling thread and return when it ended
        (the CLI); else in background threads (the web server).
    """

    engine: Engine = "local"

    def __init__(
        self,
        settings: Settings,
        manager: RunManager | None = None,
        database: Callable[[], sa.Engine] | None = None,
        *,
        listener: Callable[[Event], None] | None = None,
        foreground: bool = False,
    ) -> None:
        self.settings = settings
        self.manager = manager or RunManager(settings, listener=listener, foreground=foreground)
        self.database = database or default_database(settings)

    @property
    def map_settings(self) -> MapSettings:
        """The defaults (:data:`plateseg.map_settings.DEFAULTS`)."""
        return DEFAULTS

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
        """Validate the input (raising before anything runs), then run it."""
        options = options or RunOptions()
        run_id = run_id or new_run_id(experiment_id)
        checked = execution_input(experiment_id, run_id, recipe, options)
        return self.manager.start(
            checked.experiment_id,
            run_id,
            checked.recipe.model_dump(mode="json"),
            naming=checked.naming,
            tunables=options.map_settings() if options.map_settings_given else None,
            started_by=checked.started_by,
        )

    def resume(
        self, run_id: str, kind: Kind = "start", *, interrupted_only: bool = False
    ) -> RunProgress | None:
        """Continue a run from its journal (:func:`plateseg.runs.embedded.resume_local`:
        finished states and batches are not run again); for ``kind="retry"`` its newest
        retry execution.

        With ``interrupted_only`` (a server taking back its runs after a restart), only
        a run whose journal says it was running continues: ``None`` when the engine had
        not begun a start (start it again), the run's snapshot when it had ended.

        Raises
        ------
        ResumeError
            The journal cannot be read; without ``interrupted_only`` also (when the
            execution ends) no journal, or the run already succeeded.
        """
        name = _newest_retry(self.settings.home / "runs", run_id) if kind == "retry" else run_id
        recorded = _journaled(engine_runs.journal_path(name, self.settings))
        if interrupted_only and recorded is None:
            return None if kind == "start" else self.progress(run_id)
        if interrupted_only and recorded is not None and recorded["status"] != "RUNNING":
            return self.progress(run_id)
        experiment_id = str((recorded or {}).get("input", {}).get("experiment_id", ""))
        return self._again(experiment_id, run_id, engine_runs.resume_local, name)

    def redrive(self, run_id: str) -> RunProgress:
        """Re-run the failed Map items of a finished run, then re-aggregate; a cancelled
        run continues where it stopped (:func:`plateseg.runs.embedded.redrive_local`,
        :func:`~plateseg.runs.embedded.resume_local`). Refusals (nothing failed, no journal)
        come from the journal when the execution starts."""
        try:
            known = self.manager.get(run_id)
            experiment_id, status = known.experiment_id, known.status
        except NotFoundError:
            recorded = _journaled(engine_runs.journal_path(run_id, self.settings)) or {}
            experiment_id = str(recorded.get("input", {}).get("experiment_id", ""))
            status = str(recorded.get("status", ""))
        if status == "ABORTED":
            return self._again(experiment_id, run_id, engine_runs.resume_local)
        return self._again(experiment_id, run_id, engine_runs.redrive_local)

    def retry(self, run_id: str) -> RunProgress:
        """Retry a finished run as ``<run_id>--retry-<n>``
        (:func:`plateseg.runs.embedded.retry_local`); its first snapshot.

        Raises
        ------
        ResumeError
            The run has no journal on this machine (nothing to take its input from).
        """
        path = engine_runs.journal_path(run_id, self.settings)
        recorded = _journaled(path)
        if recorded is None:
            raise ResumeError(
                f"no local run {run_id!r} to retry (no journal at {path}): it was not run "
                "on this machine; start a new run instead"
            )
        experiment_id = str(recorded["input"].get("experiment_id", ""))
        return self._again(experiment_id, run_id, engine_runs.retry_local)

    def cancel(self, run_id: str) -> RunProgress:
        return self.manager.cancel(run_id)

    def wait(self, run_id: str, timeout: float | None = None) -> AggregateResult:
        return self.manager.result(run_id, timeout)

    def _again(
        self, experiment_id: str, run_id: str, run: RunFunction, name: str | None = None
    ) -> RunProgress:
        """Run ``run(name)`` (resume, redrive or retry; ``name`` defaults to the run id)
        as the run ``run_id``."""
        execution = name or run_id

        def again(_experiment_id: str, **kw: Any) -> Any:
            return run(
                execution, settings=kw["settings"], listener=kw["listener"], cancel=kw["cancel"]
            )

        return self.manager.start(experiment_id, run_id, {}, runner=again)

    # --- queries ----------------------------------------------------------------------

    def progress(self, run_id: str) -> RunProgress:
        """This process's snapshot, else the results database's record, else how the
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
        missing = NotFoundError(f"run {run_id!r} is not known to this server")
        try:
            path = engine_runs.journal_path(run_id, self.settings)
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

    def followed(self) -> list[RunProgress]:
        return self.manager.active()

    def supports_redrive(self) -> bool:
        """Whether :mod:`plateseg.runs.embedded` offers redrive (it does; one web test removes
        it to check the refusal)."""
        return callable(getattr(engine_runs, "redrive_local", None))

    def estimate(self, fields: int, seconds_per_field: float) -> Estimate:
        """The planning model's local wall time, at the default Map settings."""
        predicted = estimate_run(
            fields,
            seconds_per_field,
            engine="local",
            settings=self.map_settings,
            workers=self.settings.worker_count,
        )
        return Estimate(fields, predicted.wall_seconds, None, predicted.basis)


def _newest_retry(runs: Path, run_id: str) -> str:
    """The execution name of the newest retry of ``run_id`` (``run_id`` when none)."""
    numbers = [0]
    if runs.is_dir():
        for folder in runs.iterdir():
            number = retry_number(folder.name)
            if number is not None and base_run_id(folder.name) == run_id:
                numbers.append(number)
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
