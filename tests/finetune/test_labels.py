"""Correction labels: checked at the edge; strokes drawn from truth land where they say."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from plateseg.errors import InputError
from plateseg.finetune.labels import (
    BACKGROUND,
    NUCLEUS,
    SEPARATOR,
    check_labels,
    label_counts,
    scribbles_from_truth,
)


def test_labels_of_the_wrong_shape_name_the_field() -> None:
    with pytest.raises(InputError, match=r"field 'A01': labels have shape \(4, 4\)"):
        check_labels(np.zeros((4, 4), np.uint8), (8, 8), "field 'A01'")


def test_label_values_outside_0_to_3_are_refused() -> None:
    with pytest.raises(InputError, match="found 0..7"):
        check_labels(np.array([[0, 7]]), (1, 2), "f")
    with pytest.raises(InputError, match="integers"):
        check_labels(np.zeros((1, 2), np.float32), (1, 2), "f")


def test_counts_per_label() -> None:
    labels = np.array([[0, 1, 1], [2, 3, 3]], np.uint8)
    assert label_counts(labels) == {"background": 2, "nucleus": 1, "separator": 2}


def test_strokes_from_truth_are_sparse_and_on_the_right_side(
    bbbc039: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    _image, truth = bbbc039[0]
    labels = scribbles_from_truth(truth, np.random.default_rng(0))
    inside = ndi.distance_transform_edt(truth > 0)
    outside = ndi.distance_transform_edt(truth == 0)
    assert (inside[labels == NUCLEUS] > 2).all()
    assert (outside[labels == BACKGROUND] >= 3).all()
    assert (truth[labels == SEPARATOR] > 0).all()
    stroked = np.unique(truth[labels == NUCLEUS])
    ids = np.unique(truth[truth > 0])
    assert 0.2 * ids.size <= stroked.size <= 0.4 * ids.size
    assert np.count_nonzero(labels) < 0.1 * labels.size  # strokes, not masks


def test_an_empty_field_gets_background_strokes_only() -> None:
    labels = scribbles_from_truth(np.zeros((64, 64), np.int32), np.random.default_rng(0))
    assert set(np.unique(labels)) == {0, BACKGROUND}
