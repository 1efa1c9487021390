"""Segmenters, their registry, and one call that segments and measures a field.

>>> from plateseg.contracts import Recipe
>>> validate_recipe(Recipe(params={"min_diameter": 8})).params["min_diameter"]
8.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from plateseg.contracts import Recipe
from plateseg.contracts.params import (
    SEGMENTER_PARAMS,
    parse_params,
    parse_secondary,
    validate_recipe,
)
from plateseg.errors import ImageShapeError, ModelError, RecipeError

if TYPE_CHECKING:
    from plateseg.store import Store

__all__ = ["FieldResult", "Segmenter", "get_segmenter", "segment_field", "validate_recipe"]


@dataclass(frozen=True)
class FieldResult:
    """Segmentation and measurements of one field of view.

    Attributes
    ----------
    labels : np.ndarray
        (Y, X) uint16 nuclear labels (uint32 above 65534 objects), 0 = background.
    objects : dict of str to np.ndarray
        Per-object columns (see :mod:`plateseg.segmentation.measure`), each (n,);
        with ``recipe.secondary`` also the ``Cells_`` columns of each nucleus's cell.
    metrics : dict of str to float or None
        Per-image summary metrics.
    object_count : int
    cells : np.ndarray or None
        (Y, X) cell labels (cell i holds nucleus i) when the recipe asks for them.
    """

    labels: np.ndarray
    objects: dict[str, np.ndarray]
    metrics: dict[str, float | None]
    object_count: int
    cells: np.ndarray | None = None


@dataclass(frozen=True)
class Segmenter:
    """A registered segmenter: its parameter model and its function.

    ``run(nuclei_image, params, store)`` returns ``(labels, threshold,
    foreground_fraction)``; ``store`` (may be ``None``) is where models are read from.
    """

    name: str
    params_model: type[BaseModel]
    run: Callable[[np.ndarray, Any, Any], tuple[np.ndarray, float | None, float | None]]


Outcome = tuple[np.ndarray, float | None, float | None]


def _classical() -> Segmenter:
    from plateseg.segmentation.classical import segment_nuclei

    def run(image: np.ndarray, params: Any, store: Any) -> Outcome:
        result = segment_nuclei(image, params)
        return result.labels, result.threshold, result.foreground_fraction

    return Segmenter("classical", SEGMENTER_PARAMS["classical"], run)


def _onnx() -> Segmenter:
    from plateseg.segmentation.onnx_model import segment_with_model

    def run(image: np.ndarray, params: Any, store: Any) -> Outcome:
        return segment_with_model(image, params, store)

    return Segmenter("onnx", SEGMENTER_PARAMS["onnx"], run)


def _trainable() -> Segmenter:
    from plateseg.segmentation.onnx_model import load_model, segment_with_model

    def run(image: np.ndarray, params: Any, store: Any) -> Outcome:
        model = load_model(params.model, store)
        if model.kind != "pixel-features":
            raise ModelError(
                f"recipe.params.model: {params.model!r} is not a trained pixel classifier "
                f"(kind {model.kind!r}); use the 'onnx' segmenter for it"
            )
        return segment_with_model(image, params, store)

    return Segmenter("trainable", SEGMENTER_PARAMS["trainable"], run)


#: How each segmenter of :data:`~plateseg.contracts.params.SEGMENTER_PARAMS` runs (the
#: same names: a test keeps the two in step).
_REGISTRY: dict[str, Callable[[], Segmenter]] = {
    "classical": _classical,
    "onnx": _onnx,
    "trainable": _trainable,
}


def get_segmenter(name: str) -> Segmenter:
    """The segmenter registered as ``name``; :class:`RecipeError` listing the known ones."""
    factory = _REGISTRY.get(name)
    if factory is None:
        known = ", ".join(sorted(_REGISTRY))
        raise RecipeError(f"recipe.segmenter: unknown segmenter {name!r} (known: {known})")
    return factory()


def _mean_scaled(image: np.ndarray) -> float:
    """Mean intensity of a whole image on the 0..1 scale of the measurements."""
    mean = float(np.mean(image, dtype=np.float64))
    if image.dtype.kind in "ui":
        mean /= np.iinfo(image.dtype).max
    return mean


def segment_field(
    images: dict[str, np.ndarray],
    recipe: Recipe,
    store: Store | None = None,
    params: BaseModel | None = None,
) -> FieldResult:
    """Segment nuclei in the recipe's nuclei channel and measure every channel.

    Parameters
    ----------
    images : dict of str to np.ndarray
        Channel name → (Y, X) image, all the same shape; must hold the channel the
        recipe maps to the ``nuclei`` role. Intensities are measured in every channel.
    recipe : Recipe
    store : Store, optional
        Where the ``onnx`` and ``trainable`` segmenters read ``models/<name>.onnx``;
        without it they use the models shipped in the package.
    params : BaseModel, optional
        ``recipe.params`` already parsed (:func:`~plateseg.contracts.params.parse_params`),
        so that a batch validates its recipe once, not once per field.

    Returns
    -------
    FieldResult

    Raises
    ------
    RecipeError
        The recipe is invalid (:class:`ModelError`: its model is missing or invalid).
    ImageShapeError
        The nuclei channel is missing.
    """
    from plateseg.segmentation.measure import image_metrics, measure_objects
    from plateseg.segmentation.quality import image_quality

    segmenter = get_segmenter(recipe.segmenter)
    params = parse_params(recipe) if params is None else params
    nuclei = recipe.channels["nuclei"]
    if nuclei not in images:
        raise ImageShapeError(
            f"channel {nuclei}", f"the nuclei channel {nuclei!r} is not among {sorted(images)}"
        )
    labels, threshold, foreground = segmenter.run(images[nuclei], params, store)
    objects = measure_objects(labels, images)
    metrics = image_metrics(objects, list(images), threshold, foreground)
    for channel, image in images.items():
        metrics[f"Image_Intensity_MeanIntensity_{channel}"] = _mean_scaled(image)
    metrics.update(image_quality(images, labels, nuclei))
    cells = None
    if recipe.secondary is not None and recipe.channels.get("cells") in images:
        from plateseg.segmentation.secondary import cell_metrics, segment_cells

        secondary = parse_secondary(recipe)
        assert secondary is not None
        cells, cell_threshold = segment_cells(images[recipe.channels["cells"]], labels, secondary)
        measured = measure_objects(cells, images)
        cell_objects = {f"Cells_{k}": v for k, v in measured.items() if k != "ObjectNumber"}
        objects.update(cell_objects)
        metrics.update(cell_metrics(cell_objects, list(images), cell_threshold))
    return FieldResult(labels, objects, metrics, len(objects["ObjectNumber"]), cells)
