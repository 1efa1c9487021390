"""Runs: start, progress (polled by the run page), cancel, redrive, retry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from plateseg.contracts import validate_experiment_id
from plateseg.runner import execution_name
from plateseg.web.deps import AppStateDep, RunId
from plateseg.web.routers.preview import RecipeIn, checked_recipe

router = APIRouter(prefix="/api/runs", tags=["runs"])


class RunIn(BaseModel):
    """Start a run of one experiment with a recipe."""

    model_config = ConfigDict(extra="forbid")

    experiment_id: str = Field(max_length=128)
    recipe: RecipeIn = Field(default_factory=RecipeIn)


@router.post("", status_code=202)
def start_run(state: AppStateDep, body: RunIn) -> dict[str, Any]:
    """Validate the recipe, check the experiment has images, start the run in the background."""
    experiment_id = validate_experiment_id(body.experiment_id)
    recipe = checked_recipe(body.recipe)
    state.manifests.items(experiment_id)  # NotFoundError (404) when it has no images
    run_id = execution_name(experiment_id)
    progress = state.backend.start(experiment_id, run_id, recipe.model_dump(mode="json"))
    return progress.as_json()


@router.get("")
def list_active(state: AppStateDep) -> list[dict[str, Any]]:
    """Runs started by this server (local engine), newest first, then those queued."""
    manager = getattr(state.backend, "manager", None)
    running = [p.as_json() for p in manager.active()] if manager is not None else []
    queued = getattr(state.backend, "queued", list)
    return running + [p.as_json() for p in queued()]


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
