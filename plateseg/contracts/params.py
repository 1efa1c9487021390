"""The parameters of each segmenter, as pydantic models: ``recipe.params`` and
``recipe.secondary`` are validated here, once, at the edge.

A leaf of the package: pydantic and :mod:`plateseg.errors` only, so checking a recipe
(``plateseg validate-input``, the web's new-run form, ``ExecutionInput.parse``) loads no
numerical library. The segmenters themselves (:mod:`plateseg.segmentation`) take these
models; :data:`SEGMENTER_PARAMS` names every segmenter a recipe may ask for.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from plateseg.errors import RecipeError, format_validation_error

if TYPE_CHECKING:
    from plateseg.contracts import Recipe

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_RANGE",
    "MIN_CONTRAST",
    "MODEL_NAME_PATTERN",
    "SEGMENTER_PARAMS",
    "ClassicalParams",
    "ModelParams",
    "SecondaryParams",
    "canonical_recipe_json",
    "parse_params",
    "parse_secondary",
    "validate_recipe",
]

#: Units shown with a parameter (``unit`` in its JSON schema), and shared descriptions.
_PX: dict[str, Any] = {"unit": "px"}
_FRACTION: dict[str, Any] = {"unit": "fraction"}
_FACTOR: dict[str, Any] = {"unit": "x"}
_MIN_DIAMETER = (
    "Smallest expected nuclear diameter: objects below 0.7 x this are dropped. Empty: "
    "half the diameter estimated from each image."
)
_MAX_DIAMETER = (
    "Largest expected nuclear diameter: objects above 1.3 x this are dropped. Empty: "
    "twice the diameter estimated from each image."
)
_NECK = (
    "Touching bodies are split only where the neck between them is at least this "
    "fraction narrower than the smaller body."
)
_BORDER = "Drop the objects that touch the image border."

#: Foreground pixels exceed the background by at least this many noise SDs (the
#: classical segmenter's ``min_contrast`` default, and the diameter estimate's floor).
MIN_CONTRAST = 4.0


#: Diameter range (px) used when none is given and the image shows no foreground.
DEFAULT_RANGE = (10.0, 50.0)


class ClassicalParams(BaseModel):
    """Parameters of the classical segmenter (``recipe.params``).

    Every parameter has a default that needs no tuning per camera or magnification:
    intensities are measured relative to the image's own background
    (:mod:`plateseg.segmentation.preprocess`) and the nuclear scale is estimated from
    the image when no diameter is given.

    Attributes
    ----------
    min_diameter, max_diameter : float or None
        Expected nuclear diameter range in pixels. Objects whose equivalent diameter
        falls outside ``[0.7 * min, 1.3 * max]`` are discarded, and maxima closer than
        ``min_diameter / 2`` are merged when declumping. ``None`` (default): ``0.5 x``
        and ``2 x`` the diameter estimated from the image
        (:func:`~plateseg.segmentation.preprocess.estimate_diameter`; 10 and 50 px on a
        field with no foreground).
    smoothing_sigma : float or None
        Gaussian sigma in pixels before thresholding (0 = none); ``None`` =
        ``max(1, min_diameter / 14)`` (1 px for nuclei ~30 px across, in proportion above).
    threshold_method : {"otsu", "otsu3", "li"}
        Threshold of the background-free image: Otsu's two-class variance, three-class
        Otsu (the middle class counts as foreground), or Li's minimum cross-entropy
        (the default, as in CellProfiler: it keeps the dim nucleoplasm of textured
        nuclei; Otsu cuts mouse nuclei with bright chromocentres into pieces).
    threshold_correction : float
        Multiplies the computed threshold of the *background-free* image (1 = none).
    threshold_scope : {"adaptive", "global"}
        ``adaptive``: a pixel is foreground when it is above the global threshold *and*
        above ``w * local + (1 - w) * global``, with ``local`` the image smoothed by
        ``adaptive_sigma`` and ``w = adaptive_weight``: touching nuclei separated by a
        dimmer seam fall apart, but so does the nucleoplasm between bright chromatin
        spots. ``global`` (default): the global threshold only; touching nuclei are
        split by declumping.
    adaptive_sigma : float or None
        Scale of the local mean, pixels; ``None`` = ``0.3 * min_diameter``.
    adaptive_weight : float
        Weight of the local mean in the local threshold, 0..1.
    min_contrast : float
        A pixel is foreground only when it exceeds the background by this many noise
        standard deviations (robust, from the background pixels), whatever the
        threshold method and correction say (capped at half a typical nucleus's
        brightness, as a crowded field's background spread includes nuclear edges).
        On an empty field Otsu would split the noise into specks; this floor keeps it
        empty without any field-level rule, so a field with real nuclei is never
        declared empty. 0 disables it.
    declump : bool
        Split touching nuclei with a distance-transform watershed.
    neck_depth : float
        Two touching bodies are split only where the neck between them is at least this
        fraction narrower than the smaller body (distance-transform saddle vs. peak).
    fill_holes : bool
        Fill holes inside objects.
    exclude_border : bool
        Discard objects that touch the image border.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_diameter: float | None = Field(
        default=None, gt=1.0, le=1000.0, description=_MIN_DIAMETER, json_schema_extra=_PX
    )
    max_diameter: float | None = Field(
        default=None, gt=1.0, le=2000.0, description=_MAX_DIAMETER, json_schema_extra=_PX
    )
    smoothing_sigma: float | None = Field(
        default=None,
        ge=0.0,
        le=20.0,
        description="Gaussian smoothing before thresholding (0 = none); empty: 1 px for "
        "nuclei ~30 px across, in proportion above.",
        json_schema_extra=_PX,
    )
    threshold_method: Literal["otsu", "otsu3", "li"] = Field(
        default="li",
        description="Threshold of the background-free image: Li's minimum cross-entropy "
        "(CellProfiler's default; keeps the dim nucleoplasm of textured nuclei), Otsu, or "
        "three-class Otsu (the middle class counts as nucleus).",
    )
    threshold_correction: float = Field(
        default=1.0,
        gt=0.0,
        le=10.0,
        description="Multiplies the computed threshold (1 = as computed; above 1 "
        "shrinks the objects).",
        json_schema_extra=_FACTOR,
    )
    threshold_scope: Literal["adaptive", "global"] = Field(
        default="global",
        description="global: one threshold; adaptive: a pixel must also exceed a mix of "
        "its local mean and the global threshold (splits nuclei with a dim seam, but can "
        "cut textured ones).",
    )
    adaptive_sigma: float | None = Field(
        default=None,
        gt=0.0,
        le=200.0,
        description="Scale of the local mean of the adaptive scope; empty: 0.3 x the "
        "smallest diameter.",
        json_schema_extra=_PX,
    )
    adaptive_weight: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="Weight of the local mean in the adaptive threshold (0-1).",
        json_schema_extra=_FRACTION,
    )
    min_contrast: float = Field(
        default=MIN_CONTRAST,
        ge=0.0,
        le=1000.0,
        description="A pixel is foreground only this many background noise SDs above "
        "the background, whatever the threshold says (keeps empty fields empty; 0 = off).",
        json_schema_extra={"unit": "noise SD"},
    )
    declump: bool = Field(
        default=True, description="Split touching nuclei at the necks of their shape."
    )
    neck_depth: float = Field(
        default=0.05, gt=0.0, lt=1.0, description=_NECK, json_schema_extra=_FRACTION
    )
    fill_holes: bool = Field(default=True, description="Fill holes inside the nuclei.")
    exclude_border: bool = Field(default=False, description=_BORDER)

    @model_validator(mode="after")
    def _ordered(self) -> ClassicalParams:
        low, high = self.min_diameter, self.max_diameter
        if low is not None and high is not None and high < low:
            raise ValueError(f"max_diameter ({high}) must be >= min_diameter ({low})")
        return self

    def sized(self, diameter: float | None) -> ClassicalParams:
        """These parameters with every scale-dependent ``None`` filled in from the
        typical nuclear ``diameter`` (``None``: no foreground; 10-50 px assumed)."""
        low, high = self.min_diameter, self.max_diameter
        if low is None and high is None:
            low, high = (0.5 * diameter, 2.0 * diameter) if diameter else DEFAULT_RANGE
        elif low is None:  # only the largest given: at least a 4x range below it
            assert high is not None
            low = min(0.5 * diameter if diameter else DEFAULT_RANGE[0], 0.25 * high)
        elif high is None:  # only the smallest given: at least a 4x range above it
            high = max(4.0 * low, 2.0 * diameter if diameter else DEFAULT_RANGE[1])
        assert low is not None and high is not None
        sigma = self.smoothing_sigma
        if sigma is None:
            sigma = max(1.0, low / 14.0)
        return self.model_copy(
            update={"min_diameter": low, "max_diameter": high, "smoothing_sigma": sigma}
        )


#: The model the ``onnx`` segmenter uses when the recipe names none: the shipped
#: learned nuclei model (see ``plateseg/models/README.md``).
DEFAULT_MODEL = "nuclei-unet"
#: A model name: one safe path segment, no extension.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class ModelParams(BaseModel):
    """Parameters of the ``onnx`` and ``trainable`` segmenters (``recipe.params``).

    Attributes
    ----------
    model : str
        Model name: ``models/<model>.onnx`` in the store, else the shipped model
        (default :data:`DEFAULT_MODEL`).
    probability : float
        Foreground probability threshold.
    tile : int
        Tile side in model pixels (after downsampling); bounds memory.
    overlap : int or None
        Context pixels on each side of a tile; ``None`` = the model's own need.
    diameter : float or None
        Typical nuclear diameter in pixels for ``nuclei-3class`` models (the field is
        rescaled to the model's training scale); ``None`` = estimated from the image.
    min_diameter, max_diameter, declump, neck_depth, exclude_border
        As for the classical segmenter: post-processing of the thresholded mask of
        pixel classifiers (``None``: 10 and 50 px). For ``nuclei-3class`` models only
        the size filter (when given) and ``exclude_border`` apply.
    model_sha256 : str or None
        The SHA-256 of the model bytes the run is pinned to. Lookup sets it (and copies
        the bytes to ``runs/<run_id>/model.onnx``); every batch segments with exactly
        those bytes (:func:`plateseg.pipeline.segment.segment_batch`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        default=DEFAULT_MODEL,
        pattern=MODEL_NAME_PATTERN,
        description="The model: one of the store's models/<name>.onnx, else a shipped one.",
    )
    probability: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="A pixel is nucleus above this predicted probability.",
        json_schema_extra=_FRACTION,
    )
    tile: int = Field(
        default=512,
        ge=64,
        le=4096,
        description="Tile side the model runs on (model pixels); bounds memory.",
        json_schema_extra=_PX,
    )
    overlap: int | None = Field(
        default=None,
        ge=0,
        le=512,
        description="Context on each side of a tile; empty: what the model needs.",
        json_schema_extra=_PX,
    )
    diameter: float | None = Field(
        default=None,
        gt=2.0,
        le=400.0,
        description="Typical nuclear diameter; the field is rescaled to the model's "
        "training scale. Empty: estimated from each image.",
        json_schema_extra=_PX,
    )
    min_diameter: float | None = Field(
        default=None, gt=1.0, le=1000.0, description=_MIN_DIAMETER, json_schema_extra=_PX
    )
    max_diameter: float | None = Field(
        default=None, gt=1.0, le=2000.0, description=_MAX_DIAMETER, json_schema_extra=_PX
    )
    declump: bool = Field(
        default=True,
        description="Split touching nuclei (pixel classifiers; the learned model keeps "
        "nuclei apart by their predicted boundaries).",
    )
    neck_depth: float = Field(
        default=0.05, gt=0.0, lt=1.0, description=_NECK, json_schema_extra=_FRACTION
    )
    exclude_border: bool = Field(default=False, description=_BORDER)
    model_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Set by Lookup: the SHA-256 of the model bytes the run is pinned to.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ModelParams:
        low, high = self.min_diameter, self.max_diameter
        if low is not None and high is not None and high < low:
            raise ValueError(f"max_diameter ({high}) must be >= min_diameter ({low})")
        return self


class SecondaryParams(BaseModel):
    """``recipe.secondary``: how to find cells around the nuclei.

    Attributes
    ----------
    smoothing_sigma : float
        Gaussian sigma of the cytoplasm channel before thresholding, pixels.
    threshold_correction : float
        Multiplies the Otsu threshold of the cytoplasm channel.
    max_distance : float
        Largest distance of a cell pixel from its nucleus, pixels.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    smoothing_sigma: float = Field(
        default=2.0,
        ge=0.0,
        le=20.0,
        description="Gaussian smoothing of the cytoplasm channel before thresholding.",
        json_schema_extra=_PX,
    )
    threshold_correction: float = Field(
        default=1.0,
        gt=0.0,
        le=10.0,
        description="Multiplies the Otsu threshold of the cytoplasm channel.",
        json_schema_extra=_FACTOR,
    )
    max_distance: float = Field(
        default=60.0,
        gt=0.0,
        le=1000.0,
        description="Largest distance of a cell pixel from its nucleus.",
        json_schema_extra=_PX,
    )


#: The segmenters a recipe may name, and the model of their ``params``.
SEGMENTER_PARAMS: dict[str, type[BaseModel]] = {
    "classical": ClassicalParams,
    "onnx": ModelParams,
    "trainable": ModelParams,
}


def parse_params(recipe: Recipe) -> BaseModel:
    """``recipe.params`` as its segmenter's model (defaults filled in).

    Raises
    ------
    RecipeError
        Unknown segmenter (naming the known ones), or a bad parameter named as
        ``recipe.params.<field>: ...``.
    """
    model = SEGMENTER_PARAMS.get(recipe.segmenter)
    if model is None:
        known = ", ".join(sorted(SEGMENTER_PARAMS))
        raise RecipeError(
            f"recipe.segmenter: unknown segmenter {recipe.segmenter!r} (known: {known})"
        )
    try:
        return model.model_validate(recipe.params)
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, "recipe.params")) from None


def parse_secondary(recipe: Recipe) -> SecondaryParams | None:
    """``recipe.secondary`` as :class:`SecondaryParams`, ``None`` when the recipe asks for
    no cells; :class:`RecipeError` when it is invalid or there is no ``cells`` channel."""
    if recipe.secondary is None:
        return None
    if "cells" not in recipe.channels:
        raise RecipeError("recipe.secondary: needs a 'cells' channel role in recipe.channels")
    try:
        return SecondaryParams.model_validate(recipe.secondary)
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, "recipe.secondary")) from None


def validate_recipe(recipe: Recipe) -> Recipe:
    """Check ``recipe.params`` (and ``recipe.secondary``) against the segmenter; return the
    recipe with every default filled in.

    Raises
    ------
    RecipeError
        Unknown segmenter, or a bad parameter named as ``recipe.params.<field>: ...``.
    """
    update: dict[str, Any] = {"params": parse_params(recipe).model_dump()}
    secondary = parse_secondary(recipe)
    if secondary is not None:
        update["secondary"] = secondary.model_dump()
    return recipe.model_copy(update=update)


def canonical_recipe_json(recipe: Recipe | dict[str, Any]) -> str:
    """The recipe (a model or its JSON dump) as canonical JSON: sorted keys, no spaces,
    UTF-8 as is. The run's ``recipe_hash`` and the batch checkpoints' digests are
    computed from this one text.

    >>> canonical_recipe_json({"segmenter": "classical", "params": {}})
    '{"params":{},"segmenter":"classical"}'
    """
    data = recipe if isinstance(recipe, dict) else recipe.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
