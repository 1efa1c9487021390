"""Run the segmentation state machine on this machine: the embedded default.

The local runner loads ``statemachines/segmentation.asl.json``, substitutes local
function ARNs and the local bucket name, binds the function names to the very
handlers in ``lambdas/`` and executes the definition with :class:`LocalEngine`.
The store is a folder, the database SQLite (or whatever ``PLATESEG_DATABASE_URL``
names).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plateseg.contracts import AggregateResult, ExecutionInput, Recipe
from plateseg.definition import LOCAL_FUNCTIONS, load_definition, local_substitutions
from plateseg.engine import Clock, Event, Journal, LocalEngine
from plateseg.errors import ExecutionFailed, InputError, ResumeError, StoreError
from plateseg.map_settings import MapSettings
from plateseg.pipeline.ownership import check_run_owner
from plateseg.runs.ids import (
    base_run_id,
    check_execution_name,
    new_run_id,
    retry_execution_name,
    retry_number,
)
from plateseg.runs.worker import init_worker
from plateseg.settings import Settings, get_settings
from plateseg.store import LocalStore, Store

__all__ = [
    "LocalRun",
    "journal_path",
    "redrive_local",
    "resume_local",
    "retry_local",
    "run_local",
]


@dataclass(frozen=True)
class LocalRun:
    """A finished local execution."""

    execution_name: str
    execution_arn: str
    result: AggregateResult
    events: list[Event]


def _bucket_resolver(settings: Settings) -> Callable[[str], Store]:
    store = LocalStore(settings.store_location)

    def resolve(bucket: str) -> Store:
        if bucket != settings.local_bucket:
            raise StoreError(
                f"bucket {bucket!r} is not available to the local engine "
                f"(only {settings.local_bucket!r}, the folder {store.root})"
            )
        return store

    return resolve


def _readable_cause(cause: str | None) -> str:
    """Lambda wraps a handler's error as JSON; show its message, not the envelope."""
    if not cause:
        return "(no cause given)"
    try:
        parsed = json.loads(cause)
    except (json.JSONDecodeError, TypeError):
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


def run_local(
    experiment_id: str,
    *,
    recipe: Recipe | dict[str, Any] | None = None,
    run_id: str | None = None,
    naming: str | None = None,
    settings: Settings | None = None,
    tunables: MapSettings | None = None,
    listener: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
    started_by: str | None = None,
) -> LocalRun:
    """Segment one experiment end to end on this machine.

    Parameters
    ----------
    experiment_id : str
        Experiment whose images are under ``experiments/<id>/`` in the local store.
    recipe : Recipe or dict, optional
        Segmentation recipe; the default recipe if omitted.
    run_id : str, optional
        Idempotency key: re-running with the same id rewrites the same run.
    naming : str, optional
        File-name preset (``imagexpress``, ``operetta``, ``cellomics``, ``incell``) or a
        regex with named groups; by default Lookup detects the preset that reads every
        file (:func:`plateseg.plate.manifest.choose_naming`).
    settings : Settings, optional
        Overrides the settings in force.
    tunables : MapSettings, optional
        Batch size, concurrency and failure tolerance; the defaults if omitted.
    listener : callable, optional
        Receives every engine :class:`Event` (progress bars use ``MapRun*`` events).
    cancel : threading.Event, optional
        Set it from another thread to stop the run (no new batch starts); the journal
        keeps what finished, so :func:`resume_local` can continue it.
    started_by : str, optional
        Who starts the run (recorded with it).

    The run is journaled in ``<home>/runs/<run_id>/journal.sqlite``; after a crash,
    :func:`resume_local` continues it, and :func:`redrive_local` re-runs failed items.

    Raises
    ------
    InputError
        The experiment id or recipe is invalid (checked before anything runs).
    RunOwnershipError
        ``run_id`` belongs to another experiment (nothing is written).
    ExecutionFailed
        The execution failed; ``error`` and ``cause`` say why.
    """
    settings = settings or get_settings()
    payload: dict[str, Any] = {"experiment_id": experiment_id}
    if run_id is not None:
        payload["run_id"] = run_id
    if naming is not None:
        payload["naming"] = naming
    if started_by is not None:
        payload["started_by"] = started_by
    if recipe is not None:
        payload["recipe"] = recipe.model_dump() if isinstance(recipe, Recipe) else recipe
    execution_input = ExecutionInput.parse(payload)  # fail fast, before any process starts

    definition = load_definition(values=local_substitutions(settings), settings=tunables)
    name = execution_input.run_id or new_run_id(experiment_id)
    path = journal_path(name, settings)
    # before the journal or anything else of the run is touched
    check_run_owner(LocalStore(settings.store_location), name, execution_input.experiment_id)
    path.unlink(missing_ok=True)  # the same run id rewrites the same run, from the start
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    payload_json = execution_input.model_dump(mode="json", exclude_none=True)
    return _execute(definition, payload_json, name, settings, listener, cancel)


def journal_path(run_id: str, settings: Settings | None = None) -> Path:
    """The execution journal of a local run: ``<home>/runs/<run_id>/journal.sqlite``.

    ``run_id`` is a run id or the execution name of one of its retries
    (:func:`plateseg.runs.ids.check_execution_name`); anything else is a
    :class:`ResumeError` naming the id and the rule.
    """
    try:
        check_execution_name(run_id)
    except InputError as exc:
        raise ResumeError(exc.message) from None
    return (settings or get_settings()).home / "runs" / run_id / "journal.sqlite"


def _open_journal(run_id: str, settings: Settings) -> tuple[Journal, dict[str, Any]]:
    path = journal_path(run_id, settings)
    if not path.exists():
        raise ResumeError(f"no local run {run_id!r} to continue (no journal at {path})")
    journal = Journal(path)
    recorded = journal.execution()
    if recorded is None:
        journal.close()
        raise ResumeError(f"the journal {path} of run {run_id!r} records no execution")
    return journal, recorded


def resume_local(
    run_id: str,
    *,
    settings: Settings | None = None,
    listener: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
) -> LocalRun:
    """Continue a local run that was killed or stopped, from its journal.

    States and Map batches the journal records as finished are not run again; the run
    ends with exactly the results an uninterrupted run would have.

    Raises
    ------
    ResumeError
        No journal for ``run_id``, or the run already succeeded.
    ExecutionFailed
        The resumed execution failed.
    """
    settings = settings or get_settings()
    journal, recorded = _open_journal(run_id, settings)
    journal.close()
    if recorded["status"] == "SUCCEEDED":
        raise ResumeError(
            f"run {run_id!r} already succeeded; use 'plateseg redrive' for failed items"
        )
    return _execute(recorded["definition"], recorded["input"], run_id, settings, listener, cancel)


def redrive_local(
    run_id: str,
    *,
    settings: Settings | None = None,
    listener: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
) -> LocalRun:
    """Re-run only the failed items of a finished local run, then re-aggregate.

    Like AWS ``RedriveExecution`` for a Map Run: the last Distributed Map with failed
    batches runs again with its succeeded batches taken from the journal, and every
    state after it runs again.

    Raises
    ------
    ResumeError
        No journal, the run is still running, or nothing failed.
    """
    settings = settings or get_settings()
    journal, recorded = _open_journal(run_id, settings)
    try:
        journal.rewind_to_failed_map()
    finally:
        journal.close()
    return _execute(recorded["definition"], recorded["input"], run_id, settings, listener, cancel)


def retry_local(
    run_id: str,
    *,
    settings: Settings | None = None,
    listener: Callable[[Event], None] | None = None,
    cancel: threading.Event | None = None,
) -> LocalRun:
    """Run a finished local run again as a new execution, reusing its successful batches.

    The new execution (``<run_id>--retry-<n>``, journaled under that name, so
    ``plateseg run --resume`` and ``plateseg redrive`` work on it too) gets the run's
    input (experiment, recipe, naming) with ``run_id`` set, and the same definition, so
    it batches alike: Segment returns the stored result of every batch that fully
    succeeded before (:func:`plateseg.pipeline.segment.checkpoint_key`) and segments the
    rest again: failed batches and batches with a failed image (e.g. a corrupt file
    replaced since). Aggregate then rewrites the whole run: images that now succeed
    lose their failure, the other rows are rewritten unchanged.

    Parameters
    ----------
    run_id : str
        The run to retry, or the execution name of one of its retries.

    Raises
    ------
    ResumeError
        No local journal for ``run_id`` (nothing to take the input from).
    ExecutionFailed
        The retry execution failed.
    """
    settings = settings or get_settings()
    journal, recorded = _open_journal(run_id, settings)
    journal.close()
    payload = dict(recorded["input"])
    base = str(payload.get("run_id") or base_run_id(run_id))
    payload["run_id"] = base
    ExecutionInput.parse(payload)  # the recorded input is still valid input
    runs = settings.home / "runs"
    taken = {0}
    if runs.is_dir():
        for folder in runs.iterdir():
            number = retry_number(folder.name)
            if number is not None and folder.name == retry_execution_name(base, number):
                taken.add(number)
    number = max(taken) + 1
    while True:  # claim the name atomically: a CLI and a web retry at once get two names
        name = retry_execution_name(base, number)
        try:
            (runs / name).mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            number += 1
    return _execute(recorded["definition"], payload, name, settings, listener, cancel)


def _execute(
    definition: dict[str, Any],
    payload: Any,
    name: str,
    settings: Settings,
    listener: Callable[[Event], None] | None,
    cancel: threading.Event | None,
) -> LocalRun:
    with (
        Journal(journal_path(name, settings)) as journal,
        LocalEngine(
            functions=dict(LOCAL_FUNCTIONS),
            buckets=_bucket_resolver(settings),
            clock=Clock(time_scale=settings.time_scale),
            workers=settings.worker_count,
            worker_initializer=init_worker,
            worker_initargs=(settings.model_dump(mode="json"),),
            prewarm_workers=True,
        ) as engine,
    ):
        outcome = engine.run(
            definition, payload, name=name, listener=listener, journal=journal, cancel=cancel
        )
    if outcome.status != "SUCCEEDED":
        raise ExecutionFailed(
            outcome.error or "States.Runtime", _readable_cause(outcome.cause), name
        )
    return LocalRun(
        execution_name=name,
        execution_arn=outcome.execution_arn,
        result=AggregateResult.model_validate(outcome.output),
        events=list(outcome.events),
    )
