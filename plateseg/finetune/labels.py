"""Sparse correction labels for fine-tuning: what a scientist paints, as training targets.

A label image has the field's full resolution and one ``uint8`` per pixel:

=====  ============  =====================================================  ============
value  name          painted by                                             allowed
=====  ============  =====================================================  ============
0      unlabelled    (nothing: no loss here)                                any
1      background    background scribble; an erased false object            background
2      nucleus       nucleus scribble; a drawn missing nucleus (inside)     interior
3      separator     a stroke splitting two merged nuclei; the ring         background or
                     around a drawn nucleus                                 boundary
=====  ============  =====================================================  ============

Values 1 and 2 are the pixel classifier's scribble convention (ilastik's), so the same
painted PNGs train either model. A label allows a *set* of the network's three classes
(background, interior, boundary), and the loss is the log of the probability of that
set: a split stroke only needs the two interiors apart, whether the network calls the
line background or boundary. A nucleus stroke asks for interior (allowing the boundary
class too would let the network call every nucleus "boundary" and find no seeds).

:func:`scribbles_from_truth` draws such labels from an annotated instance mask the way
a person would (short strokes through some nuclei, strokes across the background, the
contact lines of touching nuclei): for the benchmark and the tests.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from plateseg.errors import InputError

__all__ = [
    "ALLOWED",
    "BACKGROUND",
    "NUCLEUS",
    "SEPARATOR",
    "UNLABELLED",
    "check_labels",
    "label_counts",
    "labels_from_masks",
    "scribbles_from_truth",
]

UNLABELLED = 0
BACKGROUND = 1
NUCLEUS = 2
SEPARATOR = 3
#: Label value -> the network classes (0 background, 1 interior, 2 boundary) it allows.
ALLOWED: dict[int, tuple[int, ...]] = {
    BACKGROUND: (0,),
    NUCLEUS: (1,),
    SEPARATOR: (0, 2),
}
_NAMES = {BACKGROUND: "background", NUCLEUS: "nucleus", SEPARATOR: "separator"}


def label_counts(labels: np.ndarray) -> dict[str, int]:
    """Labelled pixels per label name (``background``, ``nucleus``, ``separator``)."""
    counts = np.bincount(np.asarray(labels, np.uint8).ravel(), minlength=4)
    return {name: int(counts[value]) for value, name in _NAMES.items()}


def check_labels(labels: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``labels`` as uint8 after checking its shape and values; :class:`InputError`
    naming ``where`` otherwise."""
    array = np.asarray(labels)
    if array.shape != tuple(shape):
        raise InputError(f"{where}: labels have shape {array.shape}, the field {tuple(shape)}")
    if array.dtype.kind not in "uib":
        raise InputError(f"{where}: labels must be integers 0-3, not {array.dtype}")
    if array.size and (int(array.min()) < 0 or int(array.max()) > SEPARATOR):
        raise InputError(
            f"{where}: label values must be 0 (unlabelled), 1 (background), 2 (nucleus) "
            f"or 3 (separator); found {int(array.min())}..{int(array.max())}"
        )
    return array.astype(np.uint8)


def labels_from_masks(masks: np.ndarray) -> np.ndarray:
    """Dense labels from an instance (or binary) mask: nucleus inside each object,
    separator on its one-pixel inner outline (where touching objects meet), background
    everywhere else."""
    from skimage.segmentation import find_boundaries

    truth = np.asarray(masks)
    if truth.dtype == bool:
        truth = truth.astype(np.int32)
    out = np.full(truth.shape, BACKGROUND, np.uint8)
    out[truth > 0] = NUCLEUS
    out[find_boundaries(truth, mode="inner") & (truth > 0)] = SEPARATOR
    return out


def _stroke(
    shape: tuple[int, int], y: float, x: float, angle: float, length: float, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of a straight stroke of ``length`` and ``width`` centred on (y, x)."""
    steps = np.linspace(-0.5, 0.5, max(2, int(length) + 1))
    centre_y = np.rint(y + np.sin(angle) * length * steps).astype(np.intp)
    centre_x = np.rint(x + np.cos(angle) * length * steps).astype(np.intp)
    half = width // 2
    oy, ox = np.mgrid[-half : half + 1, -half : half + 1]
    ys = (centre_y[:, None] + oy.ravel()[None, :]).ravel()
    xs = (centre_x[:, None] + ox.ravel()[None, :]).ravel()
    inside = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
    return ys[inside], xs[inside]


def scribbles_from_truth(
    truth: np.ndarray,
    rng: np.random.Generator,
    fraction: float = 0.3,
    background_strokes: int = 12,
) -> np.ndarray:
    """Sparse strokes a person would paint, drawn from an instance mask.

    Parameters
    ----------
    truth : np.ndarray
        (Y, X) instance labels, 0 = background.
    rng : np.random.Generator
    fraction : float
        Share of the nuclei that get a stroke (a line through their deepest point,
        about half a diameter long, 3 px wide, kept over 2 px inside the outline).
    background_strokes : int
        Straight strokes of two nuclear diameters across the background, kept at least
        3 px from every nucleus.

    Returns
    -------
    np.ndarray
        (Y, X) uint8 labels (module table); the contact lines between touching nuclei
        that both got a stroke are labelled separator.
    """
    truth = np.asarray(truth)
    shape = (int(truth.shape[0]), int(truth.shape[1]))
    out = np.zeros(shape, np.uint8)
    ids = np.unique(truth)
    ids = ids[ids > 0]
    if ids.size == 0:
        chosen = np.zeros(0, np.int64)
        diameter = 14.0
    else:
        areas = np.bincount(truth.ravel())[ids]
        diameter = float(np.sqrt(4 * np.median(areas) / np.pi))
        chosen = rng.choice(ids, size=max(1, round(fraction * ids.size)), replace=False)
    distance = ndi.distance_transform_edt(truth > 0)
    boxes = ndi.find_objects(truth)
    for label in chosen:
        box = boxes[int(label) - 1]
        if box is None:
            continue
        inside = truth[box] == label
        local = np.where(inside, distance[box], 0)
        py, px = np.unravel_index(int(np.argmax(local)), local.shape)
        ys, xs = _stroke(
            shape, py + box[0].start, px + box[1].start, rng.uniform(0, np.pi), 0.5 * diameter, 3
        )
        keep = (truth[ys, xs] == label) & (distance[ys, xs] > 2)  # not on the outline
        out[ys[keep], xs[keep]] = NUCLEUS
    far = ndi.distance_transform_edt(truth == 0) >= 3
    candidates = np.flatnonzero(far)
    for _ in range(background_strokes if candidates.size else 0):
        start = int(candidates[rng.integers(candidates.size)])
        y, x = divmod(start, shape[1])
        ys, xs = _stroke(shape, y, x, rng.uniform(0, np.pi), 2 * diameter, 3)
        keep = far[ys, xs]
        out[ys[keep], xs[keep]] = BACKGROUND
    # contact lines between two stroked nuclei: the pixels of one that touch the other
    if chosen.size:
        stroked = np.zeros(int(truth.max()) + 1, bool)
        stroked[chosen] = True
        grown = ndi.grey_dilation(truth, size=3)
        shrunk = ndi.grey_erosion(np.where(truth > 0, truth, np.iinfo(np.int32).max), size=3)
        contact = (truth > 0) & ((grown != truth) | (shrunk != truth)) & stroked[truth]
        neighbour = np.where(grown != truth, grown, shrunk)
        contact &= (neighbour > 0) & (neighbour < len(stroked))
        contact &= stroked[np.clip(neighbour, 0, len(stroked) - 1)]
        out[contact] = SEPARATOR
    return out
