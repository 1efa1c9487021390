"""Runs: start, progress (polled by the run page), cancel, redrive, retry.

The router's lifespan takes back, when the server starts, the runs it had accepted
before it stopped, and stops starting queued ones when it shuts down
(:mod:`plateseg.web.admission`, :mod:`plateseg.web.accepted`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from plateseg.contracts import validate_experiment_id
from plateseg.runner import execution_name
from plateseg.web.deps import AppStateDep, RunId
from plateseg.web.routers.preview import RecipeIn, checked_recipe
from plateseg.web.runs import RunProgress


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state.plateseg
    await run_in_threadpool(state.recover_runs)
    try:
        yield
    finally:
        state.stop_runs()


router = APIRouter(prefix="/api/runs", tags=["runs"], lifespan=_lifespan)


class RunIn(BaseModel):
    """Start a run of one experiment with a recipe."""

    model_config = ConfigDict(extra="forbid")

    experiment_id: str = Field(max_length=128)
    recipe: RecipeIn = Field(default_factory=RecipeIn)


@router.post("", status_code=202)
def start_run(state: AppStateDep, body: RunIn, request: Request) -> dict[str, Any]:
    """Validate the recipe, check the experiment has images, start the run in the background.

    The run is recorded before the 202 (local engine): a restart of the server resumes
    or re-queues it.
    """
    experiment_id = validate_experiment_id(body.experiment_id)
    recipe = checked_recipe(body.recipe)
    state.manifests.items(experiment_id)  # NotFoundError (404) when it has no images
    run_id = execution_name(experiment_id)
    # the proxy-verified identity (security middleware), else who holds the token/password
    who = str(getattr(request.state, "identity", None) or f"{state.config.web_auth} holder")
    progress = state.backend.start(
        experiment_id, run_id, recipe.model_dump(mode="json"), who=who[:200]
    )
    return progress.as_json()


@router.get("")
def list_active(state: AppStateDep) -> list[dict[str, Any]]:
    """Runs started by this server (local engine), newest first, then those queued, then
    those that ended before starting or could not be resumed after a restart."""
    backend = state.backend
    manager = getattr(backend, "manager", None)
    running = manager.active() if manager is not None else []
    queued: list[RunProgress] = getattr(backend, "queued", list)()
    ended: list[RunProgress] = getattr(backend, "ended", list)()
    listed: dict[str, dict[str, Any]] = {}
    for progress in [*running, *queued, *ended]:  # a run being started shows up twice
        listed.setdefault(progress.run_id, progress.as_json())
    return list(listed.values())


@router.get("/{run_id}")
def get_progress(state: AppStateDep, run_id: RunId) -> dict[str, Any]:
    """Progress of a run: status, phase, item counters, throughput, ETA."""
    return state.backend.progress(run_id).as_json()


@router.post("/{run_id}/cancel")
def cancel_run(state: AppStateDep, run_id: RunId) -> dict[str, Any]:
    """Stop a running run (409 when it already finished or the engine cannot cancel)."""
    return state.backend.cancel(run_id).as_json()


@router.post("/{run_id}/redrive", status_code=202)
def redrive_run(state: AppStateDep, run_id: RunId) -> dict[str, Any]:
    """Retry the failed items of a finished run (Step Functions RedriveExecution)."""
    return state.backend.redrive(run_id).as_json()


@router.post("/{run_id}/retry", status_code=202)
def retry_run(state: AppStateDep, run_id: RunId) -> dict[str, Any]:
    """Run a finished run again as a new execution of the same run id.

    Batches that fully succeeded are reused; failed batches and batches with a failed
    image (e.g. a corrupt file replaced since) are segmented again, then the run's results
    are rewritten. 409 while the run is running or when nothing failed.
    """
    return state.backend.retry(run_id).as_json()
