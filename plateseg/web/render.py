"""Images for the browser: channel thumbnails, label outlines over an image, object tips.

One small seam (:func:`thumbnail_png`, :func:`overlay_png`, :func:`object_tips`) so the
segmentation issue's PNG overlays can replace it later.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["display_scale", "object_tips", "overlay_png", "thumbnail_png"]

OUTLINE_RGB = (255, 214, 0)


def display_scale(image: np.ndarray) -> np.ndarray:
    """Contrast-stretch a plane to uint8 between its 0.5th and 99.8th percentiles.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) of any real dtype.

    Returns
    -------
    np.ndarray
        (Y, X) uint8.
    """
    data = np.asarray(image, dtype=np.float32)
    if data.size == 0:
        return np.zeros(data.shape, dtype=np.uint8)
    low, high = np.percentile(data, [0.5, 99.8])
    if high <= low:
        high = low + 1.0
    scaled = (data - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _step(shape: tuple[int, ...], max_side: int) -> int:
    return max(1, int(np.ceil(max(shape[:2]) / max_side)))


def _png(array: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def thumbnail_png(image: np.ndarray, max_side: int = 256) -> bytes:
    """A grey PNG of a (Y, X) plane, downsampled by striding to at most ``max_side``."""
    step = _step(image.shape, max_side)
    return _png(display_scale(image[::step, ::step]))


def overlay_png(image: np.ndarray, labels: np.ndarray, max_side: int = 1024) -> bytes:
    """The image in grey with every object's boundary drawn in yellow.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) intensities.
    labels : np.ndarray
        (Y, X) integer labels, 0 = background; same shape as ``image``.
    max_side : int
        Longest side of the PNG; larger images are strided down (outlines are found
        at full resolution first, so thin boundaries survive).
    """
    from skimage.segmentation import find_boundaries

    if labels.shape != image.shape:
        raise ValueError(f"labels {labels.shape} and image {image.shape} differ in shape")
    boundaries = find_boundaries(labels, mode="inner")
    step = _step(image.shape, max_side)
    if step > 1:
        from scipy import ndimage as ndi

        boundaries = ndi.maximum_filter(boundaries, size=step)
    grey = display_scale(image)[::step, ::step]
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    rgb[boundaries[::step, ::step]] = OUTLINE_RGB
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
