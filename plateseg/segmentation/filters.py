"""Low-level image filters shared by the segmenters: a fast Gaussian, block-mean
downsampling and linear upsampling, hole filling and relabelling.

A leaf of :mod:`plateseg.segmentation` (numpy and ``scipy.ndimage`` only): the
preprocessing, thresholds, classical, learned and pixel-feature modules all build on it,
and it imports none of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

__all__ = ["downsample", "fill_holes", "gaussian", "relabel", "upsample"]


def gaussian(image: np.ndarray, sigma: float, truncate: float = 3.0) -> np.ndarray:
    """Gaussian smoothing, equal to ``ndi.gaussian_filter(image, sigma, mode="reflect")``.

    ndimage's pass along axis 0 strides across rows and is ~6x slower than its pass
    along axis 1; here axis 0 is a weighted sum of shifted row blocks instead.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) float32.
    sigma : float
        Standard deviation in pixels (> 0).

    Returns
    -------
    np.ndarray
        (Y, X) float32.
    """
    radius = max(1, int(truncate * sigma + 0.5))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights = (weights / weights.sum()).astype(np.float32)
    rows = ndi.correlate1d(image, weights, axis=1, mode="reflect")
    if rows.shape[0] <= radius:
        return np.asarray(ndi.correlate1d(rows, weights, axis=0, mode="reflect"))
    from scipy.linalg.blas import saxpy

    padded = np.pad(rows, ((radius, radius), (0, 0)), mode="symmetric")
    height = image.shape[0]
    out = padded[radius : radius + height] * weights[radius]
    flat = out.reshape(-1)
    for k in range(1, radius + 1):  # out += w * shifted rows: one pass each (BLAS axpy)
        weight = float(weights[radius + k])
        for shift in (-k, k):
            block = padded[radius + shift : radius + shift + height].reshape(-1)
            flat = saxpy(block, flat, a=weight)  # in place: float32 and contiguous
    return flat.reshape(out.shape)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background components that do not touch the border (faster than ndi's)."""
    background, count = ndi.label(~mask)
    if count == 0:
        return mask
    edge = np.unique(
        np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    )
    keep = np.zeros(count + 1, bool)
    keep[edge] = True
    keep[0] = True  # foreground stays foreground
    return mask | ~keep[background]


def relabel(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Keep labels where ``keep[label]``, renumbered 1..n in order; uint16 or uint32."""
    keep = keep.copy()
    keep[0] = False
    lut = np.zeros(len(keep), np.int64)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    n = int(keep.sum())
    dtype = np.uint16 if n < np.iinfo(np.uint16).max else np.uint32
    return lut.astype(dtype)[labels]


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
    """Linear 2x upsampling along one axis (pixel centres, edges clamped): each pixel
    becomes ``0.75 x itself + 0.25 x its neighbour`` on either side, written straight
    into the interleaved output (a stack of the two halves costs two more passes)."""
    plane = np.asarray(plane, np.float32)
    quarter, three = np.float32(0.25), np.float32(0.75)
    rows, cols = plane.shape
    if axis == 0:
        out = np.empty((2 * rows, cols), np.float32)
        even, odd = out[0::2], out[1::2]
        near: tuple[Any, ...] = (slice(1, None), slice(None, -1), 0, -1)
    else:
        out = np.empty((rows, cols, 2), np.float32)
        even, odd = out[..., 0], out[..., 1]
        near = (np.s_[:, 1:], np.s_[:, :-1], np.s_[:, 0], np.s_[:, -1])
    later, earlier, first, last = near
    np.multiply(plane, three, out=even)
    np.multiply(plane, three, out=odd)
    even[later] += quarter * plane[earlier]
    even[first] += quarter * plane[first]
    odd[earlier] += quarter * plane[later]
    odd[last] += quarter * plane[last]
    return out.reshape(2 * rows, cols) if axis == 0 else out.reshape(rows, 2 * cols)


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
