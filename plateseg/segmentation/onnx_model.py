"""ONNX segmentation models: loading from the store, tiled inference, instances.

A model is ``models/<name>.onnx`` in the store (falling back to the models shipped in
the package, ``plateseg/models/<name>.onnx``). Only onnxruntime is needed to run one;
sessions are cached per model content, so a warm Lambda loads a model once.

Model contract (ONNX ``metadata_props``; missing keys take the defaults):

=========================  ================================================================
key                        meaning
=========================  ================================================================
``plateseg.kind``          ``image`` (default): input float32 ``(1, 1, h, w)``, output
                           ``(1, K, h, w)`` class probabilities (a CNN);
                           ``nuclei-3class``: the same shapes, K = 3 (background,
                           nucleus interior, nucleus boundary), run at a fixed nuclear
                           scale with the post-processing of
                           :mod:`plateseg.segmentation.learned` (the shipped
                           ``nuclei-unet``);
                           ``pixel-features``: input float32 ``(n, F)`` per-pixel features
                           of :func:`~plateseg.segmentation.features.pixel_features`,
                           output ``(n, K)`` probabilities named ``probabilities`` (a
                           random forest from :mod:`plateseg.segmentation.trainable`)
``plateseg.sigmas``        JSON list of feature scales (``pixel-features`` only)
``plateseg.scale``         integer downsampling factor the model works at (default 1)
``plateseg.foreground``    index of the nucleus class in K (default 1)
``plateseg.multiple``      tile sides must be a multiple of this (``image``; default 1)
``plateseg.diameter``      nuclear diameter (px) the model was trained at
                           (``nuclei-3class`` only; fields are rescaled to it)
=========================  ================================================================

Pre-processing: the nuclei channel is scaled robustly to 0..1
(:func:`~plateseg.segmentation.features.normalise`: 1st → 0, 99.8th percentile → 1,
span at least 20 noise SDs) and block-averaged by ``scale``. Inference runs on tiles of
``tile`` pixels with ``overlap`` pixels of context on each side (for features, at least
3 sigma of the largest scale); only each tile's centre is kept, so the seams are
invisible. Post-processing: the foreground probability is upsampled linearly to full
resolution and thresholded at ``probability``; holes are filled and the mask goes
through the classical segmenter's declumping and size filter
(:func:`~plateseg.segmentation.classical.labels_from_mask`).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from plateseg.contracts.params import DEFAULT_MODEL, MODEL_NAME_PATTERN, ModelParams
from plateseg.errors import ModelError, ObjectNotFoundError
from plateseg.store.keys import model_file_key

if TYPE_CHECKING:
    from plateseg.store import Store

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_NAME_PATTERN",
    "SHIPPED_MODELS",
    "LoadedModel",
    "ModelParams",
    "load_model",
    "load_model_bytes",
    "load_session",
    "model_key",
    "predict_foreground",
    "read_model_bytes",
    "segment_with_model",
    "shipped_models",
]

#: The folder of the models shipped in the package.
SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "models"
_LOCK = threading.Lock()


def model_key(name: str) -> str:
    """Store key of a model: ``models/<name>.onnx``."""
    if not re.fullmatch(MODEL_NAME_PATTERN, name):
        raise ModelError(f"invalid model name {name[:60]!r}: use letters, digits, '.', '_', '-'")
    return model_file_key(name)


def shipped_models() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(path.stem for path in SHIPPED_MODELS.glob("*.onnx"))


@dataclass(frozen=True)
class LoadedModel:
    """An onnxruntime session and the model's contract (see the module table)."""

    name: str
    session: Any
    kind: str
    sigmas: tuple[float, ...]
    scale: int
    foreground: int
    multiple: int
    diameter: float | None = None
    digest: str = ""

    @property
    def margin(self) -> int:
        """Context pixels a tile needs (model pixels)."""
        from plateseg.segmentation.features import feature_margin

        return feature_margin(self.sigmas) if self.kind == "pixel-features" else 32


def read_model_bytes(name: str, store: Store | None) -> bytes:
    """The bytes of model ``name``: ``models/<name>.onnx`` in ``store``, else shipped.

    Raises
    ------
    ModelError
        No such model.
    """
    key = model_key(name)
    if store is not None:
        try:
            return store.get_bytes(key)
        except ObjectNotFoundError:
            pass
    shipped = SHIPPED_MODELS / f"{name}.onnx"
    if shipped.is_file():
        return shipped.read_bytes()
    where = store.uri(key) if store is not None else key
    known = ", ".join(shipped_models()) or "none"
    raise ModelError(f"model {name!r} not found at {where} nor among the shipped models ({known})")


def model_digest(name: str, store: Store | None = None) -> str:
    """SHA-256 (hex) of the bytes :func:`load_model` would load for ``name``.

    Raises
    ------
    ModelError
        No such model in the store nor among the shipped ones.
    """
    return hashlib.sha256(read_model_bytes(name, store)).hexdigest()


def load_model(name: str, store: Store | None = None) -> LoadedModel:
    """Load (or reuse) the model ``name`` from ``store`` or the package.

    Raises
    ------
    ModelError
        Missing, not an ONNX model, or metadata that breaks the contract.
    """
    return load_model_bytes(name, read_model_bytes(name, store))


def load_model_bytes(name: str, data: bytes) -> LoadedModel:
    """Load (or reuse) a model from its ONNX bytes; ``name`` is for messages and the cache.

    Raises
    ------
    ModelError
        Not an ONNX model, or metadata that breaks the contract.
    """
    digest = hashlib.sha256(data).hexdigest()
    with _LOCK:
        return load_session(name, digest, data)


_CACHE: dict[tuple[str, str], LoadedModel] = {}
#: The model kinds of the contract (see the module table).
KINDS = ("image", "pixel-features", "nuclei-3class")


def _diameter(kind: str, value: str | None) -> float | None:
    if kind != "nuclei-3class":
        return None
    if value is None:
        raise ValueError("a nuclei-3class model needs plateseg.diameter")
    diameter = float(value)
    if not 2.0 <= diameter <= 200.0:
        raise ValueError(f"plateseg.diameter {diameter} is outside 2..200")
    return diameter


def load_session(name: str, digest: str, data: bytes) -> LoadedModel:
    import onnxruntime as ort

    cached = _CACHE.get((name, digest))
    if cached is not None:
        return cached
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"model {name!r} is not a valid ONNX model: {exc}") from None
    meta = session.get_modelmeta().custom_metadata_map
    try:
        kind = meta.get("plateseg.kind", "image")
        if kind not in KINDS:
            raise ValueError(f"plateseg.kind {kind!r} is not one of {', '.join(KINDS)}")
        sigmas = tuple(float(s) for s in json.loads(meta.get("plateseg.sigmas", "[]")))
        if kind == "pixel-features" and not sigmas:
            raise ValueError("a pixel-features model needs plateseg.sigmas")
        scale = int(meta.get("plateseg.scale", "1"))
        if scale not in (1, 2, 4, 8):
            raise ValueError(f"plateseg.scale {scale} is not 1, 2, 4 or 8")
        loaded = LoadedModel(
            name=name,
            session=session,
            kind=kind,
            sigmas=sigmas,
            scale=scale,
            foreground=int(meta.get("plateseg.foreground", "1")),
            multiple=max(1, int(meta.get("plateseg.multiple", "1"))),
            diameter=_diameter(kind, meta.get("plateseg.diameter")),
            digest=digest,
        )
    except ValueError as exc:
        raise ModelError(f"model {name!r}: bad metadata: {exc}") from None
    if len(_CACHE) >= 8:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[(name, digest)] = loaded
    return loaded


def _run_tile(model: LoadedModel, tile: np.ndarray) -> np.ndarray:
    """Foreground probability (h, w) float32 of one (h, w) normalised tile."""
    session = model.session
    if model.kind == "pixel-features":
        from plateseg.segmentation.features import pixel_features

        features = pixel_features(tile, model.sigmas)
        rows = np.ascontiguousarray(features.reshape(features.shape[0], -1).T)
        outputs = [o.name for o in session.get_outputs()]
        wanted = "probabilities" if "probabilities" in outputs else outputs[-1]
        probs = session.run([wanted], {session.get_inputs()[0].name: rows})[0]
        probs = np.asarray(probs, np.float32)
        if probs.ndim != 2 or probs.shape[0] != rows.shape[0]:
            raise ModelError(
                f"model {model.name!r}: output {wanted!r} has shape {probs.shape}, "
                f"expected ({rows.shape[0]}, K)"
            )
        return probs[:, model.foreground].reshape(tile.shape)
    height, width = tile.shape
    m = model.multiple
    padded_h, padded_w = -(-height // m) * m, -(-width // m) * m
    batch = np.pad(tile, ((0, padded_h - height), (0, padded_w - width)), mode="reflect")
    probs = session.run(None, {session.get_inputs()[0].name: batch[None, None]})[0]
    probs = np.asarray(probs, np.float32)
    if probs.ndim != 4 or probs.shape[2:] != (padded_h, padded_w):
        raise ModelError(
            f"model {model.name!r}: output has shape {probs.shape}, "
            f"expected (1, K, {padded_h}, {padded_w})"
        )
    return probs[0, model.foreground, :height, :width]


def predict_foreground(
    model: LoadedModel, image: np.ndarray, tile: int = 512, overlap: int | None = None
) -> np.ndarray:
    """Foreground probability of a whole image, tile by tile.

    Parameters
    ----------
    model : LoadedModel
    image : np.ndarray
        (Y, X) nuclear stain, any real dtype.
    tile : int
        Tile side in model pixels.
    overlap : int or None
        Context on each side of a tile; ``None`` = ``model.margin``.

    Returns
    -------
    np.ndarray
        (Y, X) float32 probabilities 0..1 at full resolution.
    """
    from plateseg.segmentation.features import normalise
    from plateseg.segmentation.filters import downsample, upsample

    small = downsample(normalise(image), model.scale)
    margin = model.margin if overlap is None else overlap
    height, width = small.shape
    out = np.zeros(small.shape, np.float32)
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            ty0, tx0 = max(y0 - margin, 0), max(x0 - margin, 0)
            ty1, tx1 = min(y1 + margin, height), min(x1 + margin, width)
            probs = _run_tile(model, small[ty0:ty1, tx0:tx1])
            out[y0:y1, x0:x1] = probs[y0 - ty0 : y1 - ty0, x0 - tx0 : x1 - tx0]
    return upsample(out, model.scale, (int(image.shape[0]), int(image.shape[1])))


def segment_with_model(
    image: np.ndarray, params: ModelParams, store: Store | None = None
) -> tuple[np.ndarray, float, float]:
    """Segment nuclei with an ONNX model; ``(labels, threshold, foreground_fraction)``.

    The threshold reported is the probability threshold.
    """
    from plateseg.contracts.params import ClassicalParams
    from plateseg.segmentation.classical import labels_from_mask
    from plateseg.segmentation.filters import fill_holes

    model = load_model(params.model, store)
    if model.kind == "nuclei-3class":
        return _segment_3class(image, model, params)
    probability = predict_foreground(model, image, params.tile, params.overlap)
    mask = fill_holes(probability > params.probability)
    post = ClassicalParams(
        min_diameter=params.min_diameter,
        max_diameter=params.max_diameter,
        declump=params.declump,
        neck_depth=params.neck_depth,
        exclude_border=params.exclude_border,
    ).sized(None)
    return labels_from_mask(mask, post), params.probability, float(mask.mean())


def _segment_3class(
    image: np.ndarray, model: LoadedModel, params: ModelParams
) -> tuple[np.ndarray, float, float]:
    """Instances of a ``nuclei-3class`` model, then the recipe's size and border filters."""
    from plateseg.segmentation.classical import filter_objects
    from plateseg.segmentation.learned import segment_learned

    result = segment_learned(image, model, params.diameter, params.probability, params.tile)
    labels = filter_objects(
        result.labels, params.min_diameter, params.max_diameter, params.exclude_border
    )
    return labels, params.probability, result.foreground_fraction
