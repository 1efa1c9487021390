"""How well a segmentation agrees with a scientist's correction labels, and label maps
for the browser.

**Label agreement** is the fraction of her labelled pixels a model gets right, the
figure the Models page shows before and after a fine-tune. Per label
(:mod:`plateseg.finetune.labels`):

==========  ===============================================================
label       counted right when
==========  ===============================================================
background  the pixel is in no object
nucleus     the pixel is inside an object
separator   no single object covers the 7 x 7 square around the pixel (the
            stroke runs along an edge or through background, not through the
            middle of one object: a merged pair split, a drawn nucleus's ring
            on its outline)
==========  ===============================================================

The overall figure pools every labelled pixel. It is a check on the labels she painted,
not an instance-level AP (sparse strokes give no full outlines to match objects to).

>>> labels = np.array([[1, 2, 0]], np.uint8); objects = np.array([[0, 5, 5]])
>>> label_agreement(labels, objects)["all"]
1.0
>>> encode_rle(np.array([[0, 0, 7], [7, 7, 0]]))
[0, 2, 7, 3, 0, 1]
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from plateseg.finetune.labels import BACKGROUND, NUCLEUS, SEPARATOR

__all__ = ["SEPARATOR_SQUARE", "count_objects", "encode_rle", "label_agreement"]

#: Side of the square around a separator pixel that one object must not fill.
SEPARATOR_SQUARE = 7


def count_objects(objects: np.ndarray) -> int:
    """Objects in an instance label image (distinct non-zero values)."""
    values = np.unique(objects)
    return int(np.count_nonzero(values))


def label_agreement(labels: np.ndarray, objects: np.ndarray) -> dict[str, float | int | None]:
    """Fraction of labelled pixels that ``objects`` gets right (module table).

    Parameters
    ----------
    labels : np.ndarray
        (Y, X) uint8 correction labels: 0 unlabelled, 1 background, 2 nucleus,
        3 separator.
    objects : np.ndarray
        (Y, X) instance labels of a segmentation, 0 = background.

    Returns
    -------
    dict
        ``background``, ``nucleus``, ``separator`` and ``all``: fractions 0..1
        (``None`` where nothing carries that label), and ``pixels``: labelled pixels.
    """
    labels = np.asarray(labels)
    objects = np.asarray(objects)
    inside = objects > 0
    right: dict[str, tuple[int, int]] = {}
    for name, value in (("background", BACKGROUND), ("nucleus", NUCLEUS)):
        where = labels == value
        hits = inside[where]
        good = int(np.count_nonzero(hits if value == NUCLEUS else ~hits))
        right[name] = (good, int(np.count_nonzero(where)))
    where = labels == SEPARATOR
    good = 0
    if where.any():
        rows, cols = np.nonzero(where)
        pad = SEPARATOR_SQUARE // 2
        y0, y1 = max(int(rows.min()) - pad, 0), int(rows.max()) + pad + 1
        x0, x1 = max(int(cols.min()) - pad, 0), int(cols.max()) + pad + 1
        box = objects[y0:y1, x0:x1]
        high = ndi.maximum_filter(box, size=SEPARATOR_SQUARE, mode="nearest")
        low = ndi.minimum_filter(box, size=SEPARATOR_SQUARE, mode="nearest")
        deep = (high == low) & (box > 0)
        good = int(np.count_nonzero(~deep[where[y0:y1, x0:x1]]))
    right["separator"] = (good, int(np.count_nonzero(where)))
    found: dict[str, float | int | None] = {
        name: (round(hit / total, 4) if total else None) for name, (hit, total) in right.items()
    }
    total = sum(t for _, t in right.values())
    found["all"] = round(sum(h for h, _ in right.values()) / total, 4) if total else None
    found["pixels"] = total
    return found


def encode_rle(array: np.ndarray) -> list[int]:
    """``[value, length, value, length, …]`` runs of a 2-D integer array, row-major
    (what :func:`plateseg.web.scribbles.decode_rle` reads back)."""
    flat = np.asarray(array).ravel()
    if flat.size == 0:
        return []
    starts = np.r_[0, np.flatnonzero(flat[1:] != flat[:-1]) + 1]
    lengths = np.diff(np.r_[starts, flat.size])
    return np.column_stack([flat[starts], lengths]).ravel().astype(np.int64).tolist()
