"""Classical segmentation on synthetic fields with known ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from plateseg.demo import FieldTruth, render_field
from plateseg.segmentation.classical import ClassicalParams, segment_nuclei
from plateseg.segmentation.evaluate import match_objects


@pytest.fixture(scope="module")
def fields() -> list[FieldTruth]:
    """Eight fields: dense, sparse and dim, with touching pairs."""
    rng = np.random.default_rng(42)
    plan = [
        (90, 1.0),
        (70, 1.0),
        (40, 1.0),
        (20, 1.0),
        (70, 0.35),
        (30, 0.35),
        (60, 1.0),
        (10, 1.0),
    ]
    return [render_field(rng, n, 512, brightness) for n, brightness in plan]


def test_default_recipe_reaches_f1_above_0_95(fields: list[FieldTruth]) -> None:
    tp = fp = fn = 0
    for field in fields:
        result = segment_nuclei(field.w1, ClassicalParams())
        a, b, c = match_objects(field.labels, result.labels, iou=0.5)
        tp, fp, fn = tp + a, fp + b, fn + c
    assert 2 * tp / (2 * tp + fp + fn) >= 0.95


def test_touching_pairs_are_split() -> None:
    image = np.full((80, 120), 300, np.uint16)
    yy, xx = np.mgrid[0:80, 0:120]
    truth = np.zeros(image.shape, np.uint16)
    for index, (cy, cx) in enumerate([(40, 45), (40, 72)], start=1):  # radius 15, 27 apart
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= 15**2
        image[inside] = 20000
        truth[inside & (truth == 0)] = index
    result = segment_nuclei(image, ClassicalParams())
    assert result.count == 2
    assert match_objects(truth, result.labels) == (2, 0, 0)
    unsplit = segment_nuclei(image, ClassicalParams(declump=False))
    assert unsplit.count == 1


def test_empty_and_flat_fields_have_no_objects() -> None:
    rng = np.random.default_rng(0)
    empty = render_field(rng, 0, 256)
    assert segment_nuclei(empty.w1, ClassicalParams()).count == 0
    flat = np.full((64, 64), 1234, np.uint16)
    result = segment_nuclei(flat, ClassicalParams())
    assert result.count == 0 and result.foreground_fraction == 0.0


def test_size_filter_and_border_exclusion() -> None:
    image = np.full((100, 100), 200, np.uint16)
    image[10:13, 10:13] = 30000  # 3 px wide: below 0.7 * min_diameter
    image[40:56, 40:56] = 30000  # 16 px: kept
    image[0:16, 80:96] = 30000  # touches the top border
    params = ClassicalParams(min_diameter=10, max_diameter=30)
    assert segment_nuclei(image, params).count == 2
    assert segment_nuclei(image, params.model_copy(update={"exclude_border": True})).count == 1


def test_threshold_methods_and_correction_factor() -> None:
    field = render_field(np.random.default_rng(5), 30, 256)
    li = segment_nuclei(field.w1, ClassicalParams())  # default: minimum cross-entropy
    otsu = segment_nuclei(field.w1, ClassicalParams(threshold_method="otsu"))
    otsu3 = segment_nuclei(field.w1, ClassicalParams(threshold_method="otsu3"))
    strict = segment_nuclei(field.w1, ClassicalParams(threshold_correction=1.5))
    assert len({li.threshold, otsu.threshold, otsu3.threshold}) == 3
    # the correction multiplies the threshold above the background, not the raw value
    assert strict.threshold > li.threshold
    assert strict.foreground_fraction < li.foreground_fraction
    for result in (li, otsu, otsu3):
        assert abs(result.count - field.count) <= 2


def test_many_objects_switch_labels_to_uint32() -> None:
    image = np.zeros((1300, 1300), np.uint8)
    image[1::5, 1::5] = 255  # 67,600 isolated pixels
    image[2::5, 1::5] = 255
    image[1::5, 2::5] = 255
    image[2::5, 2::5] = 255
    params = ClassicalParams(min_diameter=2.0, max_diameter=3.0, smoothing_sigma=0, declump=False)
    result = segment_nuclei(image, params)
    assert result.count == 260 * 260
    assert result.labels.dtype == np.uint32
