"""What a segmenter needs to know about a raw field before it segments: its background,
its foreground level, its noise and the size of its nuclei.

Real cameras differ in offset (a 16-bit sCMOS can sit at 33,000 counts with nothing in
view), gain, bit depth and illumination (a slow gradient across the field); labs differ
in magnification (nuclei 10-90 px across). Everything here is measured from the image
itself, so no recipe parameter has to be tuned per camera:

* :func:`estimate_background` — a slow background surface: the 10th percentile of
  coarse blocks, median-filtered across blocks (a block filled by a clump does not pull
  it up), interpolated back to full resolution. Removes offsets and gradients.
* :func:`normalise` — background removed, then divided by the *median* of the
  foreground (Otsu on the background-free image): a nucleus of typical brightness is
  ~1 whatever the camera, and saturated debris cannot compress the rest (a percentile
  of the whole image can). The scale is at least ``MIN_SPAN_NOISE`` noise standard
  deviations, so an empty field's noise is not stretched into objects.
* :func:`estimate_diameter` — typical nuclear diameter from the foreground mask: twice
  the median over connected components of their largest inscribed radius (the
  distance-transform maximum), which a clump of touching nuclei does not inflate the way
  its area would, times :data:`SHAPE_FACTOR` (ellipse and pixel-grid correction).

The training script of the learned model (``tools/train_nuclei_net.py``) runs the same
:func:`normalise` on every augmented image, so the network sees at training time exactly
the input it gets at inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from plateseg.contracts.params import MIN_CONTRAST
from plateseg.segmentation.filters import downsample, fill_holes, gaussian

__all__ = [
    "LI_TOLERANCE",
    "MIN_SPAN_NOISE",
    "SHAPE_FACTOR",
    "Normalised",
    "estimate_background",
    "estimate_diameter",
    "normalise",
    "resize",
    "subsample",
]

#: The foreground scale is at least this many robust noise SDs (an empty field stays dark).
MIN_SPAN_NOISE = 8.0
#: Equivalent diameter / (2 x largest inscribed radius of the foreground components):
#: elongation and the pixel grid make the inscribed circle smaller than the equal-area
#: one, a slightly generous threshold makes it larger. Measured on the BBBC039 training
#: split (median over 112 images of true median diameter / estimate: 1.054, 10-90 %
#: 1.00-1.13); a property of nuclear shape, not of a camera or a magnification.
SHAPE_FACTOR = 1.05
#: Diameters outside this range are clipped (pixels).
DIAMETER_LIMITS = (4.0, 400.0)
#: Li's iteration stops when the threshold moves by less than this (normalised units, a
#: nucleus ~1). scikit-image's default tolerance (half the smallest gap between two
#: distinct values) sorts the whole sample first, which costs more than the iteration.
LI_TOLERANCE = 1e-4
#: A (2x-reduced) field above this many pixels is measured on every other band of
#: :data:`BAND_ROWS` rows: half the work, spread over the whole field's height.
BAND_LIMIT = 1_000_000
#: Height of those bands (reduced pixels): several nuclei tall at any magnification, so
#: few nuclei touch a cut (those that do are left out).
BAND_ROWS = 256
#: The bands must hold at least this many measurable nuclei, else the whole field is used.
BAND_MIN_OBJECTS = 50


@dataclass(frozen=True)
class Normalised:
    """Result of :func:`normalise`.

    Attributes
    ----------
    image : np.ndarray
        (Y, X) float32: 0 = background, ~1 = a nucleus of median brightness; clipped to
        ``[-1, CLIP]``.
    background : np.ndarray
        (Y, X) float32 background surface in the input's units.
    scale : float
        Input units per normalised unit (the foreground level above background).
    noise : float
        Robust noise SD of the background in input units.
    threshold : float
        Otsu threshold on the normalised image (the foreground the scale was fitted on).
    """

    image: np.ndarray
    background: np.ndarray
    scale: float
    noise: float
    threshold: float


#: Normalised values are clipped to this (saturated debris cannot dominate a model input).
CLIP = 4.0


def subsample(image: np.ndarray, pixels: int = 250_000) -> np.ndarray:
    """Every k-th row and column, so that about ``pixels`` remain (a strided view):
    plenty for a histogram, a percentile or a threshold."""
    step = max(1, int(np.sqrt(image.size / pixels)))
    return image[::step, ::step]


def resize(image: np.ndarray, shape: tuple[int, int], order: int = 1) -> np.ndarray:
    """Resize a (y, x) plane to ``shape``: linear (``order=1``) with area averaging when
    shrinking, or nearest (``order=0``, for labels). float32 for ``order=1``."""
    if tuple(image.shape) == tuple(shape):
        return image if order == 0 else np.asarray(image, np.float32)
    if order == 0:
        rows = (np.arange(shape[0]) + 0.5) * image.shape[0] / shape[0]
        cols = (np.arange(shape[1]) + 0.5) * image.shape[1] / shape[1]
        rows = np.minimum(rows.astype(np.intp), image.shape[0] - 1)
        cols = np.minimum(cols.astype(np.intp), image.shape[1] - 1)
        return image[rows[:, None], cols[None, :]]
    data = np.asarray(image, np.float32)
    factor = min(shape[0] / image.shape[0], shape[1] / image.shape[1])
    if factor < 0.8:  # anti-alias: smooth at the new pixel size before sampling
        data = ndi.gaussian_filter(data, sigma=0.5 * (1 / factor - 1) + 0.0, mode="reflect")
    rows = np.clip((np.arange(shape[0]) + 0.5) * image.shape[0] / shape[0] - 0.5, 0, None)
    cols = np.clip((np.arange(shape[1]) + 0.5) * image.shape[1] / shape[1] - 0.5, 0, None)
    r0 = np.minimum(rows.astype(np.intp), image.shape[0] - 1)
    c0 = np.minimum(cols.astype(np.intp), image.shape[1] - 1)
    r1 = np.minimum(r0 + 1, image.shape[0] - 1)
    c1 = np.minimum(c0 + 1, image.shape[1] - 1)
    wr = (rows - r0).astype(np.float32)[:, None]
    wc = (cols - c0).astype(np.float32)[None, :]
    top = data[r0][:, c0] * (1 - wc) + data[r0][:, c1] * wc
    bottom = data[r1][:, c0] * (1 - wc) + data[r1][:, c1] * wc
    return np.asarray(top * (1 - wr) + bottom * wr, np.float32)


def estimate_background(image: np.ndarray, block: int | None = None) -> np.ndarray:
    """Slow background surface of a (Y, X) image, in its own units, float32.

    The image is cut into blocks of ``block`` pixels (default: a sixth of the shorter
    side, at least 48), each block's 10th percentile taken, the grid median-filtered
    3x3 and interpolated linearly to full size. Offsets and illumination gradients that
    vary slowly across the field are captured; nuclei (smaller than a block, and
    covering less than 90% of most blocks) are not.
    """
    data = np.asarray(image, np.float32)
    height, width = data.shape
    if block is None:
        block = max(48, min(height, width) // 6)
    ny, nx = max(1, round(height / block)), max(1, round(width / block))
    ys = np.linspace(0, height, ny + 1).astype(int)
    xs = np.linspace(0, width, nx + 1).astype(int)
    grid = np.empty((ny, nx), np.float32)
    for i in range(ny):
        for j in range(nx):
            tile = data[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]
            grid[i, j] = np.percentile(subsample(tile, 20_000), 10)
    if min(ny, nx) >= 2:  # pad by point reflection: a plane stays a plane at the edges
        padded = np.pad(grid, 1, mode="reflect", reflect_type="odd")
        grid = ndi.median_filter(padded, size=3)[1:-1, 1:-1]
    elif max(ny, nx) >= 3:
        grid = ndi.median_filter(grid, size=3, mode="nearest")
    centres_y = (ys[:-1] + ys[1:]) / 2 - 0.5
    centres_x = (xs[:-1] + xs[1:]) / 2 - 0.5
    rows = _interpolate_axis(grid, centres_y, height, axis=0)
    return _interpolate_axis(rows, centres_x, width, axis=1)


def _interpolate_axis(grid: np.ndarray, centres: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Linear interpolation of ``grid`` along ``axis`` from sample ``centres`` to pixels
    ``0..size-1``, extrapolated linearly beyond the outer centres (a gradient goes on to
    the image edge instead of flattening half a block before it).

    Written as a product with a (samples x pixels) interpolation matrix: one pass over
    the output, where gathering lower and upper neighbours takes five."""
    if len(centres) == 1:
        return np.repeat(grid, size, axis=axis).astype(np.float32)
    pixels = np.arange(size, dtype=np.float64)
    index = np.clip(np.searchsorted(centres, pixels) - 1, 0, len(centres) - 2)
    weight = (pixels - centres[index]) / (centres[index + 1] - centres[index])
    matrix = np.zeros((len(centres), size), np.float32)
    matrix[index, np.arange(size)] = 1 - weight
    matrix[index + 1, np.arange(size)] += weight
    data = np.asarray(grid, np.float32)
    if axis == 0:
        return np.ascontiguousarray(matrix.T @ data)
    return np.ascontiguousarray(data @ matrix)


def normalise(image: np.ndarray) -> Normalised:
    """Background-free, foreground-scaled float32 image (see the module docstring).

    Parameters
    ----------
    image : np.ndarray
        (Y, X) nuclear stain, any real dtype, any offset and gain.
    """
    from skimage.filters import threshold_otsu

    data = np.asarray(image, np.float32)
    background = estimate_background(data)
    sample = subsample(data) - subsample(background)
    # noise SD from the background side of the histogram: the 5th and 25th percentiles
    # of a field whose background covers at least a quarter of it (z 1.645 and 0.674)
    p5, p25 = np.percentile(sample, (5, 25))
    noise = float(p25 - p5) / 0.971
    if np.asarray(image).dtype.kind in "ui":  # an integer camera: at least its rounding
        noise = max(noise, 0.5)
    noise = noise or 1e-6
    smooth = ndi.gaussian_filter(sample, 1.0) if min(sample.shape) > 8 else sample
    if float(smooth.max()) <= float(smooth.min()):
        scale = MIN_SPAN_NOISE * noise
        cut = scale
    else:
        cut = float(threshold_otsu(smooth))
        # the surface's own bias (a low percentile of a sloped block sits below its
        # centre): re-centre on the median of the pixels below the threshold
        offset = float(np.median(sample[smooth <= cut]))
        background += np.float32(offset)
        cut -= offset
        above = sample[smooth > cut + offset] - offset
        level = float(np.median(above)) if above.size else cut
        scale = max(level, MIN_SPAN_NOISE * noise, 1e-6)
    out = np.subtract(data, background)
    out *= np.float32(1.0 / scale)
    np.clip(out, -1.0, CLIP, out=out)
    return Normalised(out, background, float(scale), float(noise), float(cut / scale))


def estimate_diameter(normalised: Normalised) -> float | None:
    """Typical nuclear diameter in pixels, or ``None`` when the field holds no objects.

    Foreground = the normalised image smoothed (sigma 1) above Li's minimum cross-entropy
    threshold (low enough to keep the dim nucleoplasm between bright chromatin spots
    in one piece) and :data:`MIN_CONTRAST` noise SDs, holes filled; components smaller
    than 12 px (full resolution) are ignored. The estimate is :data:`SHAPE_FACTOR` x 2
    x the median of the components' largest inscribed radii (area-weighted median, so
    specks of debris do not drag it down). Images above 1 Mpx are measured on a
    2x-reduced copy; above :data:`BAND_LIMIT` reduced pixels (a 2048 x 2048 field), on
    every other band of :data:`BAND_ROWS` rows, leaving out the nuclei a band's cut
    crosses (the whole field when the bands hold fewer than :data:`BAND_MIN_OBJECTS`).
    """
    image = normalised.image
    from skimage.filters import threshold_li

    factor = 2 if image.size > 1_000_000 else 1
    image = downsample(image, factor)

    smooth = gaussian(image, 1.0, truncate=4.0)  # = ndi.gaussian_filter, ~4x faster
    if float(smooth.max()) <= float(smooth.min()):
        return None
    floor = MIN_CONTRAST * normalised.noise / normalised.scale
    li = float(threshold_li(subsample(smooth), tolerance=LI_TOLERANCE))
    mask = smooth > max(li, floor)
    min_size = 12 / factor**2
    if mask.size > BAND_LIMIT and mask.shape[0] >= 4 * BAND_ROWS:
        radii = _inscribed_radii(*_bands(mask), min_size)
        if radii is not None and len(radii[0]) >= BAND_MIN_OBJECTS:
            return _diameter(*radii, factor)
    radii = _inscribed_radii(mask, np.zeros(0, np.intp), min_size)
    return None if radii is None else _diameter(*radii, factor)


def _bands(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every other band of :data:`BAND_ROWS` rows of ``mask``, stacked with one
    background row between bands, and the rows where a band was cut from the field
    (its top or bottom row, unless that is the field's own edge)."""
    height = mask.shape[0]
    starts = range(0, height - BAND_ROWS + 1, 2 * BAND_ROWS)
    gap = np.zeros((1, mask.shape[1]), bool)
    pieces: list[np.ndarray] = []
    cuts: list[int] = []
    row = 0
    for start in starts:
        if pieces:
            pieces.append(gap)
            row += 1
        stop = min(start + BAND_ROWS, height)
        pieces.append(mask[start:stop])
        if start > 0:
            cuts.append(row)
        row += stop - start
        if stop < height:
            cuts.append(row - 1)
    return np.concatenate(pieces), np.array(cuts, np.intp)


def _inscribed_radii(
    mask: np.ndarray, cuts: np.ndarray, min_size: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Largest inscribed radius and area of each component of ``mask`` (holes filled)
    of at least ``min_size`` pixels that touches none of the rows ``cuts``; ``None``
    when there is none."""
    import edt

    mask = fill_holes(mask)
    labels, count = ndi.label(mask)
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    eligible = sizes >= min_size
    eligible[0] = False
    eligible[labels[cuts].ravel()] = False
    ids = np.flatnonzero(eligible)
    if ids.size == 0:
        return None
    distance = edt.edt(mask, black_border=False, parallel=1)
    inside = np.flatnonzero(mask)  # per-label maximum over the foreground pixels only
    peak = np.zeros(count + 1, np.float64)
    np.maximum.at(peak, labels.ravel()[inside], distance.ravel()[inside])
    return peak[ids], sizes[ids].astype(np.float64)


def _diameter(radii: np.ndarray, weights: np.ndarray, factor: int) -> float:
    """:data:`SHAPE_FACTOR` x 2 x the area-weighted median radius, at full resolution."""
    order = np.argsort(radii)
    cumulative = np.cumsum(weights[order])
    median = float(radii[order][np.searchsorted(cumulative, cumulative[-1] / 2)])
    return float(np.clip(SHAPE_FACTOR * 2 * median * factor, *DIAMETER_LIMITS))
