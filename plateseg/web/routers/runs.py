"""Runs: start, progress (polled by the run page), cancel, redrive, retry.

Every option of ``plateseg run`` is a field of ``POST /api/runs``: the recipe (with
secondary objects), the file naming (detected when omitted), the batch size, the
concurrency and the run id. The router maps HTTP to the runner
(:func:`plateseg.runs.make_runner`, behind admission control on the local engine:
:mod:`plateseg.web.admission`); the lifecycle itself lives in :mod:`plateseg.runs`.

The router's lifespan takes back, when the server starts, the runs it had accepted
before it stopped, and stops starting queued ones when it shuts down
(:mod:`plateseg.web.accepted`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from plateseg.contracts import validate_experiment_id
from plateseg.map_settings import ItemsPerBatch, MaxConcurrency
from plateseg.runs.base import RunOptions, check_redrivable, check_retryable
from plateseg.runs.ids import MAX_RUN_ID, check_run_id, new_run_id
from plateseg.web.deps import AppStateDep, RunId
from plateseg.web.routers.preview import RecipeIn, checked_recipe


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state.plateseg
    await run_in_threadpool(state.recover_runs)
    try:
        yield
    finally:
        state.stop_runs()


router = APIRouter(prefix="/api/runs", tags=["runs"], lifespan=_lifespan)


class RunRecipeIn(RecipeIn):
    """The recipe of a run: a preview's recipe plus secondary objects (cells grown
    from the nuclei in the ``cells`` channel; ``{}`` for the defaults)."""

    secondary: dict[str, float] | None = Field(default=None, max_length=8)


class RunIn(BaseModel):
    """Start a run of one experiment: ``plateseg run``'s options as fields."""

    model_config = ConfigDict(extra="forbid")

    experiment_id: str = Field(max_length=128)
    recipe: RunRecipeIn = Field(default_factory=RunRecipeIn)
    naming: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="File-name preset (imagexpress, operetta, cellomics, incell) or a regex; "
        "detected from the file names when omitted.",
    )
    batch_size: ItemsPerBatch | None = Field(
        default=None, description="Fields per batch (the default when omitted)."
    )
    concurrency: MaxConcurrency | None = Field(
        default=None, description="Batches at once, 0 = unlimited (the default when omitted)."
    )
    run_id: str | None = Field(
        default=None,
        max_length=MAX_RUN_ID,
        description="Run id (idempotency key); a new one when omitted.",
    )


@router.post("", status_code=202)
def start_run(state: AppStateDep, body: RunIn, request: Request) -> dict[str, Any]:
    """Validate the request, check the experiment has images, start the run.

    The run is recorded before the 202 (local engine): a restart of the server resumes
    or re-queues it.
    """
    experiment_id = validate_experiment_id(body.experiment_id)
    recipe = checked_recipe(body.recipe)
    options = RunOptions(
        naming=body.naming, items_per_batch=body.batch_size, max_concurrency=body.concurrency
    )
    run_id = check_run_id(body.run_id) if body.run_id else new_run_id(experiment_id)
    state.manifests.items(experiment_id)  # NotFoundError (404) when it has no images
    # the proxy-verified identity (security middleware), else who holds the token/password
    who = str(getattr(request.state, "identity", None) or f"{state.config.web_auth} holder")
    progress = state.backend.start(
        experiment_id, run_id, recipe.model_dump(mode="json"), options=options, who=who[:200]
    )
    return progress.as_json()


@router.get("")
def list_active(state: AppStateDep) -> list[dict[str, Any]]:
    """Runs this server follows (local engine), newest first, then those queued, then
    those that ended before starting or could not be resumed after a restart."""
    return [progress.as_json() for progress in state.backend.followed()]


@router.get("/{run_id}")
def get_progress(state: AppStateDep, run_id: RunId) -> dict[str, Any]:
    """Progress of a run: status, phase, item counters, throughput, ETA."""
    return state.backend.progress(run_id).as_json()


@router.post("/{run_id}/cancel")
def cancel_run(state: AppStateDep, run_id: RunId) -> dict[str, Any]:
    """Stop a running run (409 when it already finished)."""
    return state.backend.cancel(run_id).as_json()


@router.post("/{run_id}/redrive", status_code=202)
def redrive_run(state: AppStateDep, run_id: RunId) -> dict[str, Any]:
    """Retry the failed items of a finished run (Step Functions RedriveExecution).
    409 while the run is running or when no Map item failed."""
    check_redrivable(state.backend.progress(run_id))
    return state.backend.redrive(run_id).as_json()


@router.post("/{run_id}/retry", status_code=202)
def retry_run(state: AppStateDep, run_id: RunId) -> dict[str, Any]:
    """Run a finished run again as a new execution of the same run id.

    Batches that fully succeeded are reused; failed batches and batches with a failed
    image (e.g. a corrupt file replaced since) are segmented again, then the run's results
    are rewritten. 409 while the run is running or when nothing failed.
    """
    check_retryable(state.backend.progress(run_id))
    return state.backend.retry(run_id).as_json()
