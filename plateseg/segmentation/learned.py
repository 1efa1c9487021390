"""Nuclei from a three-class network (``plateseg.kind = nuclei-3class``, e.g. the shipped
``nuclei-unet``): scale, predict, and turn class probabilities into instances.

Inference, step by step::

    raw ─► normalise (background removed, median nucleus = 1; preprocess.normalise)
        ─► nuclear diameter d (recipe's ``diameter``, else preprocess.estimate_diameter)
        ─► resize by D / d (D = the model's training diameter; skipped within ±10 %;
           enlarged to at most MAX_MODEL_PIXELS)
        ─► network, tile by tile (tiles of ``tile`` px + 32 px context each side)
        ─► P(interior), P(nucleus) = P(interior) + P(boundary), at model scale:
           seeds = connected components of P(interior) > 0.5, split at narrow necks;
           each seed grown by up to GROWTH (4) model pixels into P(nucleus) > 0.5;
           objects below 5 % of a typical nucleus's area dropped, and objects whose
           mean intensity is not OBJECT_CONTRAST (3) noise SDs above the background
        ─► back to full resolution: each pixel with upsampled P(nucleus) > 0.5 takes
           the label of its nearest model pixel (outlines as smooth as the probability)

The boundary class is a thin ring around every nucleus, so touching nuclei have separate
interiors: the seeds are the instances, and growing them back over the ring restores
their outline. There is no field-level "empty field" rule that could drop a field with
real nuclei: on an empty field the network finds (almost) nothing, and what it finds
in the noise is below the per-object contrast floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from plateseg.errors import ModelError
from plateseg.segmentation.filters import relabel
from plateseg.segmentation.preprocess import Normalised, estimate_diameter, normalise, resize

if TYPE_CHECKING:
    from plateseg.segmentation.onnx_model import LoadedModel

__all__ = ["LearnedSegmentation", "ModelInput", "model_input", "predict_classes", "segment_learned"]

#: An object's mean intensity must exceed the background by this many noise SDs (pixel
#: noise; the mean of an object is far less noisy). Noise specks the network takes for
#: nuclei on an empty demo well have means of ~1.5 SD; 4 SD also removed 9 real dim
#: nuclei of the DSB 2018 benchmark image (whose noise estimate is inflated by uneven
#: background), 3 SD removes 1 of them.
OBJECT_CONTRAST = 3.0
#: Seeds grow back over the boundary ring by up to this many model pixels.
GROWTH = 4
#: Context (model pixels) around each tile; the U-Net's useful receptive field.
MARGIN = 32
#: Rescaling is skipped when the field's nuclei are within this ratio of the model's.
SCALE_TOLERANCE = 1.1
#: A field is enlarged (nuclei smaller than the model's scale) to at most this many
#: pixels: 3 float32 probability maps of 16.8 Mpx are ~200 MB.
MAX_MODEL_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class LearnedSegmentation:
    """Result of :func:`segment_learned`.

    Attributes
    ----------
    labels : np.ndarray
        (Y, X) uint16 labels (uint32 above 65534 objects).
    diameter : float
        Nuclear diameter (px) the field was rescaled from (given or estimated).
    foreground_fraction : float
        Fraction of pixels with P(nucleus) > ``probability``.
    """

    labels: np.ndarray
    diameter: float
    foreground_fraction: float


def predict_classes(model: LoadedModel, image: np.ndarray, tile: int = 512) -> np.ndarray:
    """Class probabilities ``(3, y, x)`` float32 of a normalised image at model scale."""
    session = model.session
    name = session.get_inputs()[0].name
    height, width = image.shape
    out = np.zeros((3, height, width), np.float32)
    m = model.multiple
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            ty0, tx0 = max(y0 - MARGIN, 0), max(x0 - MARGIN, 0)
            ty1, tx1 = min(y1 + MARGIN, height), min(x1 + MARGIN, width)
            piece = image[ty0:ty1, tx0:tx1]
            ph, pw = piece.shape
            pad_h, pad_w = -(-ph // m) * m - ph, -(-pw // m) * m - pw
            if min(ph, pw) > max(pad_h, pad_w):
                batch = np.pad(piece, ((0, pad_h), (0, pad_w)), mode="reflect")
            else:
                batch = np.pad(piece, ((0, pad_h), (0, pad_w)), mode="edge")
            probs = np.asarray(session.run(None, {name: batch[None, None]})[0], np.float32)
            if probs.ndim != 4 or probs.shape[1] != 3 or probs.shape[2:] != batch.shape:
                raise ModelError(
                    f"model {model.name!r}: output has shape {probs.shape}, "
                    f"expected (1, 3, {batch.shape[0]}, {batch.shape[1]})"
                )
            out[:, y0:y1, x0:x1] = probs[0, :, y0 - ty0 : y1 - ty0, x0 - tx0 : x1 - tx0]
    return out


@dataclass(frozen=True)
class ModelInput:
    """A field as the network sees it (:func:`model_input`).

    Attributes
    ----------
    image : np.ndarray
        (y, x) float32 normalised field at model scale.
    normalised : Normalised
        The full-resolution normalisation (noise, scale, background).
    diameter : float
        Nuclear diameter (px, full resolution) the field was rescaled from.
    """

    image: np.ndarray
    normalised: Normalised
    diameter: float


def model_input(image: np.ndarray, model: LoadedModel, diameter: float | None = None) -> ModelInput:
    """Normalise a raw field and resize it so its nuclei are the model's training size.

    The one preprocessing of a ``nuclei-3class`` network, shared by inference
    (:func:`segment_learned`) and fine-tuning (:mod:`plateseg.finetune`).

    Raises
    ------
    ModelError
        ``model`` is not a ``nuclei-3class`` model.
    """
    if model.kind != "nuclei-3class" or model.diameter is None:
        raise ModelError(f"model {model.name!r} is of kind {model.kind!r}, not nuclei-3class")
    shape = (int(image.shape[0]), int(image.shape[1]))
    normalised = normalise(image)
    if diameter is None:
        diameter = estimate_diameter(normalised) or model.diameter
    factor = model.diameter / diameter
    if 1 / SCALE_TOLERANCE <= factor <= SCALE_TOLERANCE:
        factor = 1.0
    # nuclei smaller than the model's: enlarge, but never past MAX_MODEL_PIXELS (memory)
    factor = min(factor, max(1.0, math.sqrt(MAX_MODEL_PIXELS / (shape[0] * shape[1]))))
    small_shape = (max(8, round(shape[0] * factor)), max(8, round(shape[1] * factor)))
    return ModelInput(resize(normalised.image, small_shape, order=1), normalised, float(diameter))


def segment_learned(
    image: np.ndarray,
    model: LoadedModel,
    diameter: float | None = None,
    probability: float = 0.5,
    tile: int = 512,
) -> LearnedSegmentation:
    """Segment nuclei with a ``nuclei-3class`` model (see the module docstring).

    Parameters
    ----------
    image : np.ndarray
        (Y, X) nuclear stain, any real dtype, offset or gain.
    model : LoadedModel
        A model of kind ``nuclei-3class``.
    diameter : float, optional
        Typical nuclear diameter in pixels; estimated from the image when ``None``.
    probability : float
        Threshold on P(interior) for seeds and on P(nucleus) for their extent.
    tile : int
        Tile side at model scale (bounds memory).
    """
    shape = (int(image.shape[0]), int(image.shape[1]))
    prepared = model_input(image, model, diameter)
    normalised, diameter, small = prepared.normalised, prepared.diameter, prepared.image
    small_shape = (int(small.shape[0]), int(small.shape[1]))
    probs = predict_classes(model, small, tile)
    # instances at model scale (where nuclei are D px across), outlines at full scale
    nucleus = probs[1] + probs[2]
    scaled = diameter * small_shape[0] / shape[0]
    seeds, count = _seeds(probs[1] > probability, scaled)
    grown = _grow(seeds, count, nucleus > probability, GROWTH)
    floor = OBJECT_CONTRAST * normalised.noise / normalised.scale
    grown = _keep(grown, small, 0.05 * math.pi * scaled**2 / 4, floor)
    if small_shape == shape:
        return LearnedSegmentation(grown, float(diameter), float((nucleus > probability).mean()))
    foreground = resize(nucleus, shape, order=1) > probability
    labels = np.where(foreground, resize(grown, shape, order=0), 0)
    present = np.bincount(labels.ravel(), minlength=int(grown.max()) + 1) > 0
    return LearnedSegmentation(relabel(labels, present), float(diameter), float(foreground.mean()))


#: Interiors joined by a bridge are split where the bridge is at least this much narrower
#: than the smaller body. On 10 BBBC039 training images / 6 synthetic fields (AP@0.5):
#: no splitting 0.887 / 0.927; neck 0.05: 0.842 / 1.000; 0.2: 0.891 / 0.993; 0.35:
#: 0.894 / 0.985.
NECK_DEPTH = 0.25


def _seeds(mask: np.ndarray, diameter: float) -> tuple[np.ndarray, int]:
    """Instances of the interior mask: its connected components, two interiors joined by
    a narrow bridge split at the neck (the classical segmenter's shape declumping,
    maxima closer than a quarter nucleus merged); seeds too small for the declumping's
    size filter are kept as they are."""
    from plateseg.contracts.params import ClassicalParams
    from plateseg.segmentation.classical import labels_from_mask

    params = ClassicalParams(
        min_diameter=0.5 * diameter, max_diameter=4.0 * diameter, neck_depth=NECK_DEPTH
    )
    labels = labels_from_mask(mask, params).astype(np.int32)
    count = int(labels.max())
    rest, extra = ndi.label(mask & (labels == 0))  # small seeds the size filter left out
    labels[rest > 0] = rest[rest > 0] + count
    return labels, count + int(extra)


def _grow(seeds: np.ndarray, count: int, allowed: np.ndarray, distance: int) -> np.ndarray:
    """Grow labelled seeds by up to ``distance`` px into ``allowed`` (nearest seed wins)."""
    if count == 0:
        return seeds
    from skimage.segmentation import expand_labels

    grown = expand_labels(seeds, distance)
    return np.where(allowed | (seeds > 0), grown, 0)


def _keep(labels: np.ndarray, image: np.ndarray, min_area: float, floor: float) -> np.ndarray:
    """Remove objects smaller than ``min_area`` pixels or whose mean normalised intensity
    is below ``floor`` (noise the network took for a nucleus); renumber 1..n
    (uint16/uint32)."""
    flat = labels.ravel()
    areas = np.bincount(flat)
    sums = np.bincount(flat, weights=image.ravel(), minlength=len(areas))
    return relabel(labels, (areas >= min_area) & (sums >= floor * np.maximum(areas, 1)))
