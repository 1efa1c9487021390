"""Declumping: the intensity-weighted landscape, hole filling on the canvas, helpers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk

from plateseg.segmentation import declump
from plateseg.segmentation.classical import ClassicalParams, labels_from_mask, segment_nuclei
from plateseg.segmentation.evaluate import match_objects


@pytest.fixture
def flat_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two square nuclei pressed flat against each other: a 24x48 rectangle.

    The union has no neck (its distance transform is one flat ridge), but the seam
    between them is ~20% dimmer than their middles, as on real images of touching
    nuclei. Returns (uint16 image, bool mask, true labels).
    """
    shape = (60, 90)
    truth = np.zeros(shape, np.uint16)
    truth[18:42, 20:44] = 1
    truth[18:42, 44:68] = 2
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    image = np.full(shape, 400.0)
    for label, cx in ((1, 31.5), (2, 55.5)):
        inside = truth == label
        dome = 1.0 - 0.2 * ((xx - cx) / 12.0) ** 2 - 0.1 * ((yy - 29.5) / 12.0) ** 2
        image[inside] = 400 + 20000 * dome[inside]
    noise = np.random.default_rng(0).normal(0, 60, shape)
    return (image + noise).astype(np.uint16), truth > 0, truth


def test_flat_contact_is_split_only_with_the_intensity_factor(
    flat_pair: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    image, mask, truth = flat_pair
    params = ClassicalParams()
    shape_only = labels_from_mask(mask, params)
    assert shape_only.max() == 1  # the distance transform alone sees one body
    smoothed = ndi.gaussian_filter(image.astype(np.float32), 1.0)
    weighted = labels_from_mask(mask, params, smoothed)
    assert weighted.max() == 2
    assert match_objects(truth, weighted) == (2, 0, 0)


def test_segment_nuclei_splits_the_flat_pair(
    flat_pair: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    image, _mask, truth = flat_pair
    result = segment_nuclei(image, ClassicalParams())
    assert match_objects(truth, result.labels) == (2, 0, 0)


def test_holes_are_filled_on_the_canvas_and_counted_as_foreground() -> None:
    noise = np.random.default_rng(1).normal(0, 50, (80, 80))
    ring = np.zeros(noise.shape, bool)
    ring[disk((40, 40), 16)] = True
    ring[disk((40, 40), 6)] = False  # a dark hole: background enclosed by the nucleus
    image = (np.where(ring, 30000.0, 500.0) + noise).astype(np.uint16)
    # Otsu: the minimum cross-entropy default sits low on a sharp-edged synthetic disk
    params = ClassicalParams(adaptive_weight=0.0, threshold_method="otsu")
    result = segment_nuclei(image, params)
    assert result.count == 1  # the dark interior does not split it either
    found = result.labels > 0
    disk_mask = np.zeros(image.shape, bool)
    disk_mask[disk((40, 40), 16)] = True
    assert (found & disk_mask).sum() / (found | disk_mask).sum() > 0.95
    assert found[37:44, 37:44].all()
    assert result.foreground_fraction == pytest.approx(disk_mask.mean(), rel=0.05)
    kept = segment_nuclei(image, params.model_copy(update={"fill_holes": False}))
    assert not (kept.labels[38:43, 38:43] > 0).any()
    assert kept.foreground_fraction < result.foreground_fraction


def test_fill_writes_back_and_updates_areas() -> None:
    labels = np.zeros((50, 50), np.int32)
    labels[disk((25, 25), 15)] = 1
    labels[disk((25, 25), 4)] = 0
    labels[25, 25] = 2  # a speck inside the hole is swallowed by the filled object
    areas = np.bincount(labels.ravel())
    result = declump.declump(
        labels, 2, areas, np.array([False, True, False]), 5, 50, 0.05, fill=True
    )
    hole = np.zeros(labels.shape, bool)
    hole[disk((25, 25), 4)] = True
    assert result.filled == int(hole.sum()) - 1  # the speck was foreground already
    assert (result.labels[hole] == 1).all()
    assert result.areas[1] == np.count_nonzero(result.labels == 1)
    assert result.areas[2] == 0


def test_helpers_match_ndimage() -> None:
    rng = np.random.default_rng(3)
    image = np.zeros((40, 50), np.float32)
    image[1:-1, 1:-1] = rng.random((38, 48), dtype=np.float32)  # a zero ring, as on a canvas
    expected_mean = ndi.uniform_filter(image, 3, mode="constant")
    np.testing.assert_allclose(declump._mean3(image), expected_mean, atol=1e-6)
    np.testing.assert_array_equal(
        declump._max3(image), ndi.maximum_filter(image, 3, mode="constant")
    )
    values = rng.random(100, dtype=np.float32) + np.float32(0.01)
    for exponent in (0.5, 0.75, 1.0, 0.3):
        np.testing.assert_allclose(declump._power(values, exponent), values**exponent, rtol=1e-5)
