"""Models: list, upload, delete, and train a ``trainable`` model from scribbles.

Form problems answer 422 with ``fields`` naming each bad field (``name``, ``file``,
``channel``, ``fields``, ``scribbles``), like recipe errors do. Training runs in the
server's worker threads (the event loop stays free), one training at a time: a
second one meanwhile gets 503 with ``Retry-After``.

A field is taught on as a run with the chosen ``planes`` reads it
(:func:`taught_image`): its first plane, or the maximum projection of its planes.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from plateseg.contracts import DEFAULT_CHANNELS, ManifestItem, Planes
from plateseg.errors import NotFoundError, TransientError
from plateseg.imaging.field import read_channel
from plateseg.segmentation.model_store import (
    ModelFormError,
    ModelInfo,
    check_model_name,
    delete_model,
    list_models,
    store_model,
    validate_model_bytes,
)
from plateseg.web.deps import AppStateDep, ExperimentId, ImageId
from plateseg.web.scribbles import (
    Scribble,
    canvas_png,
    canvas_shape,
    decode_rle,
    full_resolution,
)
from plateseg.web.state import AppState

router = APIRouter(prefix="/api/models", tags=["models"])

_CHANNEL = r"^[A-Za-z0-9_.-]+$"
_LOCK_KEY = "models.training"
_FORM_ERROR: dict[int | str, dict[str, Any]] = {
    422: {"description": "a field is invalid: `fields` names each problem"}
}
#: What the ``planes`` choice of the teaching endpoints means (the recipe's ``planes``).
PLANES_HELP = (
    "Z planes, as a run with this recipe reads the field: 'first' its first plane, 'max' "
    "the maximum projection of its plane files or of a Z-stack held in one file"
)


class ModelOut(BaseModel):
    """A model in the store or shipped with plateseg."""

    name: str
    source: Literal["store", "shipped"]
    size: int = Field(description="bytes of the ONNX file")
    created: str | None = Field(description="ISO time it was stored (shipped: null)")
    kind: str = Field(
        description="pixel-features (trainable), image or nuclei-3class (onnx), or unknown"
    )
    segmenter: Literal["trainable", "onnx"]
    provenance: dict[str, Any]


class ScribbleIn(BaseModel):
    """The scribbles of one field, as a run-length encoded label mask.

    ``rle`` = ``[value, length, value, length, …]`` row by row over a ``height`` x
    ``width`` mask: 0 unlabelled, 1 background, 2 nucleus. The mask is either the
    field's size or the size of its canvas picture (``/api/models/canvas/…``).
    """

    model_config = ConfigDict(extra="forbid")

    image_id: str = Field(max_length=128)
    height: int = Field(ge=1, le=8192)
    width: int = Field(ge=1, le=8192)
    rle: list[Annotated[int, Field(ge=0, le=67_108_864)]] = Field(min_length=2, max_length=600_000)


class TrainIn(BaseModel):
    """Train a pixel classifier on one to three scribbled fields of one experiment."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description="model name: models/<name>.onnx")
    experiment_id: str = Field(max_length=128)
    channel: str = Field(
        default=DEFAULT_CHANNELS["nuclei"], max_length=64, description="the nuclei channel"
    )
    planes: Planes = Field(default="first", description=PLANES_HELP)
    fields: list[ScribbleIn] = Field(min_length=1, max_length=3)
    trees: int = Field(default=16, ge=1, le=64)
    max_depth: int = Field(default=8, ge=2, le=16)
    scale: Literal[1, 2, 4] = 2
    replace: bool = False


class PreviewOut(BaseModel):
    """The new model applied to one painted field."""

    image_id: str
    object_count: int
    seconds: float
    overlay: str = Field(description="PNG data URL: outlines over the nuclei channel")


class TrainOut(BaseModel):
    """A trained, stored model, its preview, and how to use it in a run."""

    model: ModelOut
    seconds: float
    labelled: dict[str, int]
    previews: list[PreviewOut]
    recipe: dict[str, Any]
    use_url: str = Field(description="the new-run page with this model preselected")


class DeletedOut(BaseModel):
    name: str
    deleted: bool


def _out(info: ModelInfo) -> ModelOut:
    return ModelOut.model_validate(info.as_json())


def _form_error(exc: ModelFormError) -> JSONResponse:
    body = {"detail": str(exc), "error": "ModelFormError", "fields": exc.fields}
    return JSONResponse(body, status_code=422)


def use_url(
    experiment_id: str, segmenter: str, model: str, channel: str, planes: Planes = "first"
) -> str:
    """The new-run page of ``experiment_id`` with ``segmenter``, ``model``, the nuclei
    ``channel`` and (when taught on projections) ``planes=max`` preselected."""
    query = {"segmenter": segmenter, "model": model, "nuclei": channel}
    if planes != "first":
        query["planes"] = planes
    return f"/experiments/{experiment_id}/new-run?{urlencode(query)}"


def taught_image(state: AppState, item: ManifestItem, channel: str, planes: Planes) -> np.ndarray:
    """The ``(Y, X)`` channel of a field a model is taught on, read as a run with the
    recipe's ``planes`` reads it (:func:`~plateseg.imaging.field.read_channel`): the
    canvas, the base model's objects, scribbles and corrections all see that picture."""
    limit = state.settings.max_image_pixels
    return read_channel(state.store, item, channel, limit, planes=planes)


def taught_field(
    state: AppState, experiment_id: str, image_id: str, channel: str, planes: Planes, where: str
) -> tuple[ManifestItem, np.ndarray]:
    """A painted field of the teaching forms and its :func:`taught_image`; a field the
    experiment lacks (``fields``) or one without ``channel`` (``channel``) is a
    :class:`ModelFormError` naming ``where``."""
    try:
        item = state.manifests.item(experiment_id, image_id)
    except NotFoundError as exc:
        raise ModelFormError({"fields": str(exc)}) from None
    if channel not in item.channels:
        raise ModelFormError(
            {"channel": f"{where} has no channel {channel!r}: {sorted(item.channels)}"}
        )
    return item, taught_image(state, item, channel, planes)


def painted_labels(
    field: ScribbleIn, shape: tuple[int, int], where: str, values: tuple[int, ...] | None = None
) -> np.ndarray:
    """The full-resolution label mask of a painted ``field`` of a ``shape`` image (its
    mask drawn at the field's size or its canvas's; other sizes are a ``scribbles``
    :class:`ModelFormError`); ``values`` the labels allowed (default 0-2, the pixel
    classifier's; a fine-tune's correction adds 3)."""
    if (field.height, field.width) not in (shape, canvas_shape(shape)):
        raise ModelFormError(
            {
                "scribbles": f"{where}: a {field.height} x {field.width} mask fits neither "
                f"the field {shape} nor its canvas {canvas_shape(shape)}"
            }
        )
    if values is None:  # the pixel classifier's labels (decode_rle's default)
        mask = decode_rle(field.rle, field.height, field.width, where)
    else:
        mask = decode_rle(field.rle, field.height, field.width, where, values=values)
    return full_resolution(mask, shape, where)


def _training_lock(state: AppState) -> threading.Lock:
    lock: threading.Lock = state.extras.setdefault(_LOCK_KEY, threading.Lock())
    return lock


@router.get("")
def get_models(state: AppStateDep) -> list[ModelOut]:
    """Models in the store (``models/*.onnx``) with provenance, then the shipped ones."""
    return [_out(info) for info in list_models(state.store)]


@router.post("", status_code=201, responses=_FORM_ERROR)
def upload_model(
    state: AppStateDep,
    name: Annotated[str, Form(max_length=64)],
    file: Annotated[UploadFile, File(description="an ONNX model")],
    replace: Annotated[bool, Form()] = False,
) -> Any:
    """Upload an ONNX model; it is checked (loads, inputs/outputs, a test tile) first."""
    try:
        check_model_name(name)
        data = file.file.read(state.config.web_max_body + 1)
        model = validate_model_bytes(name, data)
        del model
        filename = (file.filename or "")[:128]
        info = store_model(
            state.store, name, data, {"origin": "uploaded", "filename": filename}, replace=replace
        )
    except ModelFormError as exc:
        return _form_error(exc)
    return _out(info)


@router.delete("/{name}", responses=_FORM_ERROR)
def remove_model(state: AppStateDep, name: Annotated[str, Path(max_length=64)]) -> Any:
    """Delete a model (and its provenance) from the store; shipped models stay."""
    try:
        delete_model(state.store, name)
    except ModelFormError as exc:
        return _form_error(exc)
    return DeletedOut(name=name, deleted=True)


@router.get(
    "/canvas/{experiment_id}/{image_id}/{channel}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def canvas(
    state: AppStateDep,
    experiment_id: ExperimentId,
    image_id: ImageId,
    channel: Annotated[str, Path(max_length=64, pattern=_CHANNEL)],
    planes: Annotated[Planes, Query(description=PLANES_HELP)] = "first",
) -> Response:
    """The picture to paint scribbles on: one channel, contrast-stretched, ≤ 1024 px."""
    item = state.manifests.channel_item(experiment_id, image_id, channel)
    image = taught_image(state, item, channel, planes)
    return Response(
        canvas_png(image),
        media_type="image/png",
        headers={
            "Cache-Control": "private, max-age=300",
            "X-Field-Shape": f"{image.shape[0]}x{image.shape[1]}",
        },
    )


def _scribbles(state: AppState, body: TrainIn) -> list[Scribble]:
    from plateseg.contracts import validate_experiment_id

    experiment_id = validate_experiment_id(body.experiment_id)
    ids = [f.image_id for f in body.fields]
    if len(set(ids)) != len(ids):
        raise ModelFormError({"fields": "each field may be painted once"})
    found = []
    for index, field in enumerate(body.fields, start=1):
        where = f"field {index} ({field.image_id[:60]})"
        item, image = taught_field(
            state, experiment_id, field.image_id, body.channel, body.planes, where
        )
        shape = (int(image.shape[0]), int(image.shape[1]))
        found.append(Scribble(item, image, painted_labels(field, shape, where)))
    return found


@router.post("/train", status_code=201, responses=_FORM_ERROR)
def train(state: AppStateDep, body: TrainIn) -> Any:
    """Train a ``trainable`` pixel classifier from scribbles, store it, preview it.

    Takes seconds for a few fields; the response carries the model, the labelled pixel
    counts, per-field previews (outlines and object counts) and ``use_url``.
    """
    from plateseg.web.scribbles import train_from_scribbles

    lock = _training_lock(state)
    if not lock.acquire(blocking=False):
        raise TransientError("another model is being trained on this server: try again shortly")
    try:
        check_model_name(body.name)
        scribbles = _scribbles(state, body)
        trained = train_from_scribbles(
            state.store,
            name=body.name,
            experiment_id=body.experiment_id,
            channel=body.channel,
            planes=body.planes,
            scribbles=scribbles,
            trees=body.trees,
            max_depth=body.max_depth,
            scale=body.scale,
            replace=body.replace,
        )
    except ModelFormError as exc:
        return _form_error(exc)
    finally:
        lock.release()
    return TrainOut(
        model=_out(trained.model),
        seconds=trained.seconds,
        labelled=trained.labelled,
        previews=[PreviewOut.model_validate(p) for p in trained.previews],
        recipe=trained.recipe,
        use_url=use_url(body.experiment_id, "trainable", body.name, body.channel, body.planes),
    )
