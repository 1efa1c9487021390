"""Secondary objects: whole cells grown from the nuclei in a cytoplasm channel.

CellProfiler's IdentifySecondaryObjects ("Watershed - Gradient" flavour): the
cytoplasm channel is smoothed and thresholded (Otsu, with the classical segmenter's
empty-field test); each nucleus seeds one cell, and a watershed on the channel's
gradient magnitude floods the cell mask from the seeds, so neighbouring cells meet
where the stain changes fastest. A cell keeps its nucleus's label, so cell ``i`` and
nucleus ``i`` are one row of the object table; pixels no nucleus reaches stay
background. Cells are at most ``max_distance`` pixels from their nucleus.

Measurements are those of :func:`~plateseg.segmentation.measure.measure_objects`,
prefixed ``Cells_`` (``Cells_AreaShape_Area``, ``Cells_Intensity_MeanIntensity_w2``...).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from plateseg.contracts.params import SecondaryParams

__all__ = ["SecondaryParams", "cell_metrics", "segment_cells"]


def segment_cells(
    cytoplasm: np.ndarray, nuclei: np.ndarray, params: SecondaryParams
) -> tuple[np.ndarray, float]:
    """Grow one cell per nucleus.

    Parameters
    ----------
    cytoplasm : np.ndarray
        (Y, X) cytoplasm or membrane stain, any real dtype.
    nuclei : np.ndarray
        (Y, X) nuclear labels 1..n.
    params : SecondaryParams

    Returns
    -------
    cells : np.ndarray
        (Y, X) labels, same dtype as ``nuclei``; cell ``i`` contains nucleus ``i``.
    threshold : float
        Threshold used on the 0..1 scaled, smoothed cytoplasm channel.
    """
    from skimage.segmentation import watershed

    from plateseg.segmentation.classical import scale_intensity
    from plateseg.segmentation.filters import gaussian
    from plateseg.segmentation.thresholds import global_threshold

    scaled = scale_intensity(cytoplasm)
    smoothed = gaussian(scaled, params.smoothing_sigma) if params.smoothing_sigma > 0 else scaled
    threshold = global_threshold(smoothed, "otsu", 5.0)
    if threshold < float(smoothed.max()):
        threshold *= params.threshold_correction
    if not nuclei.any():
        return np.zeros_like(nuclei), threshold
    near = ndi.distance_transform_edt(nuclei == 0) <= params.max_distance
    mask = ((smoothed > threshold) & near) | (nuclei > 0)
    gradient = np.hypot(ndi.sobel(smoothed, axis=0), ndi.sobel(smoothed, axis=1))
    cells = watershed(gradient, markers=nuclei.astype(np.int32), mask=mask)
    return cells.astype(nuclei.dtype), threshold


def cell_metrics(
    objects: dict[str, np.ndarray], channels: list[str], threshold: float
) -> dict[str, float | None]:
    """Per-image cell metrics from the ``Cells_`` columns."""
    count = len(objects["Cells_AreaShape_Area"])
    area = objects["Cells_AreaShape_Area"][objects["Cells_AreaShape_Area"] > 0]
    metrics: dict[str, float | None] = {
        "Count_Cells": float(np.count_nonzero(objects["Cells_AreaShape_Area"] > 0)),
        "Mean_Cells_AreaShape_Area": float(area.mean()) if area.size else None,
        "Median_Cells_AreaShape_Area": float(np.median(area)) if area.size else None,
        "Threshold_FinalThreshold_Cells": threshold,
    }
    for channel in channels:
        column = objects[f"Cells_Intensity_MeanIntensity_{channel}"]
        finite = column[np.isfinite(column)] if count else column
        metrics[f"Mean_Cells_Intensity_MeanIntensity_{channel}"] = (
            float(finite.mean()) if finite.size else None
        )
    return metrics
