"""Thresholds of the classical segmenters: global (cells of ``secondary``), relative to a
background-free image (nuclei), and the local-mean check of the adaptive scope.

Each global threshold is computed on a ~0.25 Mpx subsample
(:func:`~plateseg.segmentation.preprocess.subsample`): plenty for a histogram.
"""

from __future__ import annotations

import numpy as np

from plateseg.segmentation.filters import downsample, gaussian
from plateseg.segmentation.preprocess import LI_TOLERANCE, subsample

__all__ = ["clear_below_local", "global_threshold", "relative_threshold"]


def global_threshold(smoothed: np.ndarray, method: str, min_contrast: float) -> float:
    """Global threshold; above the image maximum when foreground and background do not
    differ by ``min_contrast`` noise standard deviations (an empty field)."""
    from skimage.filters import threshold_li, threshold_otsu

    sample = subsample(smoothed)
    top = float(sample.max())
    if float(sample.min()) == top:
        return top  # flat image: nothing is above it
    value = float(threshold_li(sample) if method == "li" else threshold_otsu(sample))
    below, above = sample[sample <= value], sample[sample > value]
    if min_contrast > 0 and below.size and above.size:
        background = float(np.median(below))
        noise = 1.4826 * float(np.median(np.abs(below - background)))
        if float(np.median(above)) - background < min_contrast * noise:
            return float(smoothed.max())
    return value


def clear_below_local(
    mask: np.ndarray, smoothed: np.ndarray, threshold: float, sigma: float, weight: float
) -> None:
    """Clear, in place, the pixels of ``mask`` at or below the local threshold.

    For ``sigma >= 2`` the local mean is computed on a 2x block-averaged image and read
    back, bilinearly interpolated, at the foreground pixels only (~10% of a field): the
    same values to within a fraction of a grey level, at half the cost of a
    full-resolution Gaussian.
    """
    width = smoothed.shape[1]
    flat = np.flatnonzero(mask)
    if sigma < 2 or min(smoothed.shape) < 8:
        local = gaussian(smoothed, sigma).ravel()[flat]
    else:
        small = gaussian(downsample(smoothed, 2), sigma / 2)
        rows, cols = small.shape
        ys, xs = np.divmod(flat, width)
        fy = np.clip(ys.astype(np.float32) * np.float32(0.5) - np.float32(0.25), 0, rows - 1)
        fx = np.clip(xs.astype(np.float32) * np.float32(0.5) - np.float32(0.25), 0, cols - 1)
        y0 = np.minimum(fy.astype(np.intp), rows - 2)
        x0 = np.minimum(fx.astype(np.intp), cols - 2)
        wy, wx = fy - y0, fx - x0
        at = y0 * cols + x0
        grid = small.ravel()
        top = grid[at] + (grid[at + 1] - grid[at]) * wx
        bottom = grid[at + cols] + (grid[at + cols + 1] - grid[at + cols]) * wx
        local = top + (bottom - top) * wy
    level = local * np.float32(weight) + np.float32(threshold * (1 - weight))
    below = smoothed.ravel()[flat] <= level
    mask.reshape(-1)[flat[below]] = False  # mask is C-contiguous: reshape is a view


def relative_threshold(smoothed: np.ndarray, method: str, correction: float, floor: float) -> float:
    """Threshold of a background-free image (background 0, typical nucleus ~1): the
    method's value times ``correction``, but at least ``floor``; the maximum for a flat
    image (nothing is above it)."""
    from skimage.filters import threshold_li, threshold_multiotsu, threshold_otsu

    sample = subsample(smoothed)
    top = float(sample.max())
    if float(sample.min()) == top:
        return top  # flat image: nothing is above it
    if method == "li":
        value = float(threshold_li(sample, tolerance=LI_TOLERANCE))
    elif method == "otsu3":
        value = float(threshold_multiotsu(sample, classes=3)[0])
    else:
        value = float(threshold_otsu(sample))
    return max(value * correction, floor)
