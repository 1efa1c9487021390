"""Images for the browser: channel thumbnails, label outlines over an image, object tips.

Segment stores only label images; every picture the UI shows is drawn here on request,
from the label mask and the source image (the routes keep the results in a bounded
cache, :mod:`plateseg.web.pictures`). The recipe preview and the Models page draw their
outlines with the same functions, so a preview looks like the run's result.

* **overlay**: the image in grey, contrast-stretched (0.5th-99.8th percentile), with every
  object's outline in yellow; downscaled by an integer factor to at most ``max_side``
  pixels (outlines are max-pooled, so none disappears).
* **thumbnail**: one channel in grey, strided to at most ``max_side`` pixels.

Both take the stretch's percentiles (``percentiles=(low, high)``): the run page's
per-channel contrast sets them (:func:`check_percentiles` says which are accepted).

>>> labels = np.zeros((64, 64), np.uint16); labels[10:20, 10:20] = 1
>>> overlay_png(labels * 1000, labels)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from plateseg.errors import InputError

__all__ = [
    "OUTLINE_RGB",
    "STRETCH_PERCENTILES",
    "check_percentiles",
    "display_image",
    "display_scale",
    "object_tips",
    "outlines",
    "overlay_png",
    "thumbnail_png",
]

OUTLINE_RGB = (255, 221, 0)

#: The contrast stretch's percentiles: the darkest 0.5 % black, the brightest 0.2 % white.
STRETCH_PERCENTILES = (0.5, 99.8)

#: The narrowest display range a viewer may ask for, in percentile points.
MIN_PERCENTILE_SPAN = 0.1


def check_percentiles(low: float, high: float) -> tuple[float, float]:
    """A requested display range, ``(low, high)`` percentiles rounded to 0.01.

    Black at the ``low`` percentile of the field, white at the ``high`` one: both in
    [0, 100], ``high`` at least :data:`MIN_PERCENTILE_SPAN` above ``low``.

    >>> check_percentiles(1, 99.5)
    (1.0, 99.5)
    >>> try:
    ...     check_percentiles(50, 20)
    ... except InputError as error:
    ...     print(error)
    contrast: the low percentile (50) must be at least 0.1 below the high one (20)

    Raises
    ------
    InputError
        Not finite, outside [0, 100], or ``high`` not above ``low``.
    """
    bounds = []
    for name, value in (("low", low), ("high", high)):
        if not math.isfinite(value) or not 0.0 <= value <= 100.0:
            raise InputError(f"contrast: the {name} percentile must be 0 to 100, not {value:g}")
        bounds.append(round(float(value), 2))
    if bounds[1] - bounds[0] < MIN_PERCENTILE_SPAN - 1e-9:
        raise InputError(
            f"contrast: the low percentile ({low:g}) must be at least {MIN_PERCENTILE_SPAN:g} "
            f"below the high one ({high:g})"
        )
    return bounds[0], bounds[1]


#: zlib level of the PNGs: 1 encodes ~3x faster than the default 6 for ~10 % more bytes.
PNG_LEVEL = 1


def _integer_percentiles(
    sample: np.ndarray, percentiles: tuple[float, float] = STRETCH_PERCENTILES
) -> tuple[float, float]:
    """The stretch percentiles of unsigned integers (<= 16 bits) from their histogram.

    The same values :func:`numpy.percentile` (linear interpolation) gives, from one
    ``bincount`` pass instead of a partition of a float copy.
    """
    cumulative = np.cumsum(np.bincount(sample.ravel()))
    n = int(cumulative[-1])
    bounds = []
    for q in percentiles:
        rank = q / 100.0 * (n - 1)
        below = int(np.floor(rank))
        low = int(np.searchsorted(cumulative, below, side="right"))
        high = int(np.searchsorted(cumulative, min(below + 1, n - 1), side="right"))
        bounds.append(low + (rank - below) * (high - low))
    return bounds[0], bounds[1]


def display_image(
    image: np.ndarray, percentiles: tuple[float, float] = STRETCH_PERCENTILES
) -> np.ndarray:
    """Contrast-stretch to uint8: 0.5th percentile → 0, 99.8th → 255 (or ``percentiles``).

    The percentiles are those of a strided sample of at most ~250,000 pixels. Unsigned
    integer images of up to 16 bits (what microscopes write) are stretched through a
    histogram and a lookup table, with no float copy of the image: the same picture,
    about twice as fast.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) any real dtype.
    percentiles : (float, float)
        The percentiles drawn black and white (:func:`check_percentiles`).

    Returns
    -------
    np.ndarray
        (Y, X) uint8.

    >>> ramp = np.arange(1000, dtype=np.uint16).reshape(10, 100)
    >>> display_image(ramp)[[0, 9], [0, -1]]
    array([  0, 255], dtype=uint8)
    >>> display_image(ramp)[5, 0], display_image(ramp, (0.0, 60.0))[5, 0]
    (np.uint8(127), np.uint8(212))
    """
    data = np.asarray(image)
    step = max(1, int(np.sqrt(data.size / 250_000)))
    if data.dtype.kind == "u" and data.dtype.itemsize <= 2 and data.size:
        low, high = _integer_percentiles(data[::step, ::step], percentiles)
        levels = np.arange(int(data.max()) + 1, dtype=np.float32)
        return _stretch(levels, low, float(high - low) or 1.0)[data]
    data = np.asarray(data, np.float32)
    low, high = np.percentile(data[::step, ::step], percentiles)
    return _stretch(data, float(low), float(high - low) or 1.0)


def _stretch(values: np.ndarray, low: float, span: float) -> np.ndarray:
    scaled = (values - np.float32(low)) * np.float32(255.0 / span)
    return np.clip(scaled, 0, 255).astype(np.uint8)


#: The contrast stretch of every picture the UI shows (the Models page's canvas too).
display_scale = display_image


def outlines(labels: np.ndarray) -> np.ndarray:
    """(Y, X) bool: object pixels with a 4-neighbour of another label (inner outlines)."""
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edge = np.zeros(labels.shape, bool)
    for neighbour in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        edge |= neighbour != centre
    return edge & (labels > 0)


def _factor(shape: tuple[int, ...], max_side: int) -> int:
    return max(1, -(-max(shape) // max_side))


def _pool(image: np.ndarray, factor: int, how: str) -> np.ndarray:
    """Block mean (float32) or max by ``factor`` (edges padded by repetition).

    Summed over the ``factor ** 2`` strided views of the image, which is several times
    faster than reducing a 4-D block view over two non-adjacent axes.
    """
    if factor == 1:
        return image
    height, width = image.shape[:2]
    pad_y, pad_x = -height % factor, -width % factor
    padded = np.pad(image, ((0, pad_y), (0, pad_x)), mode="edge")
    views = [padded[dy::factor, dx::factor] for dy in range(factor) for dx in range(factor)]
    if how == "max":
        result = views[0].copy()
        for view in views[1:]:
            np.maximum(result, view, out=result)
        return result
    total = views[0].astype(np.float32)
    for view in views[1:]:
        total += view
    return total / np.float32(factor * factor)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def thumbnail_png(
    image: np.ndarray,
    max_side: int = 256,
    percentiles: tuple[float, float] = STRETCH_PERCENTILES,
) -> bytes:
    """A grey PNG of one (Y, X) channel, downsampled by striding to at most ``max_side``."""
    step = max(1, int(np.ceil(max(image.shape[:2]) / max_side)))
    return _png(display_image(image[::step, ::step], percentiles))


def overlay_png(
    image: np.ndarray,
    labels: np.ndarray,
    max_side: int = 1024,
    percentiles: tuple[float, float] = STRETCH_PERCENTILES,
) -> bytes:
    """PNG of the image in grey with yellow object outlines.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) intensities, any real dtype.
    labels : np.ndarray
        (Y, X) integer labels, 0 = background; same shape as ``image``.
    max_side : int
        Longest side of the PNG, pixels.
    percentiles : (float, float)
        The contrast stretch (:func:`display_image`).

    Returns
    -------
    bytes
        An RGB PNG, (ceil(Y / f), ceil(X / f)) with f the smallest integer that fits.

    Raises
    ------
    ValueError
        ``labels`` and ``image`` differ in shape.
    """
    if labels.shape != image.shape:
        raise ValueError(f"labels {labels.shape} and image {image.shape} differ in shape")
    factor = _factor(image.shape, max_side)
    grey = display_image(image, percentiles)
    if factor > 1:
        grey = _pool(grey, factor, "mean").astype(np.uint8)
    edge = _pool(outlines(labels), factor, "max")
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    rgb[edge] = OUTLINE_RGB
    return _png(rgb)


def object_tips(
    labels: np.ndarray, image: np.ndarray | None = None, limit: int = 5000
) -> list[dict[str, Any]]:
    """Per-object facts for hover tooltips: label, bounding box, centroid, area, intensity.

    Parameters
    ----------
    labels : np.ndarray
        (Y, X) integer labels.
    image : np.ndarray, optional
        (Y, X) intensities for the mean intensity.
    limit : int
        At most this many objects (the largest first beyond it).

    Returns
    -------
    list of dict
        ``{"label", "bbox": [y0, x0, y1, x1], "centroid": [y, x], "area", "mean_intensity"}``
        in full-resolution pixel coordinates.
    """
    from scipy import ndimage as ndi

    lab = np.asarray(labels)
    n = int(lab.max()) if lab.size else 0
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    areas = ndi.sum_labels(np.ones(lab.shape, dtype=np.float32), lab, index)
    centroids = ndi.center_of_mass(np.ones(lab.shape, dtype=np.float32), lab, index)
    means = ndi.mean(np.asarray(image, dtype=np.float64), lab, index) if image is not None else None
    slices = ndi.find_objects(lab)
    tips: list[dict[str, Any]] = []
    for i, box in enumerate(slices):
        if box is None or areas[i] == 0:
            continue
        tips.append(
            {
                "label": i + 1,
                "bbox": [box[0].start, box[1].start, box[0].stop, box[1].stop],
                "centroid": [round(float(centroids[i][0]), 1), round(float(centroids[i][1]), 1)],
                "area": int(areas[i]),
                "mean_intensity": None if means is None else round(float(means[i]), 1),
            }
        )
    if len(tips) > limit:
        tips = sorted(tips, key=lambda t: t["area"], reverse=True)[:limit]
    return tips
