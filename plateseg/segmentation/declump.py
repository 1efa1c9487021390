"""Declumping: split touching nuclei at the necks of their distance transform.

CellProfiler's "shape" declumping: the Euclidean distance to the background, its local
maxima (one per nucleus once maxima closer than ``min_distance`` or joined by no real
dip are merged), and a watershed of the negated distance from those maxima, run only
on the connected components that hold two or more of them.

Speed: the distance transform and the watershed each run once on a canvas packed with
the components' bounding boxes (:mod:`plateseg.segmentation.packing`): the work scales
with the objects, not the image, without per-object call overhead.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["declump"]


def _windows(components: np.ndarray) -> list[tuple[slice, slice] | None]:
    """Each component's bounding box grown by one pixel (clipped); ``None`` for gaps."""
    height, width = components.shape
    windows: list[tuple[slice, slice] | None] = []
    for box in ndi.find_objects(components):
        if box is None:
            windows.append(None)
            continue
        rows, cols = box
        windows.append(
            (
                slice(max(rows.start - 1, 0), min(rows.stop + 1, height)),
                slice(max(cols.start - 1, 0), min(cols.stop + 1, width)),
            )
        )
    return windows


def _distance(
    components: np.ndarray, windows: list[tuple[slice, slice] | None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Euclidean distance to the background, lightly smoothed, and its local maxima.

    Each connected component's window (bounding box grown by one pixel) is copied onto
    one packed canvas (:mod:`plateseg.segmentation.packing`) with background between
    windows, and ``distance_transform_edt`` runs once on that canvas: the values of a
    whole-image transform, but the work scales with the objects, not the image, and
    there is no per-object call overhead. A 3x3 mean then softens the ridges of the
    pixel grid, and the pixels equal to their 3x3 maximum are the candidate maxima
    (every pixel of a plateau).

    Returns
    -------
    distance : np.ndarray
        (Y, X) float32, 0 on the background.
    py, px : np.ndarray
        Row and column of every candidate maximum, intp.
    """
    from plateseg.segmentation.packing import pack_windows

    distance = np.zeros(components.shape, np.float32)
    present = [(index, w) for index, w in enumerate(windows, start=1) if w is not None]
    if not present:
        return distance, np.empty(0, np.intp), np.empty(0, np.intp)
    packing = pack_windows([w for _i, w in present], width=components.shape[1])
    inside = np.zeros(packing.shape, bool)
    for (index, window), place in zip(present, packing.places, strict=True):
        inside[place] = components[window] == index
    local = ndi.uniform_filter(ndi.distance_transform_edt(inside).astype(np.float32), 3)
    local[~inside] = 0.0
    owner, dy, dx = packing.offsets()
    cy, cx = np.nonzero(inside)
    which = owner[cy, cx]
    distance[cy + dy[which], cx + dx[which]] = local[cy, cx]
    peak_y, peak_x = np.nonzero(inside & (local >= ndi.maximum_filter(local, 3)))
    which = owner[peak_y, peak_x]
    return distance, peak_y + dy[which], peak_x + dx[which]


def _markers(
    distance: np.ndarray,
    components: np.ndarray,
    candidates: tuple[np.ndarray, np.ndarray],
    min_distance: float,
    reach: float,
    depth: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate maxima of ``distance`` that stand for separate objects.

    A maximum is dropped when a higher one of the same component (ties: the first)
    lies closer than ``min_distance``, or within ``reach`` with no real dip between
    them: the distance along the straight line joining them never falls below
    ``(1 - depth)`` times the lower maximum (one elongated body, not two touching ones).

    Returns the (n, 2) int coordinates of the kept maxima and their component ids.
    """
    from scipy.spatial import cKDTree

    py, px = candidates
    count = len(py)
    if count == 0:
        return np.empty((0, 2), np.intp), np.empty(0, np.intp)
    height = distance[py, px]
    comp = components[py, px]
    suppressed = np.zeros(count, bool)
    pairs = cKDTree(np.column_stack([py, px])).query_pairs(reach, output_type="ndarray")
    if len(pairs):
        pairs = pairs[comp[pairs[:, 0]] == comp[pairs[:, 1]]]
    if len(pairs):
        a, b = pairs[:, 0], pairs[:, 1]
        a_higher = (height[a] > height[b]) | ((height[a] == height[b]) & (a < b))
        high, low = np.where(a_higher, a, b), np.where(a_higher, b, a)
        gap = np.hypot(py[high] - py[low], px[high] - px[low])
        # the lowest point on the straight line between the two maxima ~ the saddle
        steps = np.linspace(0.0, 1.0, 17)[None, :]
        line_y = np.rint(py[high, None] + (py[low] - py[high])[:, None] * steps).astype(np.intp)
        line_x = np.rint(px[high, None] + (px[low] - px[high])[:, None] * steps).astype(np.intp)
        saddle = distance[line_y, line_x].min(axis=1)
        shallow = saddle >= (1.0 - depth) * height[low]
        suppressed[low[(gap < min_distance) | shallow]] = True
    keep = ~suppressed
    return np.column_stack([py[keep], px[keep]]), comp[keep]


def declump(
    mask_labels: np.ndarray, count: int, min_distance: float, reach: float, depth: float
) -> np.ndarray:
    """Split components holding several distance maxima with a watershed.

    The clumps' windows are packed onto one canvas and flooded by one watershed call.
    """
    from skimage.segmentation import watershed

    from plateseg.segmentation.packing import pack_windows

    windows = _windows(mask_labels)
    distance, py, px = _distance(mask_labels, windows)
    points, comp = _markers(distance, mask_labels, (py, px), min_distance, reach, depth)
    per_component = np.bincount(comp, minlength=count + 1)
    clumps = np.flatnonzero(per_component >= 2)
    if len(clumps) == 0:
        return mask_labels
    clump_windows = [windows[k - 1] for k in clumps]
    packing = pack_windows([w for w in clump_windows if w is not None], width=mask_labels.shape[1])
    mask = np.zeros(packing.shape, bool)
    for k, window, place in zip(clumps, clump_windows, packing.places, strict=True):
        assert window is not None
        mask[place] = mask_labels[window] == k
    height = packing.gather(distance)
    owner, dy, dx = packing.offsets()
    slot = np.full(count + 1, -1, np.intp)
    slot[clumps] = np.arange(len(clumps))
    in_clump = slot[comp] >= 0
    chosen, chosen_slot = points[in_clump], slot[comp[in_clump]]
    markers = np.zeros(packing.shape, np.int32)
    markers[chosen[:, 0] - dy[chosen_slot], chosen[:, 1] - dx[chosen_slot]] = np.arange(
        1, len(chosen) + 1, dtype=np.int32
    )
    split = watershed(-height, markers, mask=mask)
    out = mask_labels.astype(np.int64)
    cy, cx = np.nonzero(mask)
    which = owner[cy, cx]
    out[cy + dy[which], cx + dx[which]] = split[cy, cx].astype(np.int64) + count
    return out
