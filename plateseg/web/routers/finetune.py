"""Fine-tune the base model from corrections painted on the Models page.

* ``GET /api/finetune/status``: whether this server can fine-tune (PyTorch present), the
  models that can be fine-tuned, and the running job if any.
* ``GET /api/finetune/objects/{experiment_id}/{image_id}``: a model's objects on one
  field at its canvas size (run-length encoded instance ids): the outlines to correct,
  and what a click on an object erases.
* ``POST /api/finetune``: check the request, start the job (202); one job per server,
  a second one meanwhile gets 503 with ``Retry-After``.
* ``GET /api/finetune/jobs/{job_id}``: progress, then the result; ``POST …/cancel``;
  ``GET …/pictures/{index}/{before|after}.png``: outlines before/after.
* ``GET /api/finetune/cards/{name}``: a stored model's card (``models/<name>.json``).

Form problems answer 422 with ``fields`` naming each bad field (``name``, ``base``,
``fields``, ``scribbles``, ``channel``, ``check_field``, ``method``: PyTorch missing).
Fields are read as a run with the chosen ``planes`` reads them
(:func:`~plateseg.web.routers.models.taught_image`).
"""

from __future__ import annotations

import importlib.util
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from plateseg.contracts import DEFAULT_CHANNELS, Planes
from plateseg.errors import ModelError, NotFoundError, ObjectNotFoundError
from plateseg.finetune.labels import label_counts
from plateseg.finetune.trainer import FineTuneSettings
from plateseg.segmentation.model_store import (
    ModelFormError,
    check_model_name,
    list_models,
    provenance_key,
)
from plateseg.segmentation.onnx_model import (
    DEFAULT_MODEL,
    load_model_bytes,
    model_key,
    read_model_bytes,
    shipped_models,
)
from plateseg.web.deps import AppStateDep, ExperimentId, ImageId
from plateseg.web.finetune_eval import count_objects, encode_rle
from plateseg.web.finetune_job import FieldData, FineTuneJobs, JobProgress, JobRequest
from plateseg.web.routers.models import (
    PLANES_HELP,
    ScribbleIn,
    painted_labels,
    taught_field,
    taught_image,
    use_url,
)
from plateseg.web.scribbles import canvas_step
from plateseg.web.state import AppState

router = APIRouter(tags=["fine-tune"])

_CHANNEL = r"^[A-Za-z0-9_.-]+$"
_JOBS_KEY = "finetune.jobs"
_FORM_ERROR: dict[int | str, dict[str, Any]] = {
    422: {"description": "a field is invalid: `fields` names each problem"}
}
_FINE_TUNABLE = "nuclei-3class"


class CorrectionIn(ScribbleIn):
    """The corrections of one field as a run-length encoded label mask.

    ``rle`` = ``[value, length, …]`` row by row over ``height`` x ``width`` (the field's
    size or its canvas size): 0 unlabelled, 1 background, 2 nucleus, 3 separator.
    """

    image_id: str = Field(max_length=200)


class FineTuneIn(BaseModel):
    """Fine-tune ``base`` on one to three corrected fields of one experiment."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description="the new model: models/<name>.onnx")
    experiment_id: str = Field(max_length=128)
    channel: str = Field(
        default=DEFAULT_CHANNELS["nuclei"], max_length=64, description="the nuclei channel"
    )
    planes: Planes = Field(default="first", description=PLANES_HELP)
    base: str = Field(default=DEFAULT_MODEL, max_length=64, description="a nuclei-3class model")
    fields: list[CorrectionIn] = Field(min_length=1, max_length=3)
    check_field: str | None = Field(
        default=None, max_length=200, description="an unlabelled field to compare (auto)"
    )
    steps: int = Field(default=FineTuneSettings.steps, ge=1, le=5000)
    seconds: float = Field(default=FineTuneSettings.seconds, gt=0, le=900)
    leave_one_out: bool = False
    replace: bool = False


class StatusOut(BaseModel):
    available: bool
    reason: str | None = Field(description="why fine-tuning is unavailable here")
    bases: list[str] = Field(description="models that can be fine-tuned (nuclei-3class)")
    running: dict[str, Any] | None


class ObjectsOut(BaseModel):
    """A model's objects on one field, at the field's canvas size."""

    image_id: str
    model: str
    height: int
    width: int
    step: int = Field(description="canvas pixel = field pixels [::step, ::step]")
    count: int
    rle: list[int] = Field(description="[id, length, …] row-major, 0 = background")


def jobs(state: AppState) -> FineTuneJobs:
    """The server's fine-tune jobs (created on first use)."""
    found: FineTuneJobs = state.extras.setdefault(_JOBS_KEY, FineTuneJobs(state.store))
    return found


def torch_problem() -> str | None:
    """Why this server cannot fine-tune (PyTorch missing), or ``None``.

    Imports PyTorch through :mod:`plateseg.finetune.network`, whose :class:`ModelError`
    names the install command.
    """
    from plateseg.finetune.network import require_torch

    try:
        require_torch()
    except ModelError as exc:
        return str(exc)
    return None


def _torch_installed() -> bool:
    """PyTorch can be imported (checked without importing it: the status is cheap)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a None entry in sys.modules: import refused
        return False


def _form_error(exc: ModelFormError) -> JSONResponse:
    body = {"detail": str(exc), "error": "ModelFormError", "fields": exc.fields}
    return JSONResponse(body, status_code=422)


def _base_data(state: AppState, base: str) -> bytes:
    """The base model's bytes after checking that it can be fine-tuned (``base`` errors)."""
    check_model_name(base, "base")
    try:
        data = read_model_bytes(base, state.store)
        kind = load_model_bytes(base, data).kind
    except ModelError as exc:
        raise ModelFormError({"base": str(exc)}) from None
    if kind != _FINE_TUNABLE:
        raise ModelFormError(
            {
                "base": f"{base!r} is a {kind} model: only nuclei-3class models ("
                f"{DEFAULT_MODEL} or a model fine-tuned from it) can be fine-tuned; train a "
                "pixel classifier from scribbles instead"
            }
        )
    return data


def _fields(state: AppState, body: FineTuneIn, experiment_id: str) -> list[FieldData]:
    ids = [f.image_id for f in body.fields]
    if len(set(ids)) != len(ids):
        raise ModelFormError({"fields": "each field may be corrected once"})
    found = []
    for index, item in enumerate(body.fields, start=1):
        where = f"field {index} ({item.image_id[:60]})"
        _, image = taught_field(
            state, experiment_id, item.image_id, body.channel, body.planes, where
        )
        shape = (int(image.shape[0]), int(image.shape[1]))
        labels = painted_labels(item, shape, where, values=(0, 1, 2, 3))
        found.append(FieldData(item.image_id, image, labels))
    totals = {"background": 0, "nucleus": 0}
    for data in found:
        counts = label_counts(data.labels)
        for key in totals:
            totals[key] += counts[key]
    missing = [k for k, v in totals.items() if v == 0]
    if missing:
        raise ModelFormError(
            {
                "scribbles": f"paint some {' and '.join(missing)} too: fine-tuning needs "
                "both (a drawn nucleus counts as nucleus, an erased object as background)"
            }
        )
    return found


def _check_field(
    state: AppState, body: FineTuneIn, experiment_id: str, labelled: list[str]
) -> FieldData | None:
    """The unlabelled field to compare on: the one asked for, else the first other field."""
    if body.check_field:
        if body.check_field in labelled:
            raise ModelFormError(
                {"check_field": f"{body.check_field!r} is labelled: pick a field you did not paint"}
            )
        chosen = body.check_field
    else:
        others = [
            i.image_id
            for i in state.manifests.items(experiment_id)
            if i.image_id not in labelled and body.channel in i.channels
        ]
        if not others:
            return None
        chosen = others[0]
    try:
        where = f"field {chosen[:60]}"
        _, image = taught_field(state, experiment_id, chosen, body.channel, body.planes, where)
    except ModelFormError as exc:
        raise ModelFormError({"check_field": "; ".join(exc.fields.values())}) from None
    return FieldData(chosen, image, np.zeros(image.shape, np.uint8))


def _who(request: Request, state: AppState) -> str:
    identity = getattr(request.state, "identity", "") or ""
    return identity or f"{state.config.web_auth} sign-in"


@router.get("/api/finetune/status")
def status(state: AppStateDep) -> StatusOut:
    """Can this server fine-tune, from which models, and what is running."""
    installed = _torch_installed()
    reason = None if installed else torch_problem()
    running = jobs(state).running()
    bases = [m.name for m in list_models(state.store) if m.kind == _FINE_TUNABLE]
    return StatusOut(
        available=reason is None,
        reason=reason,
        bases=bases,
        running=running.as_json() if running else None,
    )


@router.get("/api/finetune/objects/{experiment_id}/{image_id}")
def objects(
    state: AppStateDep,
    experiment_id: ExperimentId,
    image_id: ImageId,
    channel: Annotated[str, Query(max_length=64, pattern=_CHANNEL)] = DEFAULT_CHANNELS["nuclei"],
    model: Annotated[str, Query(max_length=64)] = DEFAULT_MODEL,
    planes: Annotated[Planes, Query(description=PLANES_HELP)] = "first",
) -> Any:
    """A ``nuclei-3class`` model's objects on one field, at the field's canvas size."""
    from plateseg.segmentation.learned import segment_learned

    try:
        data = _base_data(state, model)
    except ModelFormError as exc:
        return _form_error(exc)
    item = state.manifests.channel_item(experiment_id, image_id, channel)
    with state.previews.take():
        image = taught_image(state, item, channel, planes)
        labels = segment_learned(image, load_model_bytes(model, data), None).labels
    step = canvas_step(image.shape)
    small = labels[::step, ::step]
    return ObjectsOut(
        image_id=image_id,
        model=model,
        height=int(small.shape[0]),
        width=int(small.shape[1]),
        step=step,
        count=count_objects(labels),
        rle=encode_rle(small),
    )


@router.post("/api/finetune", status_code=202, responses=_FORM_ERROR)
def start(request: Request, state: AppStateDep, body: FineTuneIn) -> Any:
    """Check the corrections and start the fine-tune job; poll ``/api/finetune/jobs/{id}``."""
    from plateseg.contracts import validate_experiment_id

    problem = torch_problem()
    if problem is not None:
        return _form_error(ModelFormError({"method": problem}))
    try:
        check_model_name(body.name)
        if body.name in shipped_models():
            raise ModelFormError(
                {"name": f"{body.name!r} is a shipped model's name: choose another"}
            )
        if not body.replace and state.store.exists(model_key(body.name)):
            raise ModelFormError(
                {
                    "name": f"a model named {body.name!r} already exists: choose another "
                    "name or replace it"
                }
            )
        base_data = _base_data(state, body.base)
        experiment_id = validate_experiment_id(body.experiment_id)
        fields = _fields(state, body, experiment_id)
        check = _check_field(state, body, experiment_id, [f.image_id for f in fields])
    except ModelFormError as exc:
        return _form_error(exc)
    settings = FineTuneSettings(steps=body.steps, seconds=body.seconds)
    progress = jobs(state).start(
        JobRequest(
            name=body.name,
            experiment_id=experiment_id,
            channel=body.channel,
            planes=body.planes,
            base=body.base,
            base_data=base_data,
            fields=fields,
            check=check,
            settings=settings,
            leave_one_out=body.leave_one_out,
            replace=body.replace,
            created_by=_who(request, state),
            use_url=use_url(experiment_id, "onnx", body.name, body.channel, body.planes),
        )
    )
    return JSONResponse(progress.as_json(), status_code=202)


JobId = Annotated[str, Path(max_length=40, pattern=r"^[0-9a-f]{1,40}$")]


@router.get("/api/finetune/jobs/{job_id}")
def job(state: AppStateDep, job_id: JobId) -> dict[str, Any]:
    """A job's progress; ``result`` once it succeeded, ``error`` if it failed."""
    progress: JobProgress = jobs(state).progress(job_id)
    return progress.as_json()


@router.post("/api/finetune/jobs/{job_id}/cancel")
def cancel(state: AppStateDep, job_id: JobId) -> dict[str, Any]:
    """Stop a running job at its next step (nothing is stored); a finished one stays."""
    return jobs(state).cancel(job_id).as_json()


@router.get(
    "/api/finetune/jobs/{job_id}/pictures/{index}/{which}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def picture(
    state: AppStateDep,
    job_id: JobId,
    index: Annotated[int, Path(ge=0, le=8)],
    which: Literal["before", "after"],
) -> Response:
    """Outlines of the base (``before``) or the new model (``after``) on a job's field."""
    data = jobs(state).picture(job_id, index, which)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private"})


@router.get("/api/finetune/cards/{name}")
def card(state: AppStateDep, name: Annotated[str, Path(max_length=64)]) -> Any:
    """A stored model's card: ``models/<name>.json`` (what made it, with its figures)."""
    import json

    try:
        check_model_name(name)
        raw = state.store.get_bytes(provenance_key(name))
    except ModelFormError as exc:
        return _form_error(exc)
    except ObjectNotFoundError:
        raise NotFoundError(f"model {name!r} has no card in the store") from None
    return json.loads(raw)
