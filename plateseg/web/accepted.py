"""The durable record of runs the web server accepted, so a restart loses none.

A start the server answers 202 is written to the store first, one small JSON object
per run under :data:`ACCEPTED_PREFIX` (the only place that key layout is spelled):
the whole request (experiment, recipe, run id; or a redrive or retry of a run), who
asked and when, and where the run
stands in this server: ``queued`` (waiting for a slot), ``started`` (handed to the
engine) or ``ended`` (ended without the engine finishing it: cancelled while queued,
failed to start, or not resumable after a restart). A run the engine finished is
forgotten here: the results database and the run's journal answer for it.

On start, :meth:`plateseg.web.admission.AdmittedBackend.recover` reads them back:
``queued`` runs are queued again in the order they were accepted, ``started`` ones are
resumed (:func:`plateseg.runner.resume_local`), and ``ended`` ones stay visible.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plateseg.store import Store, get_json, put_json
from plateseg.web.runs import QUEUED, RunProgress

__all__ = ["ACCEPTED_PREFIX", "AcceptedRun", "AcceptedRuns", "Kind", "accepted_key", "unreadable"]

log = logging.getLogger("plateseg.web")

#: Store prefix of the accepted-runs records: ``web/accepted/<run_id>.json``.
ACCEPTED_PREFIX = "web/accepted/"
#: What was accepted: a new run, or a redrive or retry of a finished one.
Kind = Literal["start", "redrive", "retry"]


def accepted_key(run_id: str) -> str:
    """The store key of the record of run ``run_id``."""
    return f"{ACCEPTED_PREFIX}{run_id}.json"


class AcceptedRun(BaseModel):
    """One accepted run: the request, who made it and when, and where it stands.

    ``kind`` is ``start`` (a new run with ``recipe``), or ``redrive`` / ``retry`` of a
    finished run (its journal holds what to run).

    ``status``, ``phase``, ``error``, ``cause`` and ``finished_at`` are set when the run
    ended outside the engine (``stage == "ended"``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    experiment_id: str
    kind: Kind = "start"
    recipe: dict[str, Any] = Field(default_factory=dict)
    who: str = ""
    accepted_at: datetime
    stage: Literal["queued", "started", "ended"] = "queued"
    status: str | None = None
    phase: str | None = None
    error: str | None = None
    cause: str | None = None
    finished_at: datetime | None = None

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
