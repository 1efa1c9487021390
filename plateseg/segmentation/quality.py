"""Per-image quality control: saturation, focus, emptiness (flags for the plate view).

CellProfiler's MeasureImageQuality names where the measure is the same
(``ImageQuality_PercentMaximal_<ch>``); the focus measure is plateseg's own and named
for what it is, because CellProfiler's FocusScore (normalised variance) depends on
cell density as much as on focus.

======================================  ===============================================
metric                                  meaning
======================================  ===============================================
``ImageQuality_PercentMaximal_<ch>``    percent of pixels at the dtype maximum (1.0
                                        for float images)
``ImageQuality_EdgeSharpness_<ch>``     nuclei channel: median gradient magnitude on
                                        the objects' outlines divided by the contrast
                                        (median inside - median outside), 1/pixel.
                                        ~0.4/sigma for an edge blurred by a Gaussian of sigma
                                        px; ``None`` without objects
``QC_Saturated``                        1.0 if any channel has more than
                                        ``SATURATED_PERCENT`` % maximal pixels
``QC_Blurry``                           1.0 if the edge sharpness is below
                                        ``BLURRY_SHARPNESS``; ``None`` without objects
``QC_Empty``                            1.0 if no object was found
======================================  ===============================================
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLURRY_SHARPNESS", "SATURATED_PERCENT", "edge_sharpness", "image_quality"]

#: A channel with more than this percentage of maximal pixels is saturated.
SATURATED_PERCENT = 1.0
#: Edge sharpness (1/px) below which a field is blurry. On the demo fields: 0.30 sharp,
#: 0.20 / 0.16 / 0.14 after an extra Gaussian blur of sigma = 2 / 3 / 4 px.
BLURRY_SHARPNESS = 0.15


def percent_maximal(image: np.ndarray) -> float:
    """Percent of pixels at the dtype maximum (integers) or >= 1.0 (floats)."""
    if image.dtype.kind in "ui":
        top = np.iinfo(image.dtype).max
        return 100.0 * float(np.count_nonzero(image == top)) / max(image.size, 1)
    if image.dtype == bool:
        return 100.0 * float(np.count_nonzero(image)) / max(image.size, 1)
    return 100.0 * float(np.count_nonzero(image >= 1.0)) / max(image.size, 1)


def edge_sharpness(image: np.ndarray, labels: np.ndarray) -> float | None:
    """Median outline gradient over contrast (see the module table); ``None`` if no objects.

    Parameters
    ----------
    image : np.ndarray
        (Y, X) nuclear stain, any real dtype.
    labels : np.ndarray
        (Y, X) integer labels, 0 = background.
    """
    mask = labels != 0
    count = int(np.count_nonzero(mask))
    if count == 0 or count == labels.size:
        return None
    height, width = labels.shape
    # 4-neighbour erosion (the image edge counts as inside): the outline is what it removes
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    ys, xs = np.divmod(np.flatnonzero(mask ^ inner), width)
    pixels = np.asarray(image).ravel()

    def read(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return pixels[rows * width + cols].astype(np.float32)

    up, down = read(np.maximum(ys - 1, 0), xs), read(np.minimum(ys + 1, height - 1), xs)
    left, right = read(ys, np.maximum(xs - 1, 0)), read(ys, np.minimum(xs + 1, width - 1))
    gradient = 0.5 * np.hypot(down - up, right - left)
    step = max(1, int(np.sqrt(labels.size / 250_000)))
    sample = np.asarray(image[::step, ::step], np.float32)
    in_sample = labels[::step, ::step] != 0
    if not in_sample.any() or in_sample.all():
        return None
    contrast = float(np.median(sample[in_sample]) - np.median(sample[~in_sample]))
    if contrast <= 0:
        return 0.0
    return float(np.median(gradient)) / contrast


def image_quality(
    images: dict[str, np.ndarray], labels: np.ndarray, nuclei: str
) -> dict[str, float | None]:
    """The QC metrics of one field (see the module table).

    Parameters
    ----------
    images : dict of str to np.ndarray
        Channel name → (Y, X) image.
    labels : np.ndarray
        (Y, X) nuclear labels.
    nuclei : str
        The nuclei channel's name.
    """
    metrics: dict[str, float | None] = {}
    saturated = False
    for channel, image in images.items():
        percent = percent_maximal(image)
        metrics[f"ImageQuality_PercentMaximal_{channel}"] = percent
        saturated |= percent > SATURATED_PERCENT
    sharpness = edge_sharpness(images[nuclei], labels)
    metrics[f"ImageQuality_EdgeSharpness_{nuclei}"] = sharpness
    metrics["QC_Saturated"] = float(saturated)
    metrics["QC_Blurry"] = None if sharpness is None else float(sharpness < BLURRY_SHARPNESS)
    metrics["QC_Empty"] = float(not labels.any())
    return metrics
