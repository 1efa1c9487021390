"""Pictures for people: outline overlays and thumbnails (PNG) of a segmented field.

Segment writes both next to the label mask (see
:func:`plateseg.pipeline.segment.overlay_key` and ``thumbnail_key``):

* **overlay**: the nuclei channel in grey, contrast-stretched (0.5th-99.8th
  percentile), with every object's outline in yellow; downscaled by an integer factor
  to at most ``max_side`` pixels (outlines are max-pooled, so none disappears).
* **thumbnail**: a colour composite (nuclei blue, the ``cells`` channel green when
  there is one), at most ``side`` pixels on its longer side.

>>> import numpy as np
>>> labels = np.zeros((64, 64), np.uint16); labels[10:20, 10:20] = 1
>>> overlay_png(labels * 1000, labels)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["display_image", "outlines", "overlay_png", "thumbnail_png"]

OUTLINE_RGB = (255, 221, 0)


def display_image(image: np.ndarray) -> np.ndarray:
    """Contrast-stretch to uint8: 0.5th percentile → 0, 99.8th → 255.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) any real dtype.

    Returns
    -------
    np.ndarray
        (Y, X) uint8.
    """
    data = np.asarray(image, np.float32)
    step = max(1, int(np.sqrt(data.size / 250_000)))
    low, high = np.percentile(data[::step, ::step], (0.5, 99.8))
    span = float(high - low) or 1.0
    scaled = (data - np.float32(low)) * np.float32(255.0 / span)
    return np.clip(scaled, 0, 255).astype(np.uint8)


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
    """Block mean or max by ``factor`` (edges padded by repetition)."""
    if factor == 1:
        return image
    height, width = image.shape[:2]
    pad_y, pad_x = -height % factor, -width % factor
    padded = np.pad(image, ((0, pad_y), (0, pad_x)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    if how == "max":
        return np.asarray(blocks.max(axis=(1, 3)))
    return np.asarray(blocks.mean(axis=(1, 3)))


#: zlib level of the stored pictures: 1 encodes ~3x faster than 6 for ~10 % more bytes;
#: they are written for every image of every run, on Lambda time.
PNG_LEVEL = 1


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def overlay_png(image: np.ndarray, labels: np.ndarray, max_side: int = 1024) -> bytes:
    """PNG of the image in grey with yellow object outlines.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) nuclear stain, any real dtype.
    labels : np.ndarray
        (Y, X) integer labels of the same shape.
    max_side : int
        Longest side of the PNG, pixels.

    Returns
    -------
    bytes
        An RGB PNG, (ceil(Y / f), ceil(X / f)) with f the smallest integer that fits.
    """
    factor = _factor(image.shape, max_side)
    grey = _pool(display_image(image).astype(np.float32), factor, "mean").astype(np.uint8)
    edge = _pool(outlines(labels), factor, "max")
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    rgb[edge] = OUTLINE_RGB
    return _png(rgb)


def thumbnail_png(nuclei: np.ndarray, cells: np.ndarray | None = None, side: int = 256) -> bytes:
    """PNG colour composite: nuclei blue, cells (optional) green.

    Parameters
    ----------
    nuclei : np.ndarray
        (Y, X) nuclear stain.
    cells : np.ndarray, optional
        (Y, X) cytoplasm or membrane stain of the same shape.
    side : int
        Longest side of the PNG, pixels.
    """
    factor = _factor(nuclei.shape, side)
    # pooled first, stretched after: the percentiles of a 256 px picture, not of the field
    blue = display_image(_pool(np.asarray(nuclei, np.float32), factor, "mean"))
    rgb = np.zeros((*blue.shape, 3), np.uint8)
    rgb[:, :, 2] = blue
    if cells is not None and cells.shape == nuclei.shape:
        rgb[:, :, 1] = display_image(_pool(np.asarray(cells, np.float32), factor, "mean"))
    return _png(rgb)
