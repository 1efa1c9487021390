"""Segmenters, their registry, and one call that segments and measures a field.

>>> from plateseg.contracts import Recipe
>>> validate_recipe(Recipe(params={"min_diameter": 8})).params["min_diameter"]
8.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from plateseg.contracts import Recipe, format_validation_error
from plateseg.errors import ImageShapeError, RecipeError

__all__ = ["FieldResult", "Segmenter", "get_segmenter", "segment_field", "validate_recipe"]


@dataclass(frozen=True)
class FieldResult:
    """Segmentation and measurements of one field of view.

    Attributes
    ----------
    labels : np.ndarray
        (Y, X) uint16 nuclear labels (uint32 above 65534 objects), 0 = background.
    objects : dict of str to np.ndarray
        Per-object columns (see :mod:`plateseg.segmentation.measure`), each (n,).
    metrics : dict of str to float or None
        Per-image summary metrics.
    object_count : int
    """

    labels: np.ndarray
    objects: dict[str, np.ndarray]
    metrics: dict[str, float | None]
    object_count: int


@dataclass(frozen=True)
class Segmenter:
    """A registered segmenter: its parameter model and its function.

    ``run(nuclei_image, params)`` returns ``(labels, threshold, foreground_fraction)``.
    """

    name: str
    params_model: type[BaseModel]
    run: Callable[[np.ndarray, Any], tuple[np.ndarray, float | None, float | None]]


def _classical() -> Segmenter:
    from plateseg.segmentation.classical import ClassicalParams, segment_nuclei

    def run(image: np.ndarray, params: Any) -> tuple[np.ndarray, float | None, float | None]:
        result = segment_nuclei(image, params)
        return result.labels, result.threshold, result.foreground_fraction

    return Segmenter("classical", ClassicalParams, run)


_REGISTRY: dict[str, Callable[[], Segmenter]] = {"classical": _classical}


def get_segmenter(name: str) -> Segmenter:
    """The segmenter registered as ``name``; :class:`RecipeError` listing the known ones."""
    factory = _REGISTRY.get(name)
    if factory is None:
        known = ", ".join(sorted(_REGISTRY))
        raise RecipeError(f"recipe.segmenter: unknown segmenter {name!r} (known: {known})")
    return factory()


def validate_recipe(recipe: Recipe) -> Recipe:
    """Check ``recipe.params`` against its segmenter; return it with defaults filled in.

    Raises
    ------
    RecipeError
        Unknown segmenter, or a bad parameter named as ``recipe.params.<field>: ...``.
    """
    segmenter = get_segmenter(recipe.segmenter)
    try:
        params = segmenter.params_model.model_validate(recipe.params)
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, "recipe.params")) from None
    return recipe.model_copy(update={"params": params.model_dump()})


def segment_field(images: dict[str, np.ndarray], recipe: Recipe) -> FieldResult:
    """Segment nuclei in the recipe's nuclei channel and measure every channel.

    Parameters
    ----------
    images : dict of str to np.ndarray
        Channel name → (Y, X) image, all the same shape; must hold the channel the
        recipe maps to the ``nuclei`` role. Intensities are measured in every channel.
    recipe : Recipe

    Returns
    -------
    FieldResult

    Raises
    ------
    RecipeError
        The recipe is invalid.
    ImageShapeError
        The nuclei channel is missing.
    """
    from plateseg.segmentation.measure import image_metrics, measure_objects

    segmenter = get_segmenter(recipe.segmenter)
    try:
        params = segmenter.params_model.model_validate(recipe.params)
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, "recipe.params")) from None
    nuclei = recipe.channels["nuclei"]
    if nuclei not in images:
        raise ImageShapeError(
            f"channel {nuclei}", f"the nuclei channel {nuclei!r} is not among {sorted(images)}"
        )
    labels, threshold, foreground = segmenter.run(images[nuclei], params)
    objects = measure_objects(labels, images)
    metrics = image_metrics(objects, list(images), threshold, foreground)
    return FieldResult(labels, objects, metrics, len(objects["ObjectNumber"]))
