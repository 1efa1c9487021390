"""Classical nuclei segmentation: threshold, then declump with a distance-transform watershed.

The pipeline (CellProfiler's IdentifyPrimaryObjects, "shape" declumping)::

    image ─► background removed, scaled to its foreground (preprocess.normalise)
          ─► [no diameter given: nuclear diameter d estimated → range 0.5d..2d]
          ─► gaussian(sigma) ─► threshold (li | otsu | otsu3, at least min_contrast
             noise SDs) * correction ─► [adaptive: and above a local threshold]
          ─► drop fragments ─► fill holes
          ─► distance transform x (image smoothed at ~d/6)**0.75 ─► maxima, suppressed
             within min_diameter/2 ─► watershed of clumps only ─► size filter (diameter range)

Speed: hole filling, the Euclidean distance transform and the watershed run once each
on a canvas packed with the objects' bounding boxes (the work scales with the objects,
not the image, without per-object call overhead); maxima are 3x3 plateau maxima,
suppressed with a k-d tree and a saddle test rather than a large maximum filter; the
watershed floods only the connected components that hold two or more maxima.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from plateseg.contracts.params import DEFAULT_RANGE, ClassicalParams
from plateseg.segmentation.filters import downsample, fill_holes, gaussian, relabel, upsample
from plateseg.segmentation.thresholds import clear_below_local, relative_threshold

__all__ = [
    "DEFAULT_RANGE",
    "ClassicalParams",
    "ClassicalSegmentation",
    "filter_objects",
    "labels_from_mask",
    "scale_intensity",
    "segment_nuclei",
]

#: Exponent ``w`` of the intensity factor in the declumping landscape, distance x
#: intensity**w (0 = shape only). A dim seam between two nuclei pressed flat against
#: each other leaves the distance transform without a neck; the product has one. On the
#: real DSB 2018 benchmark image AP@0.5 is 0.78 / 0.84 / 0.85 / 0.84 for w = 0 / 0.5 /
#: 0.75 / 1 (``bench/accuracy.py``), the synthetic set stays at 1.0.
INTENSITY_WEIGHT = 0.75


#: The intensity factor of the declumping landscape is the background-free image smoothed
#: at this fraction of ``min_diameter`` (~1/6 of a typical nucleus): a dim seam between
#: two nuclei stays a dip, bright chromatin spots inside one nucleus mostly do not seed.
#: On BBBC039 training images (6, clean / with synthetic chromocentres) AP@0.5 was
#: 0.816 / 0.41 at 0.25, 0.800 / 0.55 at 0.35 and 0.785 / 0.60 at 0.5.
DECLUMP_SMOOTHING = 0.35


@dataclass(frozen=True)
class ClassicalSegmentation:
    """Result of :func:`segment_nuclei`.

    Attributes
    ----------
    labels : np.ndarray
        (Y, X) uint16 labels (uint32 above 65534 objects), 0 = background, 1..n.
    threshold : float
        Final threshold at the mean background, on the 0..1 scale of the measurements
        (integers divided by their dtype maximum).
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


def _blobs(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` smoothed by ``sigma``; for sigma >= 3 computed on a 2x block-averaged
    copy and upsampled linearly (the same values to within a few percent: the result
    is smooth at that scale), at a quarter of the cost."""
    if sigma < 3 or min(image.shape) < 16:
        return gaussian(image, sigma)
    small = gaussian(downsample(image, 2), sigma / 2)
    return upsample(small, 2, (int(image.shape[0]), int(image.shape[1])))


def segment_nuclei(image: np.ndarray, params: ClassicalParams) -> ClassicalSegmentation:
    """Segment nuclei in one fluorescence image.

    The image is first made background-free and scaled to its own foreground
    (:func:`~plateseg.segmentation.preprocess.normalise`), so camera offsets, gain and
    slow illumination gradients do not move the threshold; diameters left ``None`` are
    estimated from the image (:meth:`ClassicalParams.sized`).

    Parameters
    ----------
    image : np.ndarray
        (Y, X) nuclear stain, any integer or float dtype (floats assumed 0..1).
    params : ClassicalParams

    Returns
    -------
    ClassicalSegmentation
        Labels (uint16, or uint32 above 65534 objects), the threshold at the mean
        background on the 0..1 scale of the measurements, and foreground fraction.
    """
    from plateseg.segmentation.preprocess import estimate_diameter, normalise

    normalised = normalise(image)
    unsized = params.min_diameter is None or params.max_diameter is None
    params = params.sized(estimate_diameter(normalised) if unsized else None)
    assert params.min_diameter is not None and params.smoothing_sigma is not None
    flat = normalised.image
    sigma = params.smoothing_sigma
    smoothed = gaussian(flat, sigma) if sigma > 0 else flat
    # the floor is capped at half a typical nucleus: on a crowded field the background
    # pixels' spread (the noise estimate) includes nuclear edges
    floor = min(params.min_contrast * normalised.noise / normalised.scale, 0.5)
    relative = relative_threshold(
        smoothed, params.threshold_method, params.threshold_correction, floor
    )
    mask = np.ascontiguousarray(smoothed > relative)
    if params.threshold_scope == "adaptive" and params.adaptive_weight > 0:
        local_sigma = params.adaptive_sigma or 0.3 * params.min_diameter
        clear_below_local(mask, smoothed, relative, local_sigma, params.adaptive_weight)
    unit = 1.0 / np.iinfo(image.dtype).max if image.dtype.kind in "ui" else 1.0
    threshold = (float(np.mean(normalised.background)) + relative * normalised.scale) * unit
    if params.declump:  # holes are filled on the declumping canvas, object by object
        blobs = _blobs(flat, max(sigma, DECLUMP_SMOOTHING * params.min_diameter))
        np.maximum(blobs, np.float32(1e-3), out=blobs)
        labels, filled = _labels(mask, params, blobs, params.fill_holes)
        foreground = float(np.count_nonzero(mask) + filled) / mask.size
    else:
        if params.fill_holes:
            mask = fill_holes(mask)
        foreground = float(mask.mean())
        labels = labels_from_mask(mask, params)
    return ClassicalSegmentation(labels, threshold, foreground)


def labels_from_mask(
    mask: np.ndarray, params: ClassicalParams, intensity: np.ndarray | None = None
) -> np.ndarray:
    """Turn a foreground mask into nuclei: drop fragments, declump, filter by size.

    The second half of :func:`segment_nuclei`, shared by the model-based segmenters
    (which threshold a probability map instead of the image). Holes are not filled here.

    Parameters
    ----------
    mask : np.ndarray
        (Y, X) bool foreground.
    params : ClassicalParams
        Uses the diameter range, ``declump``, ``neck_depth`` and ``exclude_border``.
    intensity : np.ndarray, optional
        (Y, X) float32 smoothed stain, > 0 on the mask (its scale does not matter). When
        given, declumping weighs the distance transform by
        ``intensity ** INTENSITY_WEIGHT``, so a dimmer seam between touching nuclei
        counts as a neck.

    Returns
    -------
    np.ndarray
        (Y, X) uint16 labels 1..n (uint32 above 65534 objects).
    """
    return _labels(mask, params, intensity, fill=False)[0]


def _labels(
    mask: np.ndarray, params: ClassicalParams, intensity: np.ndarray | None, fill: bool
) -> tuple[np.ndarray, int]:
    """:func:`labels_from_mask`, optionally filling each object's holes on the way
    (declumping only); also returns the number of hole pixels filled."""
    if params.min_diameter is None or params.max_diameter is None:
        params = params.sized(None)
    assert params.min_diameter is not None and params.max_diameter is not None
    components, count = ndi.label(mask)
    if count == 0:
        return np.zeros(mask.shape, np.uint16), 0
    filled = 0
    if params.declump:
        from plateseg.segmentation.declump import declump

        min_area = 0.5 * np.pi * (0.7 * params.min_diameter / 2) ** 2
        sizes = np.bincount(components.ravel(), minlength=count + 1)
        result = declump(
            components,
            count,
            sizes,
            sizes >= min_area,
            params.min_diameter / 2,
            params.max_diameter,
            params.neck_depth,
            intensity,
            INTENSITY_WEIGHT if intensity is not None else 0.0,
            fill,
        )
        labels, areas, filled = result.labels, result.areas, result.filled
    else:
        labels = components
        areas = np.bincount(labels.ravel(), minlength=count + 1)
    diameters = np.sqrt(4.0 * areas / np.pi)
    keep = (diameters >= 0.7 * params.min_diameter) & (diameters <= 1.3 * params.max_diameter)
    if params.exclude_border:
        keep[_border_ids(labels)] = False
    return relabel(labels, keep), filled


def _border_ids(labels: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))


def filter_objects(
    labels: np.ndarray,
    min_diameter: float | None = None,
    max_diameter: float | None = None,
    exclude_border: bool = False,
) -> np.ndarray:
    """Keep objects with equivalent diameter in ``[0.7 * min, 1.3 * max]`` (a bound
    left ``None`` is not applied) and, with ``exclude_border``, off the image border;
    renumbered 1..n. Returns ``labels`` itself when nothing is asked."""
    if min_diameter is None and max_diameter is None and not exclude_border:
        return labels
    areas = np.bincount(labels.ravel())
    diameters = np.sqrt(4.0 * areas / np.pi)
    keep = np.ones(len(areas), bool)
    if min_diameter is not None:
        keep &= diameters >= 0.7 * min_diameter
    if max_diameter is not None:
        keep &= diameters <= 1.3 * max_diameter
    if exclude_border:
        keep[_border_ids(labels)] = False
    return relabel(labels, keep)
