"""Recipes: segmenter parameters with defaults, validation, and a preview on a few fields.

A preview segments whole fields in the server's memory (a 36-Mpx field and its labels
are about 0.9 GB), so only ``web_max_previews`` run at once (:attr:`AppState.previews
<plateseg.web.state.AppState.previews>`); one more gets 503 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plateseg.contracts import DEFAULT_CHANNELS, DEFAULT_SEGMENTER, Recipe
from plateseg.errors import RecipeError, format_validation_error
from plateseg.imaging.field import read_field
from plateseg.pipeline.segment import one_thread
from plateseg.segmentation import get_segmenter, segment_field, validate_recipe
from plateseg.web.deps import AppStateDep, ExperimentId
from plateseg.web.render import overlay_png

router = APIRouter(prefix="/api", tags=["recipes"])

SEGMENTERS = ("classical", "trainable", "onnx")


class RecipeIn(BaseModel):
    """A recipe as the new-run form sends it (see :class:`plateseg.contracts.Recipe`)."""

    model_config = ConfigDict(extra="forbid")

    segmenter: str = Field(default=DEFAULT_SEGMENTER, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, max_length=64)
    channels: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CHANNELS), max_length=16)
    planes: Literal["first", "max"] = Field(
        default="first", description="several plane files per channel: the first, or their max"
    )


class PreviewIn(BaseModel):
    """Which fields to preview a recipe on (one or two, by image id)."""

    model_config = ConfigDict(extra="forbid")

    recipe: RecipeIn = Field(default_factory=RecipeIn)
    image_ids: list[Annotated[str, Field(max_length=128)]] = Field(min_length=1, max_length=2)


def checked_recipe(recipe: RecipeIn) -> Recipe:
    """A validated :class:`Recipe` with defaults filled; :class:`RecipeError` per bad field."""
    try:
        parsed = Recipe.model_validate(recipe.model_dump())
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, "recipe")) from None
    return validate_recipe(parsed)


@router.get("/segmenters")
def segmenters() -> list[dict[str, Any]]:
    """Registered segmenters with their parameters' JSON schema (defaults, bounds, help)."""
    result = []
    for name in SEGMENTERS:
        model = get_segmenter(name).params_model
        doc = (model.__doc__ or "").strip().splitlines()[0]
        result.append({"name": name, "summary": doc, "schema": model.model_json_schema()})
    return result


@router.post("/recipes/validate")
def validate(recipe: RecipeIn) -> dict[str, Any]:
    """The recipe with defaults filled, or 422 with ``fields`` naming each bad parameter."""
    return checked_recipe(recipe).model_dump()


@router.post("/experiments/{experiment_id}/preview")
def preview(state: AppStateDep, experiment_id: ExperimentId, body: PreviewIn) -> dict[str, Any]:
    """Segment one or two fields with a recipe; outlines over the nuclei channel + counts.

    Returns ``{"recipe", "fields": [{"image_id", "object_count", "seconds", "overlay"
    (PNG data URL), "metrics"}], "seconds_per_field", "estimate"}`` where ``estimate``
    extrapolates to the whole experiment (time locally, cost on AWS). 503 with
    ``Retry-After`` while ``web_max_previews`` previews are running.
    """
    recipe = checked_recipe(body.recipe)
    nuclei = recipe.channels["nuclei"]
    fields = []
    spent = 0.0
    with state.previews.take():  # 503 + Retry-After beyond web_max_previews
        for image_id in body.image_ids:
            item = state.manifests.item(experiment_id, image_id)
            if nuclei not in item.channels:
                raise RecipeError(
                    f"recipe.channels.nuclei: channel {nuclei!r} is not among this experiment's "
                    f"channels {sorted(item.channels)}"
                )
            if recipe.planes != "max":  # as Lookup builds the manifest for this recipe
                item = item.model_copy(update={"planes": None})
            started = time.perf_counter()
            images = read_field(
                state.store, item, list(item.channels), project=recipe.planes == "max"
            )
            with one_thread():  # as Segment runs it, so the estimate below holds
                result = segment_field(images, recipe, state.store)
            seconds = time.perf_counter() - started
            spent += seconds
            png = overlay_png(images[nuclei], result.labels, max_side=768)
            fields.append(
                {
                    "image_id": image_id,
                    "object_count": result.object_count,
                    "seconds": round(seconds, 3),
                    "overlay": "data:image/png;base64," + base64.b64encode(png).decode(),
                    "metrics": {k: v for k, v in result.metrics.items() if v is not None},
                }
            )
    per_field = spent / len(fields)
    total = len(state.manifests.items(experiment_id))
    estimate = state.backend.estimate(total, per_field)
    return {
        "recipe": recipe.model_dump(),
        "fields": fields,
        "seconds_per_field": round(per_field, 3),
        "estimate": {
            "engine": state.config.engine,
            "fields": estimate.fields,
            "seconds": round(estimate.seconds, 1),
            "cost_usd": estimate.cost_usd,
            "basis": estimate.basis,
        },
    }
