"""The durable record of runs the web server accepted, so a restart loses none.

A start the server answers 202 is written to the store first, one small JSON object
per run under ``web/accepted/`` (:mod:`plateseg.store.keys` spells the key layout):
the whole request (experiment, recipe, run id; or a redrive or retry of a run), who
asked and when, and where the run
stands in this server: ``queued`` (waiting for a slot), ``started`` (handed to the
engine) or ``ended`` (ended without the engine finishing it: cancelled while queued,
failed to start, or not resumable after a restart). A run the engine finished is
forgotten here: the results database and the run's journal answer for it.

On start, :meth:`plateseg.web.admission.AdmittedBackend.recover` reads them back:
``queued`` runs are queued again in the order they were accepted, ``started`` ones are
resumed (:meth:`plateseg.runs.base.Runner.resume`), and ``ended`` ones stay visible.
:class:`Ledger` keeps one server's records.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plateseg.errors import PlatesegError
from plateseg.runs.base import RunOptions
from plateseg.runs.progress import QUEUED, RunProgress
from plateseg.store import Store, get_json, put_json
from plateseg.store.keys import ACCEPTED_PREFIX, accepted_key

__all__ = [
    "AcceptedRun",
    "AcceptedRuns",
    "Kind",
    "Ledger",
    "failed_to_start",
    "unreadable",
]

log = logging.getLogger("plateseg.web")

#: What was accepted: a new run, or a redrive or retry of a finished one.
Kind = Literal["start", "redrive", "retry"]


class AcceptedRun(BaseModel):
    """One accepted run: the request, who made it and when, and where it stands.

    ``kind`` is ``start`` (a new run with ``recipe`` and the options ``naming``,
    ``items_per_batch``, ``max_concurrency``), or ``redrive`` / ``retry`` of a finished
    run (its journal holds what to run).

    ``status``, ``phase``, ``error``, ``cause`` and ``finished_at`` are set when the run
    ended outside the engine (``stage == "ended"``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    experiment_id: str
    kind: Kind = "start"
    recipe: dict[str, Any] = Field(default_factory=dict)
    naming: str | None = None
    items_per_batch: int | None = None
    max_concurrency: int | None = None
    who: str = ""
    accepted_at: datetime
    stage: Literal["queued", "started", "ended"] = "queued"
    status: str | None = None
    phase: str | None = None
    error: str | None = None
    cause: str | None = None
    finished_at: datetime | None = None

    def options(self) -> RunOptions:
        """The options of the start, as the runner takes them."""
        return RunOptions(
            naming=self.naming,
            items_per_batch=self.items_per_batch,
            max_concurrency=self.max_concurrency,
            started_by=self.who or None,
        )

    def ended(self, progress: RunProgress) -> AcceptedRun:
        """This record, ended as ``progress`` says."""
        return self.model_copy(
            update={
                "stage": "ended",
                "status": progress.status,
                "phase": progress.phase,
                "error": progress.error,
                "cause": progress.cause,
                "finished_at": progress.finished_at,
            }
        )

    def waiting(self, engine: str) -> RunProgress:
        """The snapshot of a record taken back at a restart: queued until it starts again."""
        return RunProgress(
            run_id=self.run_id,
            experiment_id=self.experiment_id,
            engine=engine,
            status=QUEUED,
            phase="queued",
            started_at=self.accepted_at,
            can_cancel=True,
        )

    def progress(self, engine: str) -> RunProgress:
        """The snapshot of an ended record (the run page and the runs list show it)."""
        return RunProgress(
            run_id=self.run_id,
            experiment_id=self.experiment_id,
            engine=engine,
            status=self.status or "FAILED",
            phase=self.phase or "failed",
            started_at=self.accepted_at,
            finished_at=self.finished_at or self.accepted_at,
            error=self.error,
            cause=self.cause,
        )


def failed_to_start(progress: RunProgress, exc: BaseException, why: str = "") -> RunProgress:
    """``progress`` ended FAILED because starting it raised ``exc``: the error's name and
    message (an HTTP error's detail; no internals of a bug), after ``why`` when given."""
    from fastapi import HTTPException

    error, cause = type(exc).__name__, str(exc)
    if isinstance(exc, HTTPException):
        cause = str(exc.detail)
    elif not isinstance(exc, PlatesegError):
        error, cause = "InternalError", f"unexpected {error} while starting the run"
    if why:
        cause = f"{why} ({cause}); start it again"
    return replace(
        progress,
        status="FAILED",
        phase="failed",
        error=error,
        cause=cause,
        finished_at=datetime.now(UTC),
        can_cancel=False,
    )


def unreadable(run_id: str, engine: str) -> RunProgress:
    """The snapshot of a run whose record cannot be read: listed as failed, not lost."""
    return RunProgress(
        run_id=run_id,
        experiment_id="",
        engine=engine,
        status="FAILED",
        phase="failed",
        error="StoreError",
        cause="the server cannot read this run's record in the store; start it again",
        finished_at=datetime.now(UTC),
    )


class AcceptedRuns:
    """The accepted-runs records in ``store`` (:func:`accepted_key`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, run: AcceptedRun) -> None:
        """Write (or overwrite) the record; it is durable when this returns."""
        put_json(self.store, accepted_key(run.run_id), run.model_dump(mode="json"))

    def forget(self, run_id: str) -> None:
        """Remove the record of a run the engine finished."""
        self.store.delete_keys([accepted_key(run_id)])

    def load(self) -> tuple[list[AcceptedRun], list[str]]:
        """Every record in the order the runs were accepted, and the run ids of records
        that cannot be read (a damaged file)."""
        runs: list[AcceptedRun] = []
        unreadable: list[str] = []
        for info in self.store.list(ACCEPTED_PREFIX):
            name = info.key[len(ACCEPTED_PREFIX) :]
            if "/" in name or not name.endswith(".json"):
                continue
            try:
                runs.append(AcceptedRun.model_validate(get_json(self.store, info.key)))
            except (ValueError, ValidationError) as exc:
                log.warning("unreadable accepted-run record %s: %s", info.key, exc)
                unreadable.append(name.removesuffix(".json"))
        runs.sort(key=lambda run: (run.accepted_at, run.run_id))
        return runs, unreadable


class Ledger:
    """The records of the runs one server accepted and its engine has not finished.

    Without a store (``accepted`` is ``None``) nothing is written: the queue lives in
    memory only. Once :attr:`closed` (server shutdown) nothing more is written, so
    what waits stays recorded for the next start. The caller serialises calls.
    """

    def __init__(self, accepted: AcceptedRuns | None) -> None:
        self.accepted = accepted
        self.closed = False
        self._records: dict[str, AcceptedRun] = {}  # recorded runs not yet finished
        self._last = datetime.min.replace(tzinfo=UTC)

    @property
    def durable(self) -> bool:
        """Whether records are written (then finished runs' records must be dropped)."""
        return self.accepted is not None

    def stamp(self) -> datetime:
        """Now, strictly after every run accepted before (records sort by it)."""
        self._last = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
        return self._last

    def save(self, record: AcceptedRun) -> None:
        """Write ``record`` durably."""
        if self.accepted is not None and not self.closed:
            self.accepted.save(record)
            self._records[record.run_id] = record

    def forget(self, run_id: str) -> None:
        """The engine finished ``run_id``: drop its record."""
        recorded = self._records.pop(run_id, None) is not None
        if recorded and self.accepted is not None and not self.closed:
            self.accepted.forget(run_id)

    def end(self, record: AcceptedRun, ended: RunProgress) -> None:
        """A run ended outside the engine: keep it listed after a restart too."""
        record = self._records.pop(record.run_id, record)
        if self.accepted is not None and not self.closed:
            self.accepted.save(record.ended(ended))

    def load(self) -> tuple[list[AcceptedRun], list[str]]:
        """The records a previous server left (:meth:`AcceptedRuns.load`); each is kept
        as not finished until :meth:`drop` or :meth:`forget`."""
        if self.accepted is None:
            return [], []
        records, damaged = self.accepted.load()
        for record in records:
            self._last = max(self._last, record.accepted_at)
            if record.stage != "ended":
                self._records[record.run_id] = record
        return records, damaged

    def drop(self, run_id: str) -> None:
        """Forget a loaded record whose run finished meanwhile."""
        self._records.pop(run_id, None)
        if self.accepted is not None:
            self.accepted.forget(run_id)
