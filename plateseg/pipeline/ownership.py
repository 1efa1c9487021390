"""Which experiment a run id belongs to, recorded before anything of the run is written.

A run id names one run of one experiment: ``runs/<run_id>/`` holds its journal, masks,
manifest and Parquet parts. Re-running *the same experiment* under its run id is the
documented way to redo a run; reusing the id for *another* experiment would overwrite
the first one's outputs. So a local run (CLI, through :func:`plateseg.runs.embedded.run_local`)
calls :func:`check_run_owner` before it touches the run's journal, and Lookup — the first
state of the state machine, on every engine; nothing is written on AWS before it —
records the owner with :func:`claim_run` before it writes anything else under the run.
(The web UI names each run anew, so it cannot reuse another experiment's run id.)

The owner is ``runs/<run_id>/owner.json`` (``{"experiment_id": ...}``). Runs from before
the owner file are recognised by the ``experiment_id`` in their Lookup report.
"""

from __future__ import annotations

from plateseg.errors import ObjectNotFoundError, RunOwnershipError
from plateseg.store import Store, get_json, put_json
from plateseg.store.keys import lookup_report_key, owner_key

__all__ = ["check_run_owner", "claim_run", "run_owner"]


def run_owner(store: Store, run_id: str) -> str | None:
    """The experiment ``run_id`` belongs to, or ``None`` for an unused run id."""
    for key in (owner_key(run_id), lookup_report_key(run_id)):
        try:
            recorded = get_json(store, key)
        except (ObjectNotFoundError, ValueError):
            continue
        owner = recorded.get("experiment_id") if isinstance(recorded, dict) else None
        if isinstance(owner, str) and owner:
            return owner
    return None


def check_run_owner(store: Store, run_id: str, experiment_id: str) -> None:
    """Refuse ``run_id`` when it belongs to another experiment than ``experiment_id``.

    Raises
    ------
    RunOwnershipError
        The run id is taken; nothing has been written.
    """
    owner = run_owner(store, run_id)
    if owner is not None and owner != experiment_id:
        raise RunOwnershipError(
            f"run id {run_id!r} belongs to experiment {owner!r}, not {experiment_id!r}: "
            "choose another run id (its results are left untouched)"
        )


def claim_run(store: Store, run_id: str, experiment_id: str) -> None:
    """Check the run id is free or already ``experiment_id``'s, then record the owner.

    Raises
    ------
    RunOwnershipError
        See :func:`check_run_owner`.
    """
    check_run_owner(store, run_id, experiment_id)
    put_json(store, owner_key(run_id), {"experiment_id": experiment_id})
