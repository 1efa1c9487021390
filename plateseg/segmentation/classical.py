"""Classical nuclei segmentation: threshold, then declump with a distance-transform watershed.

The pipeline (CellProfiler's IdentifyPrimaryObjects, "shape" declumping)::

    image ─► scale to 0..1 ─► gaussian(sigma) ─► global threshold (otsu | li) * correction
          ─► fill holes ─► drop fragments ─► distance transform ─► maxima, suppressed
             within min_diameter/2 ─► watershed of clumps only ─► size filter (diameter range)

Speed: the Euclidean distance transform runs per object on its bounding box (the work
scales with the objects, not the image); maxima are 3x3 plateau maxima, suppressed
with a k-d tree and a saddle test rather than a large maximum filter; the watershed
runs only on the connected components that hold two or more maxima.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import ndimage as ndi

__all__ = ["ClassicalParams", "ClassicalSegmentation", "scale_intensity", "segment_nuclei"]


class ClassicalParams(BaseModel):
    """Parameters of the classical segmenter (``recipe.params``).

    Attributes
    ----------
    min_diameter, max_diameter : float
        Expected nuclear diameter range in pixels: the main knob. Objects whose
        equivalent diameter falls outside ``[0.7 * min, 1.3 * max]`` are discarded, and
        maxima closer than ``min_diameter / 2`` are merged when declumping.
    smoothing_sigma : float
        Gaussian sigma in pixels before thresholding (0 = none).
    threshold_method : {"otsu", "li"}
        Global threshold: Otsu's two-class variance, or Li's minimum cross-entropy.
    threshold_correction : float
        Multiplies the computed threshold (<1 = more permissive).
    min_contrast : float
        The field counts as empty unless the median of the pixels above the threshold
        exceeds the median below it by this many noise standard deviations (robust,
        from the median absolute deviation below the threshold). Otsu would otherwise
        split the noise of an empty well into hundreds of specks. 0 disables the check;
        real stains give 20-300, empty fields ~2.
    declump : bool
        Split touching nuclei with a distance-transform watershed.
    neck_depth : float
        Two touching bodies are split only where the neck between them is at least this
        fraction narrower than the smaller body (distance-transform saddle vs. peak).
    fill_holes : bool
        Fill holes inside objects.
    exclude_border : bool
        Discard objects that touch the image border.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_diameter: float = Field(default=10.0, gt=1.0, le=1000.0)
    max_diameter: float = Field(default=50.0, gt=1.0, le=2000.0)
    smoothing_sigma: float = Field(default=1.0, ge=0.0, le=20.0)
    threshold_method: Literal["otsu", "li"] = "otsu"
    threshold_correction: float = Field(default=1.0, gt=0.0, le=10.0)
    min_contrast: float = Field(default=5.0, ge=0.0, le=1000.0)
    declump: bool = True
    neck_depth: float = Field(default=0.05, gt=0.0, lt=1.0)
    fill_holes: bool = True
    exclude_border: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> ClassicalParams:
        if self.max_diameter < self.min_diameter:
            raise ValueError(
                f"max_diameter ({self.max_diameter}) must be >= min_diameter ({self.min_diameter})"
            )
        return self


@dataclass(frozen=True)
class ClassicalSegmentation:
    """Result of :func:`segment_nuclei`.

    Attributes
    ----------
    labels : np.ndarray
        (Y, X) uint16 labels (uint32 above 65534 objects), 0 = background, 1..n.
    threshold : float
        Final threshold on the 0..1 scaled, smoothed image.
    foreground_fraction : float
        Fraction of pixels above the threshold (after hole filling).
    """

    labels: np.ndarray
    threshold: float
    foreground_fraction: float

    @property
    def count(self) -> int:
        return int(self.labels.max(initial=0))


def scale_intensity(image: np.ndarray) -> np.ndarray:
    """Scale to 0..1 float32 as CellProfiler does: integers divided by their dtype maximum.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) bool, integer or float array. Floats are returned as float32 unchanged.

    Returns
    -------
    np.ndarray
        (Y, X) float32.
    """
    if image.dtype == bool:
        return image.astype(np.float32)
    if image.dtype.kind in "ui":
        scale = np.float32(1.0 / np.iinfo(image.dtype).max)
        return image.astype(np.float32) * scale
    return image.astype(np.float32, copy=False)


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
    padded = np.pad(rows, ((radius, radius), (0, 0)), mode="symmetric")
    height = image.shape[0]
    out = padded[0:height] * weights[0]
    for k in range(1, len(weights)):
        out += padded[k : k + height] * weights[k]
    return out


def _threshold(smoothed: np.ndarray, method: str, min_contrast: float) -> float:
    """Global threshold; above the image maximum when foreground and background do not
    differ by ``min_contrast`` noise standard deviations (an empty field)."""
    from skimage.filters import threshold_li, threshold_otsu

    step = max(1, int(np.sqrt(smoothed.size / 250_000)))  # a ~0.25 Mpx sample is plenty
    sample = smoothed[::step, ::step]
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


def _fill_holes(mask: np.ndarray) -> np.ndarray:
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


def _distance(components: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Euclidean distance to the background, lightly smoothed, and its local maxima.

    Each connected component gets ``distance_transform_edt`` on its own bounding box
    (padded by one pixel): the same values as one whole-image transform, but the work
    scales with the objects, not the image (~6x faster on a 2048x2048 field). A 3x3
    mean then softens the ridges of the pixel grid, and the pixels equal to their 3x3
    maximum are the candidate maxima (every pixel of a plateau).

    Returns
    -------
    distance : np.ndarray
        (Y, X) float32, 0 on the background.
    py, px : np.ndarray
        Row and column of every candidate maximum, intp.
    """
    distance = np.zeros(components.shape, np.float32)
    height, width = components.shape
    rows_found: list[np.ndarray] = []
    cols_found: list[np.ndarray] = []
    for index, box in enumerate(ndi.find_objects(components), start=1):
        if box is None:
            continue
        rows, cols = box
        top, left = max(rows.start - 1, 0), max(cols.start - 1, 0)
        window = (slice(top, min(rows.stop + 1, height)), slice(left, min(cols.stop + 1, width)))
        inside = components[window] == index
        local = ndi.uniform_filter(ndi.distance_transform_edt(inside).astype(np.float32), 3)
        local[~inside] = 0.0
        distance[window][inside] = local[inside]
        peak_y, peak_x = np.nonzero(inside & (local >= ndi.maximum_filter(local, 3)))
        rows_found.append(peak_y + top)
        cols_found.append(peak_x + left)
    if not rows_found:
        return distance, np.empty(0, np.intp), np.empty(0, np.intp)
    return distance, np.concatenate(rows_found), np.concatenate(cols_found)


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


def _declump(
    mask_labels: np.ndarray, count: int, min_distance: float, reach: float, depth: float
) -> np.ndarray:
    """Split components holding several distance maxima with a watershed."""
    from skimage.segmentation import watershed

    distance, py, px = _distance(mask_labels)
    points, comp = _markers(distance, mask_labels, (py, px), min_distance, reach, depth)
    per_component = np.bincount(comp, minlength=count + 1)
    clumps = np.flatnonzero(per_component >= 2)
    if len(clumps) == 0:
        return mask_labels
    is_clump = np.zeros(count + 1, bool)
    is_clump[clumps] = True
    clump_mask = is_clump[mask_labels]
    rows = np.flatnonzero(clump_mask.any(axis=1))
    cols = np.flatnonzero(clump_mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    window = (slice(y0, y1), slice(x0, x1))
    markers = np.zeros((y1 - y0, x1 - x0), np.int32)
    in_clump = is_clump[comp]
    chosen = points[in_clump]
    markers[chosen[:, 0] - y0, chosen[:, 1] - x0] = np.arange(1, len(chosen) + 1)
    split = watershed(-distance[window], markers, mask=clump_mask[window])
    out = mask_labels.astype(np.int64)
    region = out[window]
    region[clump_mask[window]] = split[clump_mask[window]] + count
    return out


def _relabel(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Keep labels where ``keep[label]``, renumbered 1..n in order; uint16 or uint32."""
    keep = keep.copy()
    keep[0] = False
    lut = np.zeros(len(keep), np.int64)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    n = int(keep.sum())
    dtype = np.uint16 if n < np.iinfo(np.uint16).max else np.uint32
    return lut.astype(dtype)[labels]


def segment_nuclei(image: np.ndarray, params: ClassicalParams) -> ClassicalSegmentation:
    """Segment nuclei in one fluorescence image.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) nuclear stain, any integer or float dtype (floats assumed 0..1).
    params : ClassicalParams

    Returns
    -------
    ClassicalSegmentation
        Labels (uint16, or uint32 above 65534 objects), threshold and foreground fraction.
    """
    scaled = scale_intensity(image)
    smoothed = gaussian(scaled, params.smoothing_sigma) if params.smoothing_sigma > 0 else scaled
    threshold = (
        _threshold(smoothed, params.threshold_method, params.min_contrast)
        * params.threshold_correction
    )
    mask = smoothed > threshold
    if params.fill_holes:
        mask = _fill_holes(mask)
    foreground = float(mask.mean())
    min_area = 0.5 * np.pi * (0.7 * params.min_diameter / 2) ** 2
    components, count = ndi.label(mask)
    if count == 0:
        return ClassicalSegmentation(np.zeros(image.shape, np.uint16), threshold, foreground)
    areas = np.bincount(components.ravel(), minlength=count + 1)
    if params.declump:
        big = areas >= min_area
        big[0] = False
        components = np.where(big[components], components, 0)
        labels = _declump(
            components, count, params.min_diameter / 2, params.max_diameter, params.neck_depth
        )
    else:
        labels = components
    n_labels = int(labels.max())
    areas = np.bincount(labels.ravel(), minlength=n_labels + 1)
    diameters = np.sqrt(4.0 * areas / np.pi)
    keep = (diameters >= 0.7 * params.min_diameter) & (diameters <= 1.3 * params.max_diameter)
    if params.exclude_border:
        edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        keep[np.unique(edge)] = False
    return ClassicalSegmentation(_relabel(labels, keep), threshold, foreground)
