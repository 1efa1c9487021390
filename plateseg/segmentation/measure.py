"""Per-object and per-image measurements, named as CellProfiler names them.

Everything is computed for all objects at once (``np.bincount`` over the labelled
pixels, one sort per channel), never with a Python loop over regions; only the convex
hull (for solidity) is taken per object, on its few boundary pixels.

Per-object columns (:func:`measure_objects`)

=====================================  ==================================================
column                                 meaning
=====================================  ==================================================
``ObjectNumber``                       label value, 1..n
``AreaShape_Area``                     pixels
``AreaShape_Perimeter``                boundary length, scikit-image's 4-neighbour method
``AreaShape_EquivalentDiameter``       diameter of the disk of the same area
``AreaShape_Eccentricity``             of the ellipse with the same second moments, 0..1
``AreaShape_Solidity``                 area / convex hull area (1 for convex objects)
``AreaShape_FormFactor``               4·π·Area / Perimeter², 1 for a disk
``AreaShape_MajorAxisLength``          of the same-moments ellipse, pixels
``AreaShape_MinorAxisLength``
``AreaShape_Orientation``              degrees between the row axis and the major axis,
                                       -90..90 (scikit-image's ``orientation``)
``Location_Center_X``/``_Y``           centroid, pixels (x = column, y = row)
``AreaShape_BoundingBoxMinimum_X``/_Y  first column/row of the object (0-based)
``AreaShape_BoundingBoxMaximum_X``/_Y  last column/row + 1 (exclusive, as regionprops)
``AreaShape_BoundingBoxArea``          width x height of the bounding box, pixels
``Intensity_MeanIntensity_<ch>``       intensities scaled 0..1 (integer images divided
``Intensity_MedianIntensity_<ch>``     by their dtype maximum, as CellProfiler does)
``Intensity_IntegratedIntensity_<ch>`` sum over the object
``Intensity_MaxIntensity_<ch>``
``Intensity_MinIntensity_<ch>``
``Intensity_StdIntensity_<ch>``        population standard deviation
=====================================  ==================================================

Per-image metrics (:func:`image_metrics`; floats, ``None`` when there are no objects)

============================================  ===========================================
``Count_Nuclei``                              number of objects
``Mean_Nuclei_AreaShape_Area``                mean object area, pixels
``Median_Nuclei_AreaShape_Area``              median object area, pixels
``Mean_Nuclei_Intensity_MeanIntensity_<ch>``  mean over objects, per channel
``Threshold_FinalThreshold_Nuclei``           threshold used, 0..1 scale
``Image_ForegroundFraction``                  fraction of pixels above the threshold
``Image_Intensity_MeanIntensity_<ch>``        whole-image mean, 0..1 (``segment_field``)
QC metrics and flags                          :mod:`plateseg.segmentation.quality`
============================================  ===========================================
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHAPE_COLUMNS", "image_metrics", "intensity_columns", "measure_objects"]

SHAPE_COLUMNS = (
    "ObjectNumber",
    "AreaShape_Area",
    "AreaShape_Perimeter",
    "AreaShape_EquivalentDiameter",
    "AreaShape_Eccentricity",
    "AreaShape_Solidity",
    "AreaShape_FormFactor",
    "AreaShape_MajorAxisLength",
    "AreaShape_MinorAxisLength",
    "AreaShape_Orientation",
    "Location_Center_X",
    "Location_Center_Y",
    "AreaShape_BoundingBoxMinimum_X",
    "AreaShape_BoundingBoxMinimum_Y",
    "AreaShape_BoundingBoxMaximum_X",
    "AreaShape_BoundingBoxMaximum_Y",
    "AreaShape_BoundingBoxArea",
)
_DIRECTIONS = 64
_INTENSITY = ("Mean", "Median", "Integrated", "Max", "Min", "Std")

# scikit-image's perimeter: code of a boundary pixel → length it contributes
_PERIMETER_WEIGHTS = np.zeros(64)
_PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1.0
_PERIMETER_WEIGHTS[[21, 33]] = np.sqrt(2.0)
_PERIMETER_WEIGHTS[[13, 23]] = (1 + np.sqrt(2.0)) / 2


def intensity_columns(channel: str) -> list[str]:
    """The six intensity column names of one channel."""
    return [f"Intensity_{name}Intensity_{channel}" for name in _INTENSITY]


def _perimeter(
    labels: np.ndarray, flat: np.ndarray, lab: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boundary pixels and per-object perimeter (scikit-image ``perimeter``, 4-neighbour).

    A boundary pixel has a 4-neighbour with another label (or the image edge); each gets
    a code from which of its 8 neighbours are boundary pixels of the same object, and
    the code maps to a length (1, sqrt(2) or (1 + sqrt(2)) / 2), as in scikit-image.
    Only the object pixels are visited (flat indices into the zero-padded labels), never
    the whole image.

    Parameters
    ----------
    labels : np.ndarray
        (Y, X) integer labels.
    flat : np.ndarray
        (m,) intp flat indices of the object pixels in ``labels``, ascending.
    lab : np.ndarray
        (m,) their labels.

    Returns
    -------
    by, bx, bl : np.ndarray
        Row, column and label of every boundary pixel (intp).
    perimeter : np.ndarray
        (n,) float64.
    """
    width = labels.shape[1]
    stride = width + 2
    padded = np.pad(labels, 1).ravel()
    ys, xs = np.divmod(flat, width)
    at = (ys + 1) * stride + xs + 1
    inner = padded[at - 1] == lab
    inner &= padded[at + 1] == lab
    inner &= padded[at - stride] == lab
    inner &= padded[at + stride] == lab
    border = ~inner
    where, bl = at[border], lab[border].astype(np.intp)
    is_border = np.zeros(padded.shape, bool)
    is_border[where] = True
    code = np.ones(len(where), np.intp)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            weight = 2 if dy == 0 or dx == 0 else 10
            near = where + (dy * stride + dx)
            code += weight * ((padded[near] == bl) & is_border[near])
    lengths = _PERIMETER_WEIGHTS[np.minimum(code, 63)]
    return ys[border], xs[border], bl, np.bincount(bl, weights=lengths, minlength=n + 1)[1:]


def _convex_areas(
    by: np.ndarray, bx: np.ndarray, bl: np.ndarray, centre_y: np.ndarray, centre_x: np.ndarray
) -> np.ndarray:
    """Area of each object's convex hull, from its support function in 64 directions.

    The hull of the boundary pixel centres, grown by half a pixel (so a convex object's
    hull area matches its pixel count), is approximated by the polygon of its 64
    supporting lines: within 0.1 % of the exact polygon for round objects, all objects
    at once with no per-object loop.
    """
    n = len(centre_y)
    if n == 0 or len(bl) == 0:
        return np.zeros(n)
    order = np.argsort(bl, kind="stable")
    labels_sorted = bl[order]
    starts = np.searchsorted(labels_sorted, np.arange(1, n + 1))
    present = np.zeros(n, bool)
    present[labels_sorted - 1] = True
    dy = by[order] - centre_y[labels_sorted - 1]
    dx = bx[order] - centre_x[labels_sorted - 1]
    angles = np.linspace(0.0, 2 * np.pi, _DIRECTIONS, endpoint=False)
    support = np.empty((n, _DIRECTIONS))
    first = starts[present]
    for k, angle in enumerate(angles):
        projection = dx * np.cos(angle) + dy * np.sin(angle)
        support[present, k] = np.maximum.reduceat(projection, first)
    support[~present] = 0.0
    support += 0.5
    step = 2 * np.pi / _DIRECTIONS
    before, after = np.roll(support, 1, axis=1), np.roll(support, -1, axis=1)
    edges = (before + after - 2 * support * np.cos(step)) / np.sin(step)
    return np.asarray(0.5 * (support * edges).sum(axis=1))


def _intensity(
    values: np.ndarray, lab: np.ndarray, n: int, counts: np.ndarray
) -> dict[str, np.ndarray]:
    """Six intensity statistics per object from the foreground pixels' values (0..1)."""
    if values.dtype.kind in "ui" and values.dtype.itemsize <= 2:
        shift = 16
        raw = values.astype(np.int64) - (
            np.iinfo(values.dtype).min if values.dtype.kind == "i" else 0
        )
        ordered = np.sort((lab.astype(np.int64) << shift) | raw)
        sorted_values = (ordered & ((1 << shift) - 1)).astype(np.float64)
        if values.dtype.kind == "i":
            sorted_values += np.iinfo(values.dtype).min
        sorted_values /= np.iinfo(values.dtype).max
    else:
        scaled = _scaled(values)
        sorted_values = scaled[np.lexsort((scaled, lab))]
    present = counts > 0
    sizes = counts[present]
    starts = (np.cumsum(sizes) - sizes).astype(np.intp)
    last = starts + sizes - 1
    total = np.add.reduceat(sorted_values, starts) if len(starts) else np.zeros(0)
    squares = np.add.reduceat(sorted_values**2, starts) if len(starts) else np.zeros(0)
    mean = total / np.maximum(sizes, 1)
    low, high = starts + (sizes - 1) // 2, starts + sizes // 2
    found = {
        "Mean": mean,
        "Median": (sorted_values[low] + sorted_values[high]) / 2,
        "Integrated": total,
        "Max": sorted_values[last],
        "Min": sorted_values[starts],
        "Std": np.sqrt(np.maximum(squares / np.maximum(sizes, 1) - mean**2, 0.0)),
    }
    result = {}
    for name, column in found.items():
        full = np.full(n, np.nan)
        full[present] = column
        result[name] = full
    return result


def _bounding_boxes(
    sorted_y: np.ndarray, sorted_x: np.ndarray, counts: np.ndarray, n: int
) -> dict[str, np.ndarray]:
    """Bounding boxes from the object pixels' coordinates sorted by label."""
    present = counts > 0
    starts = (np.cumsum(counts) - counts)[present].astype(np.intp)
    low, high = {}, {}
    for axis, values in (("X", sorted_x), ("Y", sorted_y)):
        low[axis], high[axis] = np.full(n, np.nan), np.full(n, np.nan)
        if len(starts):
            low[axis][present] = np.minimum.reduceat(values, starts)
            high[axis][present] = np.maximum.reduceat(values, starts) + 1
    found = {f"AreaShape_BoundingBoxMinimum_{axis}": low[axis] for axis in "XY"}
    found.update({f"AreaShape_BoundingBoxMaximum_{axis}": high[axis] for axis in "XY"})
    found["AreaShape_BoundingBoxArea"] = (
        found["AreaShape_BoundingBoxMaximum_X"] - found["AreaShape_BoundingBoxMinimum_X"]
    ) * (found["AreaShape_BoundingBoxMaximum_Y"] - found["AreaShape_BoundingBoxMinimum_Y"])
    return found


def _scaled(values: np.ndarray) -> np.ndarray:
    if values.dtype == bool:
        return values.astype(np.float64)
    if values.dtype.kind in "ui":
        return values.astype(np.float64) / np.iinfo(values.dtype).max
    return values.astype(np.float64)


def measure_objects(labels: np.ndarray, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Measure every object of a label image.

    Parameters
    ----------
    labels : np.ndarray
        (Y, X) integer labels 1..n (consecutive), 0 = background.
    images : dict of str to np.ndarray
        Channel name → (Y, X) image of the same shape, any integer or float dtype.

    Returns
    -------
    dict of str to np.ndarray
        Column name → (n,) array: ``ObjectNumber`` int32, the rest float64; the
        intensity columns once per channel, in the order of ``images``.
    """
    n = int(labels.max(initial=0))
    flat = np.flatnonzero(labels != 0)  # a bool array: ~2x faster than on the labels
    ys, xs = np.divmod(flat, labels.shape[1])
    raw = labels.ravel()[flat]  # the labels' own dtype: a radix sort for uint16 below
    lab = raw.astype(np.intp)
    counts = np.bincount(lab, minlength=n + 1)[1:]
    area = counts.astype(np.float64)
    safe = np.maximum(area, 1.0)
    cy = np.bincount(lab, weights=ys, minlength=n + 1)[1:] / safe
    cx = np.bincount(lab, weights=xs, minlength=n + 1)[1:] / safe
    dy, dx = ys - cy[lab - 1], xs - cx[lab - 1]
    mu_rr = np.bincount(lab, weights=dy * dy, minlength=n + 1)[1:] / safe
    mu_cc = np.bincount(lab, weights=dx * dx, minlength=n + 1)[1:] / safe
    mu_rc = np.bincount(lab, weights=dy * dx, minlength=n + 1)[1:] / safe
    spread = np.sqrt(((mu_rr - mu_cc) / 2) ** 2 + mu_rc**2)
    l1 = np.maximum((mu_rr + mu_cc) / 2 + spread, 0.0)
    l2 = np.maximum((mu_rr + mu_cc) / 2 - spread, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        eccentricity = np.where(l1 > 0, np.sqrt(np.clip(1 - l2 / l1, 0.0, 1.0)), 0.0)
    orientation = np.where(
        mu_cc == mu_rr,
        np.where(mu_rc < 0, np.pi / 4, -np.pi / 4),
        0.5 * np.arctan2(2 * mu_rc, mu_rr - mu_cc),
    )
    orientation = np.where(orientation <= -np.pi / 2 + 1e-9, np.pi / 2, orientation)
    by, bx, bl, perimeter = _perimeter(labels, flat, raw, n)
    solidity = np.minimum(area / np.maximum(_convex_areas(by, bx, bl, cy, cx), 1.0), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        form_factor = np.where(perimeter > 0, 4 * np.pi * area / perimeter**2, 0.0)
    columns: dict[str, np.ndarray] = {
        "ObjectNumber": np.arange(1, n + 1, dtype=np.int32),
        "AreaShape_Area": area,
        "AreaShape_Perimeter": perimeter,
        "AreaShape_EquivalentDiameter": np.sqrt(4 * area / np.pi),
        "AreaShape_Eccentricity": eccentricity,
        "AreaShape_Solidity": solidity,
        "AreaShape_FormFactor": form_factor,
        "AreaShape_MajorAxisLength": 4 * np.sqrt(l1),
        "AreaShape_MinorAxisLength": 4 * np.sqrt(l2),
        "AreaShape_Orientation": np.degrees(orientation),
        "Location_Center_X": cx,
        "Location_Center_Y": cy,
    }
    order = np.argsort(raw, kind="stable")
    sorted_lab = lab[order]
    columns.update(_bounding_boxes(ys[order], xs[order], counts, n))
    for channel, image in images.items():
        if image.shape != labels.shape:
            raise ValueError(f"channel {channel!r} has shape {image.shape}, labels {labels.shape}")
        stats = _intensity(image.ravel()[flat[order]], sorted_lab, n, counts)
        for name in _INTENSITY:
            columns[f"Intensity_{name}Intensity_{channel}"] = stats[name]
    return columns


def image_metrics(
    objects: dict[str, np.ndarray],
    channels: list[str],
    threshold: float | None,
    foreground_fraction: float | None,
) -> dict[str, float | None]:
    """Per-image summary of :func:`measure_objects` output (see the module table)."""
    count = len(objects["ObjectNumber"])
    area = objects["AreaShape_Area"]

    def mean(values: np.ndarray) -> float | None:
        return float(np.mean(values)) if count else None

    metrics: dict[str, float | None] = {
        "Count_Nuclei": float(count),
        "Mean_Nuclei_AreaShape_Area": mean(area),
        "Median_Nuclei_AreaShape_Area": float(np.median(area)) if count else None,
    }
    for channel in channels:
        metrics[f"Mean_Nuclei_Intensity_MeanIntensity_{channel}"] = mean(
            objects[f"Intensity_MeanIntensity_{channel}"]
        )
    metrics["Threshold_FinalThreshold_Nuclei"] = threshold
    metrics["Image_ForegroundFraction"] = foreground_fraction
    return metrics
