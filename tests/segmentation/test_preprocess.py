"""Background, foreground scale and nuclear size measured from the image itself."""

from __future__ import annotations

import numpy as np
import pytest

from plateseg.segmentation import preprocess
from plateseg.segmentation.preprocess import estimate_background, estimate_diameter, normalise
from tests.segmentation.conftest import upscale


def _true_diameter(labels: np.ndarray) -> float:
    areas = np.bincount(labels.ravel())[1:]
    return float(np.median(np.sqrt(4 * areas[areas > 0] / np.pi)))


def test_background_follows_an_offset_and_a_gradient() -> None:
    yy, xx = np.mgrid[0:300, 0:400]
    background = 33_000 + 5.0 * xx + 2.0 * yy
    image = background + np.random.default_rng(0).normal(0, 20, background.shape)
    error = estimate_background(image) - background
    # up to a constant (a low percentile of a sloped block), which normalise re-centres
    assert float(error.max() - error.min()) < 60  # 3 noise SDs, edges included


def test_normalised_image_ignores_offset_gain_and_gradient(
    bbbc039: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    image, labels = bbbc039[0]
    _, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    shifted = image.astype(np.float64) * 3 + 30_000 + 2.0 * xx
    for variant in (image, shifted):
        result = normalise(variant)
        assert abs(float(np.median(result.image[labels == 0]))) < 0.1
        assert 0.7 < float(np.median(result.image[labels > 0])) < 1.5


def test_saturated_debris_does_not_compress_the_nuclei(
    bbbc039: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    image, labels = bbbc039[1]
    debris = image.copy()
    debris[10:40, 10:40] = 4095  # a saturated speck, 0.25 % of the field
    for variant in (image, debris):
        assert 0.7 < float(np.median(normalise(variant).image[labels > 0])) < 1.5


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_diameter_is_estimated_at_any_magnification(
    bbbc039: list[tuple[np.ndarray, np.ndarray]], factor: int
) -> None:
    for image, labels in bbbc039:
        truth = _true_diameter(labels) * factor
        estimate = estimate_diameter(normalise(upscale(image, factor)))
        assert estimate is not None
        assert estimate == pytest.approx(truth, rel=0.2)


def test_an_empty_field_has_no_diameter() -> None:
    noise = np.random.default_rng(1).normal(1000, 30, (256, 256))
    assert estimate_diameter(normalise(noise)) is None
    assert estimate_diameter(normalise(np.full((64, 64), 500.0))) is None


def _tiled(image: np.ndarray, times: tuple[int, int]) -> np.ndarray:
    """A field made of ``times`` copies of ``image``, 2x upscaled: above the band limit."""
    return np.tile(upscale(image, 2), times)


def test_a_large_field_is_measured_on_bands_like_the_whole(
    bbbc039: list[tuple[np.ndarray, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    image, _labels = bbbc039[0]
    field = normalise(_tiled(image, (2, 2)))  # 2080 x 2784: 1.45 Mpx once reduced 2x
    assert field.image.size // 4 > preprocess.BAND_LIMIT
    on_bands = estimate_diameter(field)
    monkeypatch.setattr(preprocess, "BAND_LIMIT", 10**12)
    whole = estimate_diameter(field)
    assert on_bands is not None and whole is not None
    assert on_bands == pytest.approx(whole, rel=0.06)  # one step of the distance grid


def test_a_sparse_large_field_falls_back_to_the_whole_field(
    bbbc039: list[tuple[np.ndarray, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    image, labels = bbbc039[0]
    field = _tiled(image, (2, 1))  # 2080 rows: 1040 once reduced, room for two bands
    nuclei = _tiled(labels, (2, 1)) > 0
    rows = np.arange(field.shape[0])[:, None]
    between_bands = (rows >= 2 * 270) & (rows < 2 * 500)  # bands: reduced rows 0-256, 512-768
    field[nuclei & ~between_bands] = np.median(field[~nuclei])
    normalised = normalise(field)
    monkeypatch.setattr(preprocess, "BAND_LIMIT", 10**12)
    whole = estimate_diameter(normalised)
    assert whole is not None
    found: list[int] = []
    measure = preprocess._inscribed_radii

    def counting(*args: object) -> object:
        radii = measure(*args)  # type: ignore[arg-type]
        found.append(0 if radii is None else len(radii[0]))
        return radii

    monkeypatch.setattr(preprocess, "_inscribed_radii", counting)
    monkeypatch.setattr(preprocess, "BAND_LIMIT", 1)
    assert estimate_diameter(normalised) == whole
    assert len(found) == 2 and found[0] < preprocess.BAND_MIN_OBJECTS <= found[1]
