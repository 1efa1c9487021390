"""Pack many small windows of an image side by side, to filter them in one call.

scipy's distance transform and scikit-image's watershed cost ~0.1-0.4 ms per call
before they touch a pixel; called once per nucleus that overhead dominates. Shelf
packing copies every object's window onto one small canvas (a gap of background
between windows, so no filter reaches from one object into another), runs the filter
once, and maps the canvas pixels back to image coordinates with integer offsets.

>>> import numpy as np
>>> boxes = [(slice(0, 3), slice(0, 2)), (slice(5, 7), slice(4, 9))]
>>> packing = pack_windows(boxes, width=8)
>>> packing.shape
(8, 8)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Packing", "pack_windows"]

Box = tuple[slice, slice]


@dataclass(frozen=True)
class Packing:
    """Where each window sits on the canvas.

    Attributes
    ----------
    shape : tuple of int
        (height, width) of the canvas.
    boxes : list of (slice, slice)
        The windows in the image, in input order.
    places : list of (slice, slice)
        The same windows on the canvas.
    """

    shape: tuple[int, int]
    boxes: list[Box]
    places: list[Box]

    def gather(self, image: np.ndarray, fill: float = 0) -> np.ndarray:
        """Copy every window of ``image`` (Y, X) onto a new canvas of its dtype."""
        canvas = np.full(self.shape, fill, dtype=image.dtype)
        for box, place in zip(self.boxes, self.places, strict=True):
            canvas[place] = image[box]
        return canvas

    def offsets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-canvas-pixel owner window (-1 = gap) and the row/column offset of each window.

        Returns
        -------
        owner : np.ndarray
            (H, W) int32 canvas of window indices.
        dy, dx : np.ndarray
            (n,) intp: image coordinate = canvas coordinate + offset.
        """
        owner = np.full(self.shape, -1, np.int32)
        dy = np.empty(len(self.boxes), np.intp)
        dx = np.empty(len(self.boxes), np.intp)
        for index, (box, place) in enumerate(zip(self.boxes, self.places, strict=True)):
            owner[place] = index
            dy[index] = box[0].start - place[0].start
            dx[index] = box[1].start - place[1].start
        return owner, dy, dx


def pack_windows(boxes: Sequence[Box], width: int, gap: int = 1) -> Packing:
    """Shelf-pack windows (tallest first) into rows of at most ``width`` pixels.

    Parameters
    ----------
    boxes : sequence of (slice, slice)
        Windows with explicit, non-negative ``start``/``stop``.
    width : int
        Canvas width; widened to the widest window if needed.
    gap : int
        Background pixels left between windows and around the canvas edge.

    Returns
    -------
    Packing
    """
    heights = [b[0].stop - b[0].start for b in boxes]
    widths = [b[1].stop - b[1].start for b in boxes]
    width = max([width, *(w + 2 * gap for w in widths)])
    order = sorted(range(len(boxes)), key=lambda i: -heights[i])
    places: list[Box | None] = [None] * len(boxes)
    y, x, shelf = gap, gap, 0
    for i in order:
        if x + widths[i] + gap > width:
            y, x, shelf = y + shelf + gap, gap, 0
        places[i] = (slice(y, y + heights[i]), slice(x, x + widths[i]))
        x += widths[i] + gap
        shelf = max(shelf, heights[i])
    height = y + shelf + gap
    return Packing((height, width), list(boxes), [p for p in places if p is not None])
