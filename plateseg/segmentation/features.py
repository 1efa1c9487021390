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

__all__ = [
    "DEFAULT_SIGMAS",
    "downsample",
    "feature_margin",
    "feature_names",
    "normalise",
    "pixel_features",
    "upsample",
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
    from plateseg.segmentation.classical import gaussian

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


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean of ``factor`` x ``factor`` blocks; edge rows/columns that do not fill a block
    are dropped. (Y, X) → (Y // factor, X // factor) float32.

    A sum of strided views (a reshape-and-mean is ~5x slower on large images).
    """
    if factor == 1:
        return np.asarray(image, np.float32)
    height, width = image.shape[0] // factor, image.shape[1] // factor
    out = np.zeros((height, width), np.float32)
    for dy in range(factor):
        for dx in range(factor):
            out += image[dy : height * factor : factor, dx : width * factor : factor]
    out *= np.float32(1.0 / factor**2)
    return out


def _double(plane: np.ndarray, axis: int) -> np.ndarray:
    """Linear 2x upsampling along one axis (pixel centres, edges clamped)."""
    padded = np.concatenate(
        [np.take(plane, [0], axis=axis), plane, np.take(plane, [-1], axis=axis)], axis=axis
    )
    size = plane.shape[axis]
    prev = np.take(padded, np.arange(0, size), axis=axis)
    nxt = np.take(padded, np.arange(2, size + 2), axis=axis)
    even = np.float32(0.75) * plane + np.float32(0.25) * prev
    odd = np.float32(0.75) * plane + np.float32(0.25) * nxt
    out = np.stack([even, odd], axis=axis + 1)
    shape = list(plane.shape)
    shape[axis] *= 2
    return out.reshape(shape)


def upsample(plane: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Linear upsampling of a (y, x) plane by ``factor`` (a power of two), padded by
    edge values or cropped to ``shape``; the inverse of :func:`downsample`."""
    out = np.asarray(plane, np.float32)
    done = 1
    while done < factor:
        out = _double(_double(out, 0), 1)
        done *= 2
    pad_y, pad_x = max(shape[0] - out.shape[0], 0), max(shape[1] - out.shape[1], 0)
    if pad_y or pad_x:
        out = np.pad(out, ((0, pad_y), (0, pad_x)), mode="edge")
    return out[: shape[0], : shape[1]]


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
