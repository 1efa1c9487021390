"""Train a pixel classifier from a scientist's scribbles; export it as ONNX.

ilastik's recipe: a few strokes of "nucleus" and "background" on a few images, per-pixel
multiscale features (:mod:`plateseg.segmentation.features`), a random forest of bounded
depth. The forest is exported with skl2onnx (``zipmap`` off, so the output is a plain
``(n, 2)`` probability tensor) and the feature settings are written into the ONNX
metadata, so the Segment Lambda needs only onnxruntime: the ``trainable`` segmenter
(:mod:`plateseg.segmentation.onnx_model`) reads both from the model file.

Labels follow ilastik: ``0`` = not labelled, ``1`` = background, ``2`` = nucleus.
A partial instance mask (nuclei > 0, unannotated elsewhere) becomes scribbles with
:func:`scribbles_from_mask`.

Scikit-learn and skl2onnx are needed to *train* only (``tools/requirements-train.txt``);
importing this module does not import them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from plateseg.errors import InputError, ModelError
from plateseg.segmentation.features import DEFAULT_SIGMAS, feature_names, normalise, pixel_features
from plateseg.segmentation.filters import downsample

if TYPE_CHECKING:
    from plateseg.store import Store

__all__ = [
    "BACKGROUND",
    "NUCLEUS",
    "save_model",
    "scribbles_from_mask",
    "train_pixel_classifier",
]

BACKGROUND = 1
NUCLEUS = 2


def scribbles_from_mask(mask: np.ndarray, ring: int = 3) -> np.ndarray:
    """Dense labels from a (partial) instance or binary mask.

    Parameters
    ----------
    mask : np.ndarray
        (Y, X) integer or bool; > 0 = nucleus.
    ring : int
        Background is labelled only beyond ``ring`` pixels from any nucleus, so blurry
        edges do not teach the forest contradictory labels.

    Returns
    -------
    np.ndarray
        (Y, X) uint8 with 0 (unlabelled ring), 1 (background), 2 (nucleus).
    """
    from scipy import ndimage as ndi

    nuclei = np.asarray(mask) > 0
    near = ndi.binary_dilation(nuclei, iterations=ring) if ring > 0 else nuclei
    out = np.full(nuclei.shape, BACKGROUND, np.uint8)
    out[near] = 0
    out[nuclei] = NUCLEUS
    return out


def _samples(
    image: np.ndarray,
    labels: np.ndarray,
    sigmas: Sequence[float],
    scale: int,
    per_class: int,
    rng: np.random.Generator,
    where: str,
) -> tuple[np.ndarray, np.ndarray]:
    if image.ndim != 2 or labels.shape != image.shape:
        raise InputError(
            f"{where}: image {image.shape} and labels {labels.shape} must be the same 2-D shape"
        )
    bad = ~np.isin(labels, (0, BACKGROUND, NUCLEUS))
    if bad.any():
        found = sorted(set(np.unique(labels[bad]).tolist()))[:5]
        raise InputError(f"{where}: labels must be 0, 1 or 2, found {found}")
    small = downsample(normalise(image), scale)
    features = pixel_features(small, sigmas)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for value in (BACKGROUND, NUCLEUS):
        rows, cols = np.nonzero(labels == value)
        rows, cols = rows // scale, cols // scale
        inside = (rows < small.shape[0]) & (cols < small.shape[1])
        flat = np.unique(rows[inside] * small.shape[1] + cols[inside])
        if len(flat) > per_class:
            flat = rng.choice(flat, per_class, replace=False)
        xs.append(features.reshape(features.shape[0], -1)[:, flat].T)
        ys.append(np.full(len(flat), value, np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def train_pixel_classifier(
    images: Sequence[np.ndarray],
    scribbles: Sequence[np.ndarray],
    *,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    scale: int = 2,
    trees: int = 16,
    max_depth: int = 8,
    samples_per_class: int = 20_000,
    seed: int = 0,
    name: str = "trainable",
) -> bytes:
    """Train a random-forest pixel classifier and return it as ONNX bytes.

    Parameters
    ----------
    images : sequence of np.ndarray
        (Y, X) nuclear stain images, any real dtype.
    scribbles : sequence of np.ndarray
        (Y, X) labels per image: 0 unlabelled, 1 background, 2 nucleus.
    sigmas : sequence of float
        Feature scales in model pixels.
    scale : {1, 2, 4}
        Downsampling factor the model works at (2 halves the time of a 2048² field
        and suits nuclei of 10 px diameter and more).
    trees, max_depth : int
        Forest size; depth is bounded so inference stays fast (16 x 8 ≈ 0.3 s per
        2048² field at scale 2 on one thread).
    samples_per_class : int
        Labelled pixels drawn per class and image (all when fewer).
    seed : int
    name : str
        Stored in the model's metadata.

    Returns
    -------
    bytes
        The ONNX model (``plateseg.kind = pixel-features``).

    Raises
    ------
    InputError
        No images, mismatched shapes, unknown label values, or a class with no pixels.
    """
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    if not images or len(images) != len(scribbles):
        raise InputError(
            f"training needs one label image per image: got {len(images)} images and "
            f"{len(scribbles)} label images"
        )
    if scale not in (1, 2, 4):
        raise InputError(f"scale must be 1, 2 or 4, got {scale}")
    rng = np.random.default_rng(seed)
    parts = [
        _samples(
            np.asarray(image),
            np.asarray(labels),
            sigmas,
            scale,
            samples_per_class,
            rng,
            f"image {index}",
        )
        for index, (image, labels) in enumerate(zip(images, scribbles, strict=True))
    ]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32)
    y = np.concatenate([p[1] for p in parts])
    counts = {value: int((y == value).sum()) for value in (BACKGROUND, NUCLEUS)}
    if min(counts.values()) == 0:
        raise InputError(
            f"training needs pixels of both classes: {counts[BACKGROUND]} background (1) "
            f"and {counts[NUCLEUS]} nucleus (2) labelled pixels"
        )
    forest = RandomForestClassifier(
        n_estimators=trees, max_depth=max_depth, n_jobs=1, random_state=seed
    )
    forest.fit(x, y)
    onnx_model = to_onnx(
        forest,
        x[:1],
        options={id(forest): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    meta = {
        "plateseg.kind": "pixel-features",
        "plateseg.sigmas": json.dumps([float(s) for s in sigmas]),
        "plateseg.scale": str(scale),
        "plateseg.foreground": str(list(forest.classes_).index(NUCLEUS)),
        "plateseg.features": json.dumps(feature_names(sigmas)),
        "plateseg.name": name,
        "plateseg.training": json.dumps(
            {"images": len(images), "samples": counts, "trees": trees, "max_depth": max_depth}
        ),
    }
    for key, value in meta.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    return bytes(onnx_model.SerializeToString())


def save_model(store: Store, name: str, onnx_bytes: bytes) -> str:
    """Check that ``onnx_bytes`` loads as a plateseg model and store it; return its key.

    Raises
    ------
    ModelError
        Invalid name, not ONNX, or metadata that breaks the model contract.
    """
    from plateseg.segmentation.onnx_model import load_session, model_key

    key = model_key(name)
    if not onnx_bytes:
        raise ModelError(f"model {name!r}: empty model bytes")
    import hashlib

    load_session(name, hashlib.sha256(onnx_bytes).hexdigest(), onnx_bytes)
    store.put_bytes(key, onnx_bytes, "application/octet-stream")
    return key
