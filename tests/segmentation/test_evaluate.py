"""Object matching and the accuracy scores built on it."""

from __future__ import annotations

import numpy as np
import pytest

from plateseg.segmentation.evaluate import average_precision, f1, iou_matrix, match_objects


@pytest.fixture
def truth() -> np.ndarray:
    labels = np.zeros((20, 20), np.uint16)
    labels[0:4, 0:4] = 1  # 16 px
    labels[10:14, 10:14] = 2
    labels[0:4, 15:19] = 3
    return labels


def test_perfect_prediction_with_other_label_numbers(truth: np.ndarray) -> None:
    pred = np.where(truth > 0, truth.astype(np.int32) * 100 + 7, 0)
    assert match_objects(truth, pred) == (3, 0, 0)
    assert f1(truth, pred) == 1.0
    assert average_precision(truth, pred, (0.5, 0.75, 0.95)) == 1.0


def test_partial_overlap_counts_only_above_the_threshold(truth: np.ndarray) -> None:
    pred = np.zeros_like(truth)
    pred[0:4, 0:3] = 1  # IoU 12/16 = 0.75 with truth 1
    pred[10:14, 12:16] = 2  # IoU 8/24 = 0.33 with truth 2
    pred[17:20, 17:20] = 3  # matches nothing
    assert iou_matrix(truth, pred)[0, 0] == pytest.approx(0.75)
    assert match_objects(truth, pred, iou=0.5) == (1, 2, 2)
    assert match_objects(truth, pred, iou=0.8) == (0, 3, 3)
    assert f1(truth, pred) == pytest.approx(2 / (2 + 2 + 2))
    assert average_precision(truth, pred, (0.5, 0.8)) == pytest.approx((1 / 5 + 0) / 2)


def test_empty_images(truth: np.ndarray) -> None:
    empty = np.zeros_like(truth)
    assert match_objects(empty, empty) == (0, 0, 0)
    assert f1(empty, empty) == 1.0
    assert match_objects(truth, empty) == (0, 0, 3)
    assert match_objects(empty, truth) == (0, 3, 0)


def test_refuses_non_unique_thresholds_and_shape_mismatch(truth: np.ndarray) -> None:
    with pytest.raises(ValueError, match="iou >= 0.5"):
        match_objects(truth, truth, iou=0.3)
    with pytest.raises(ValueError, match="differ in shape"):
        match_objects(truth, truth[:5])
