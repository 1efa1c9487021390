"""Images for the browser: channel thumbnails, label outlines over an image, object tips.

Overlays and the contrast stretch are the ones Segment uses for the PNGs it stores
(:mod:`plateseg.segmentation.outputs`), so a preview looks like the stored result.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from plateseg.segmentation.outputs import display_image
from plateseg.segmentation.outputs import overlay_png as stored_overlay_png

__all__ = ["display_scale", "object_tips", "overlay_png", "thumbnail_png"]

#: The contrast stretch the stored overlays and thumbnails use, so both look the same.
display_scale = display_image


def _png(array: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def thumbnail_png(image: np.ndarray, max_side: int = 256) -> bytes:
    """A grey PNG of one (Y, X) channel, downsampled by striding to at most ``max_side``."""
    step = max(1, int(np.ceil(max(image.shape[:2]) / max_side)))
    return _png(display_image(image[::step, ::step]))


def overlay_png(image: np.ndarray, labels: np.ndarray, max_side: int = 1024) -> bytes:
    """The image in grey with object outlines, exactly as Segment stores its overlays.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) intensities.
    labels : np.ndarray
        (Y, X) integer labels, 0 = background; same shape as ``image``.
    max_side : int
        Longest side of the PNG.
    """
    if labels.shape != image.shape:
        raise ValueError(f"labels {labels.shape} and image {image.shape} differ in shape")
    return stored_overlay_png(image, labels, max_side=max_side)


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
