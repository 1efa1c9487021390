"""Annotated nuclei data for training and benchmarks: one owner for the dev-set split,
the stress transforms and the external real image.

* :func:`load_dev` — ``../shared/data/bbbc039-dev`` (150 BBBC039 images, CC0), split by a
  hash of the file name: ``sha256(name)[0] % 5 == 0`` → validation (35 images, never
  trained on), the rest → training (115).
* :data:`STRESS` — what differs between labs, applied to an image and its labels:
  camera offset, magnification, bit depth, illumination gradient, noise, defocus,
  large nuclei with chromocentres.
* :func:`bleed_through` — a domain the base model was not trained for (fine-tuning's
  benchmark): cytoplasmic signal around every nucleus.
* :func:`fetch_dsb` — the real DSB 2018 image and annotation shipped in the ``stardist``
  wheel on PyPI (BBBC038, CC0), downloaded with pip into a temporary folder.
* :func:`orientations` — an image's eight turns and mirror images: one image's score
  read in each orientation shows how much of it is the luck of one arrangement.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "bbbc039-dev"
STARDIST = "stardist==0.9.2"


@dataclass(frozen=True)
class Annotated:
    """One image with its instance labels and median true nuclear diameter (px)."""

    name: str
    image: np.ndarray
    labels: np.ndarray
    diameter: float


def is_validation(name: str) -> bool:
    """The fixed train/validation split of the dev set: a hash of the file name."""
    return hashlib.sha256(name.encode()).digest()[0] % 5 == 0


def median_diameter(labels: np.ndarray) -> float:
    """Median equivalent diameter of the labelled objects (20 px when there are none)."""
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return float(np.median(np.sqrt(4 * areas / np.pi))) if areas.size else 20.0


def load_dev(data: Path = DATA) -> tuple[list[Annotated], list[Annotated]]:
    """``(train, validation)`` of the dev set (uint16 images, int32 labels)."""
    import tifffile

    if not (data / "images").is_dir():
        raise SystemExit(f"no dev set at {data} (expected images/ and labels/)")
    train, validation = [], []
    for path in sorted((data / "images").glob("*.tif")):
        labels = tifffile.imread(data / "labels" / path.name).astype(np.int32)
        item = Annotated(path.name, tifffile.imread(path), labels, median_diameter(labels))
        (validation if is_validation(path.name) else train).append(item)
    return train, validation


def _zoom(item: Annotated, factor: int) -> Annotated:
    from plateseg.segmentation.preprocess import resize

    shape = (item.image.shape[0] * factor, item.image.shape[1] * factor)
    image = np.round(resize(item.image.astype(np.float32), shape)).astype(item.image.dtype)
    labels = resize(item.labels, shape, order=0)
    return Annotated(item.name, image, labels, item.diameter * factor)


def _half(item: Annotated) -> Annotated:
    """Half the resolution (a lower magnification): 2x2 pixel means, labels subsampled."""
    from skimage.transform import downscale_local_mean

    image = downscale_local_mean(item.image.astype(np.float64), (2, 2))
    image = np.round(image).astype(item.image.dtype)
    labels = item.labels[::2, ::2][: image.shape[0], : image.shape[1]]
    return Annotated(item.name, image, labels, item.diameter / 2)


def _with_image(item: Annotated, image: np.ndarray) -> Annotated:
    return Annotated(item.name, image, item.labels, item.diameter)


def _offset(item: Annotated) -> Annotated:
    image = item.image.astype(np.int64) + 30_000
    return _with_image(item, np.clip(image, 0, 65535).astype(np.uint16))


def _eight_bit(item: Annotated) -> Annotated:
    image = item.image.astype(np.float64)
    top = np.percentile(image, 99.9)
    return _with_image(item, np.clip(np.round(image / top * 255), 0, 255).astype(np.uint8))


def _gradient(item: Annotated) -> Annotated:
    """A linear illumination ramp across the field plus vignetting, both additive, up
    to 2x the median nuclear signal above background."""
    image = item.image.astype(np.float64)
    signal = np.median(image[item.labels > 0]) - np.median(image[item.labels == 0])
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    ramp = xx / image.shape[1] + 0.5 * yy / image.shape[0]
    vignette = 1 - ((yy / image.shape[0] - 0.5) ** 2 + (xx / image.shape[1] - 0.5) ** 2)
    image = image + signal * (1.4 * ramp + 1.0 * vignette)
    return _with_image(item, np.clip(np.round(image), 0, 65535).astype(np.uint16))


def _noise(item: Annotated) -> Annotated:
    """Poisson noise at ~30 photons per median nuclear pixel plus read noise."""
    rng = np.random.default_rng(0)
    image = item.image.astype(np.float64)
    background = np.median(image[item.labels == 0])
    signal = np.median(image[item.labels > 0]) - background
    k = 30 / max(signal, 1)
    noisy = rng.poisson(np.maximum(image - background, 0) * k) / k + background
    noisy += rng.normal(0, 0.05 * signal, image.shape)
    return _with_image(item, np.clip(np.round(noisy), 0, 65535).astype(np.uint16))


def _defocus(item: Annotated) -> Annotated:
    from scipy import ndimage as ndi

    image = ndi.gaussian_filter(item.image.astype(np.float64), 0.08 * item.diameter)
    return _with_image(item, np.round(image).astype(item.image.dtype))


def _chromocentres(item: Annotated) -> Annotated:
    """Large textured nuclei, as mouse cells stained for DNA look: x3 upscale (nuclei
    ~85 px across), the nucleoplasm dimmed to 60 % and ~15 bright chromocentres per
    nucleus (Gaussian spots, sigma 5 % of the diameter, peak twice the median nuclear
    signal); a fixed seed per image."""
    from scipy import ndimage as ndi

    big = _zoom(item, 3)
    rng = np.random.default_rng(int(hashlib.sha256(item.name.encode()).digest()[0]))
    data = big.image.astype(np.float64)
    inside = big.labels > 0
    background = np.median(data[~inside])
    signal = data - background
    level = np.median(signal[inside])
    sigma = 0.05 * big.diameter
    spots = (rng.random(data.shape) < 15 / (np.pi * big.diameter**2 / 4)) & inside
    blob = ndi.gaussian_filter(spots.astype(np.float64), sigma) * (2 * np.pi * sigma**2)
    signal = np.where(inside, 0.6 * signal, signal) + 2.0 * level * blob
    top = np.iinfo(big.image.dtype).max  # the source's own range (an 8-bit one too)
    image = np.clip(np.round(signal + background), 0, top).astype(big.image.dtype)
    return _with_image(big, image)


def bleed_through_image(image: np.ndarray, labels: np.ndarray, diameter: float) -> np.ndarray:
    """``image`` plus a blurred whole-cell signal at half the median nuclear level around
    every nucleus (cell bodies ~1.8 nuclear diameters across): a nuclear stain that also
    marks the cytoplasm, or a second dye bleeding into the nuclear channel."""
    from scipy import ndimage as ndi

    data = image.astype(np.float64)
    background = np.median(data[labels == 0])
    signal = np.median(data[labels > 0]) - background
    cells = ndi.grey_dilation(labels, size=int(0.8 * diameter)) > 0
    body = ndi.gaussian_filter(cells.astype(np.float64), 2.0)
    out = data + 0.5 * signal * body * (labels == 0)
    return np.clip(np.round(out), 0, 65535).astype(np.uint16)


def bleed_through(item: Annotated) -> Annotated:
    """:func:`bleed_through_image` of an annotated image (labels unchanged)."""
    return _with_image(item, bleed_through_image(item.image, item.labels, item.diameter))


#: Stress transforms by name: each takes and returns an :class:`Annotated`.
STRESS: dict[str, Callable[[Annotated], Annotated]] = {
    "offset +30000": _offset,
    "x2 upscale": lambda item: _zoom(item, 2),
    "x3 upscale": lambda item: _zoom(item, 3),
    "x0.5 downscale": _half,
    "8-bit": _eight_bit,
    "strong gradient": _gradient,
    "noise": _noise,
    "defocus": _defocus,
    "chromocentres x3": _chromocentres,
}


def fetch_dsb(folder: Path) -> Annotated:
    """Download the stardist wheel and read its DSB 2018 image and annotation."""
    import tifffile

    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", STARDIST, "-d", str(folder)],
        check=True,
    )
    wheel = next(folder.glob("stardist-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        with archive.open("stardist/data/images/img2d.tif") as handle:
            image = np.asarray(tifffile.imread(io.BytesIO(handle.read())))
        with archive.open("stardist/data/images/mask2d.tif") as handle:
            labels = np.asarray(tifffile.imread(io.BytesIO(handle.read()))).astype(np.int32)
    return Annotated("dsb2018-img2d", image, labels, median_diameter(labels))


def orientations(item: Annotated) -> list[Annotated]:
    """The eight turns (0, 90, 180, 270 degrees) and their mirror images of an image and
    its labels. A segmenter's decisions at borderline pairs flip with the orientation (a
    convolutional network and a tiled pipeline are not exactly symmetric), so the score
    pooled over the eight is the figure one image can honestly give."""
    turned = []
    for quarter in range(4):
        for mirror in (False, True):
            image, labels = np.rot90(item.image, quarter), np.rot90(item.labels, quarter)
            if mirror:
                image, labels = image[:, ::-1], labels[:, ::-1]
            name = f"{item.name}-r{90 * quarter}{'m' if mirror else ''}"
            turned.append(
                Annotated(
                    name, np.ascontiguousarray(image), np.ascontiguousarray(labels), item.diameter
                )
            )
    return turned
