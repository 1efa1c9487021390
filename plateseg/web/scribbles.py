"""Train a ``trainable`` model from scribbles painted in the browser.

The browser paints on a picture of the field's nuclei channel that is at most
:data:`CANVAS_MAX_SIDE` pixels wide (the field, strided by :func:`canvas_step`), and
sends its label mask run-length encoded, row by row: ``rle = [value, length, value,
length, …]`` with values ``0`` (unlabelled), ``1`` (background) and ``2`` (nucleus)
— the convention of :mod:`plateseg.segmentation.trainable`. The mask is decoded,
checked, brought back to the field's full resolution and handed to
:func:`~plateseg.segmentation.trainable.train_pixel_classifier`; the model is stored
as ``models/<name>.onnx`` and applied to the painted fields as a preview.

>>> decode_rle([0, 3, 2, 1], 2, 2, "field 1").tolist()
[[0, 0], [0, 2]]
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace as replace_info
from typing import Any

import numpy as np

from plateseg.contracts import ManifestItem, Planes, Recipe
from plateseg.errors import InputError
from plateseg.segmentation.model_store import ModelFormError, ModelInfo, provenance_key, store_model
from plateseg.store import Store

__all__ = [
    "CANVAS_MAX_SIDE",
    "Scribble",
    "TrainedModel",
    "canvas_png",
    "canvas_shape",
    "canvas_step",
    "decode_rle",
    "full_resolution",
    "train_from_scribbles",
]

#: Longest side of the picture the scientist paints on.
CANVAS_MAX_SIDE = 1024
_VALUES = (0, 1, 2)


def canvas_step(shape: tuple[int, ...]) -> int:
    """Stride from a field of ``shape`` (Y, X) to its canvas picture (1 up to 1024 px)."""
    return max(1, int(np.ceil(max(shape[:2]) / CANVAS_MAX_SIDE)))


def canvas_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(Y, X) of the canvas picture of a field of ``shape``: the field strided by its step."""
    step = canvas_step(shape)
    return -(-int(shape[0]) // step), -(-int(shape[1]) // step)


def canvas_png(image: np.ndarray) -> bytes:
    """The picture to paint on: the (Y, X) image contrast-stretched, strided, grey PNG.

    Returns
    -------
    bytes
        A uint8 PNG of shape ``(ceil(Y / step), ceil(X / step))``, ``step =
        canvas_step(image.shape)``.
    """
    from PIL import Image as PILImage

    from plateseg.web.render import display_image

    step = canvas_step(image.shape)
    buffer = io.BytesIO()
    PILImage.fromarray(display_image(image[::step, ::step])).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_rle(
    rle: Sequence[int], height: int, width: int, where: str, values: Sequence[int] = _VALUES
) -> np.ndarray:
    """A (height, width) uint8 label mask from ``[value, length, …]`` runs, row-major.

    ``values`` are the label values allowed: 0/1/2 for the pixel classifier, 0-3 for a
    fine-tune (3 = separator, :mod:`plateseg.finetune.labels`).

    Raises
    ------
    ModelFormError
        ``{"scribbles": …}``: odd length, a value outside ``values``, a run shorter than
        1, or runs that do not cover exactly ``height * width`` pixels.
    """
    runs = np.asarray(rle, dtype=np.int64)
    if runs.ndim != 1 or runs.size % 2:
        raise ModelFormError({"scribbles": f"{where}: rle must be [value, length, …] pairs"})
    lengths = runs[1::2]
    allowed = list(values)
    runs_of = runs[0::2]
    if not np.isin(runs_of, allowed).all():
        bad = sorted(set(runs_of[~np.isin(runs_of, allowed)].tolist()))[:3]
        named = ", ".join(str(v) for v in allowed[:-1]) + f" or {allowed[-1]}"
        raise ModelFormError({"scribbles": f"{where}: label values must be {named}, got {bad}"})
    if (lengths < 1).any():
        raise ModelFormError({"scribbles": f"{where}: every run must be at least 1 pixel long"})
    total = int(lengths.sum())
    if total != height * width:
        raise ModelFormError(
            {
                "scribbles": f"{where}: runs cover {total:,} pixels, the {height} x {width} "
                f"mask has {height * width:,}"
            }
        )
    return np.repeat(runs_of.astype(np.uint8), lengths).reshape(height, width)


def full_resolution(mask: np.ndarray, shape: tuple[int, int], where: str) -> np.ndarray:
    """The canvas-sized ``mask`` repeated back to a field of ``shape`` (or as is, if equal).

    Raises
    ------
    ModelFormError
        The mask is neither the field's shape nor its canvas shape.
    """
    if mask.shape == shape:
        return mask
    step = canvas_step(shape)
    canvas = canvas_shape(shape)
    if mask.shape != canvas:
        raise ModelFormError(
            {
                "scribbles": f"{where}: a {mask.shape[0]} x {mask.shape[1]} mask fits neither "
                f"the field ({shape[0]} x {shape[1]}) nor its canvas ({canvas[0]} x {canvas[1]})"
            }
        )
    big = np.repeat(np.repeat(mask, step, axis=0), step, axis=1)
    return np.ascontiguousarray(big[: shape[0], : shape[1]])


@dataclass(frozen=True)
class Scribble:
    """One painted field: the field, its (Y, X) nuclei image and its (Y, X) uint8 labels."""

    item: ManifestItem
    image: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class TrainedModel:
    """A model trained from scribbles, stored, and previewed on the painted fields.

    Attributes
    ----------
    model : ModelInfo
    seconds : float
        Training time (feature extraction, forest, ONNX export).
    labelled : dict of str to int
        Labelled pixels at full resolution: ``{"background": n, "nucleus": n}``.
    previews : list of dict
        ``{"image_id", "object_count", "seconds", "overlay"}`` per field, ``overlay``
        a PNG data URL of the outlines over the nuclei channel.
    recipe : dict
        The recipe that uses the model, as ``POST /api/runs`` takes it.
    """

    model: ModelInfo
    seconds: float
    labelled: dict[str, int]
    previews: list[dict[str, Any]]
    recipe: dict[str, Any]


def train_from_scribbles(
    store: Store,
    *,
    name: str,
    experiment_id: str,
    channel: str,
    scribbles: Sequence[Scribble],
    planes: Planes = "first",
    trees: int = 16,
    max_depth: int = 8,
    scale: int = 2,
    replace: bool = False,
) -> TrainedModel:
    """Train a pixel classifier on the scribbled fields, store it, preview it.

    Parameters
    ----------
    store : Store
        Where ``models/<name>.onnx`` and its provenance are written.
    name : str
        A checked model name.
    experiment_id, channel : str
        The experiment and its nuclei channel (recorded in the provenance).
    scribbles : sequence of Scribble
        One to three fields with their nuclei images and full-resolution label masks.
    planes : {"first", "max"}
        How the images were read (the recipe's ``planes``): recorded in the provenance
        and put in the recipe, so a run reads the fields as the model was taught.
    trees, max_depth, scale : int
        Forest size and model resolution (see ``train_pixel_classifier``).
    replace : bool
        Overwrite an existing model of that name.

    Raises
    ------
    ModelFormError
        The name is taken, or the scribbles lack a class.
    """
    from plateseg.segmentation import segment_field
    from plateseg.segmentation.onnx_model import model_key
    from plateseg.segmentation.trainable import BACKGROUND, NUCLEUS, train_pixel_classifier
    from plateseg.web.render import overlay_png

    if not replace and store.exists(model_key(name)):
        raise ModelFormError(
            {"name": f"a model named {name!r} already exists: choose another name or replace it"}
        )
    images = [s.image for s in scribbles]
    labels = [s.labels for s in scribbles]
    counts = {
        "background": int(sum(int((m == BACKGROUND).sum()) for m in labels)),
        "nucleus": int(sum(int((m == NUCLEUS).sum()) for m in labels)),
    }
    missing = [k for k, v in counts.items() if v == 0]
    if missing:
        raise ModelFormError(
            {"scribbles": f"paint some {' and '.join(missing)} too: training needs both classes"}
        )
    import skl2onnx  # noqa: F401  (imported before the clock starts: seconds on a cold server)
    import sklearn.ensemble  # noqa: F401

    started = time.perf_counter()
    try:
        data = train_pixel_classifier(
            images, labels, trees=trees, max_depth=max_depth, scale=scale, name=name
        )
    except InputError as exc:
        raise ModelFormError({"scribbles": str(exc)}) from None
    seconds = time.perf_counter() - started
    provenance = {
        "origin": "trained",
        "experiment_id": experiment_id,
        "channel": channel,
        "planes": planes,
        "image_ids": [s.item.image_id for s in scribbles],
        "labelled_pixels": counts,
        "training": {"trees": trees, "max_depth": max_depth, "scale": scale},
        "train_seconds": round(seconds, 2),
    }
    recipe = Recipe(
        segmenter="trainable", params={"model": name}, channels={"nuclei": channel}, planes=planes
    )
    info = store_model(store, name, data, provenance, replace=True)
    shown = []
    for scribble, image in zip(scribbles, images, strict=True):
        began = time.perf_counter()
        result = segment_field({channel: image}, recipe, store)
        png = overlay_png(image, result.labels, max_side=768)
        shown.append(
            {
                "image_id": scribble.item.image_id,
                "object_count": result.object_count,
                "seconds": round(time.perf_counter() - began, 3),
                "overlay": "data:image/png;base64," + base64.b64encode(png).decode(),
            }
        )
    objects = {p["image_id"]: p["object_count"] for p in shown}
    record = {**info.provenance, "preview_objects": objects}
    store.put_bytes(provenance_key(name), json.dumps(record, indent=1).encode(), "application/json")
    info = replace_info(info, provenance=record)
    posted = {"segmenter", "params", "channels"} | ({"planes"} if planes != "first" else set())
    as_posted = recipe.model_dump(include=posted)
    return TrainedModel(info, round(seconds, 2), counts, shown, as_posted)
