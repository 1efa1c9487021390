"""Multiscale pixel features for the trainable pixel classifier.

The same three families as scikit-image's ``feature.multiscale_basic_features`` (which
ilastik popularised), at each scale ``sigma``:

* **intensity**: the image smoothed by a Gaussian of ``sigma``;
* **edges**: gradient magnitude of that smoothed image (central differences);
* **texture**: the two eigenvalues of its Hessian (second differences), largest first.

So ``4 * len(sigmas)`` features per pixel, in the order (intensity, edges, texture
high, texture low) per sigma, smallest sigma first. scikit-image computes these with
float64 filters and takes ~11 s for a 2048x2048 image on one thread; here they are
float32 and use the row-block Gaussian of :mod:`plateseg.segmentation.classical`;
models usually work on a 2x downsampled image (:func:`downsample`, metadata
``plateseg.scale``), which brings a 2048x2048 field to a fraction of a second. Training
and inference call this one function, so a model always
sees the features it was trained on; the feature settings travel inside the ONNX
file's metadata (``plateseg.sigmas``).

>>> import numpy as np
>>> pixel_features(np.zeros((32, 32), np.float32), (1.0, 2.0)).shape
(8, 32, 32)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plateseg.segmentation.filters import gaussian

__all__ = [
    "DEFAULT_SIGMAS",
    "feature_margin",
    "feature_names",
    "normalise",
    "pixel_features",
]

#: Default scales in pixels (of the possibly downsampled image the model sees).
DEFAULT_SIGMAS: tuple[float, ...] = (0.7, 1.5, 3.0, 6.0)
_FAMILIES = ("intensity", "edges", "texture_high", "texture_low")


def feature_names(sigmas: Sequence[float]) -> list[str]:
    """Names of the features :func:`pixel_features` returns, in order."""
    return [f"{family}_s{sigma:g}" for sigma in sigmas for family in _FAMILIES]


def feature_margin(sigmas: Sequence[float]) -> int:
    """Pixels of context a tile needs on each side for exact-enough features (3 sigma)."""
    return int(np.ceil(3 * max(sigmas))) + 4


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian(image, sigma)


def _family(smoothed: np.ndarray) -> list[np.ndarray]:
    """Intensity, gradient magnitude and Hessian eigenvalues of one smoothed image."""
    padded = np.pad(smoothed, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    up, down = padded[:-2, 1:-1], padded[2:, 1:-1]
    left, right = padded[1:-1, :-2], padded[1:-1, 2:]
    gy = (down - up) * np.float32(0.5)
    gx = (right - left) * np.float32(0.5)
    edges = np.sqrt(gy * gy + gx * gx)
    hyy = down + up - 2 * centre
    hxx = right + left - 2 * centre
    hxy = (padded[2:, 2:] - padded[2:, :-2] - padded[:-2, 2:] + padded[:-2, :-2]) * np.float32(0.25)
    half_trace = (hyy + hxx) * np.float32(0.5)
    root = np.sqrt(((hyy - hxx) * np.float32(0.5)) ** 2 + hxy * hxy)
    return [smoothed, edges, half_trace + root, half_trace - root]


def pixel_features(image: np.ndarray, sigmas: Sequence[float] = DEFAULT_SIGMAS) -> np.ndarray:
    """Per-pixel features of one image.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) float32, scaled 0..1 (see :func:`normalise`).
    sigmas : sequence of float
        Gaussian scales in pixels, each > 0.

    Returns
    -------
    np.ndarray
        (4 * len(sigmas), Y, X) float32; derivative features are scaled by ``sigma``
        (edges) and ``sigma**2`` (texture) so they are comparable across scales.
    """
    image = np.asarray(image, np.float32)
    planes = np.empty((4 * len(sigmas), *image.shape), np.float32)
    for index, sigma in enumerate(sigmas):
        family = _family(_smooth(image, sigma))
        scales = (1.0, sigma, sigma**2, sigma**2)
        for offset, (plane, scale) in enumerate(zip(family, scales, strict=True)):
            np.multiply(plane, np.float32(scale), out=planes[4 * index + offset])
    return planes


def normalise(image: np.ndarray) -> np.ndarray:
    """Robust 0..1 scaling: the 1st percentile to 0, the 99.8th to 1 (float32, clipped
    to -0.5..2). Models see the same range whatever the camera's bit depth or gain.

    The span is at least 20 robust noise standard deviations (median absolute deviation
    around the median), so an empty field stays dark instead of having its noise
    stretched into "objects".

    Parameters
    ----------
    image : np.ndarray
        (Y, X) any real dtype.

    Returns
    -------
    np.ndarray
        (Y, X) float32.
    """
    data = np.asarray(image, np.float32)
    step = max(1, int(np.sqrt(data.size / 250_000)))
    sample = data[::step, ::step]
    low, high = np.percentile(sample, (1.0, 99.8))
    median = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - median)))
    span = max(float(high - low), 20.0 * noise) or 1.0
    return np.clip((data - np.float32(low)) / np.float32(span), -0.5, 2.0)
