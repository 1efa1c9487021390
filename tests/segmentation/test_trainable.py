"""Training a pixel classifier from scribbles, and running it as the trainable segmenter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from plateseg.contracts import Recipe
from plateseg.demo import FieldTruth, render_field
from plateseg.errors import InputError, ModelError
from plateseg.segmentation import segment_field
from plateseg.segmentation.evaluate import f1
from plateseg.segmentation.trainable import (
    BACKGROUND,
    NUCLEUS,
    save_model,
    scribbles_from_mask,
    train_pixel_classifier,
)
from plateseg.store import LocalStore


def test_scribbles_leave_a_ring_unlabelled() -> None:
    mask = np.zeros((20, 20), np.uint16)
    mask[8:12, 8:12] = 5
    labels = scribbles_from_mask(mask, ring=2)
    assert labels.dtype == np.uint8
    assert (labels[8:12, 8:12] == NUCLEUS).all()
    assert labels[7, 9] == 0 and labels[6, 9] == 0 and labels[5, 9] == BACKGROUND
    assert labels[0, 0] == BACKGROUND


def test_model_carries_its_contract(tiny_forest: bytes) -> None:
    model = onnx.load_from_string(tiny_forest)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["plateseg.kind"] == "pixel-features"
    assert json.loads(meta["plateseg.sigmas"]) == [0.7, 1.5, 3.0, 6.0]
    assert meta["plateseg.scale"] == "2" and meta["plateseg.foreground"] == "1"
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]
    assert len(tiny_forest) < 200_000


def test_trained_from_sparse_scribbles_segments_a_new_field(
    tmp_path: Path, small_field: FieldTruth
) -> None:
    scribbles = np.zeros(small_field.labels.shape, np.uint8)
    dense = scribbles_from_mask(small_field.labels)
    scribbles[::3] = dense[::3]  # every third row: strokes, not a full annotation
    model = train_pixel_classifier(
        [small_field.w1], [scribbles], trees=4, max_depth=6, samples_per_class=2000
    )
    store = LocalStore(tmp_path / "store")
    assert save_model(store, "scribbled", model) == "models/scribbled.onnx"
    other = render_field(np.random.default_rng(12), 10, 192)
    recipe = Recipe(segmenter="trainable", params={"model": "scribbled"})
    result = segment_field({"w1": other.w1}, recipe, store)
    assert f1(other.labels, result.labels) >= 0.9


def test_empty_field_stays_empty(tiny_forest: bytes, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    save_model(store, "tiny", tiny_forest)
    empty = render_field(np.random.default_rng(13), 0, 192)
    result = segment_field(
        {"w1": empty.w1}, Recipe(segmenter="trainable", params={"model": "tiny"}), store
    )
    assert result.object_count == 0


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros((64, 64), np.uint8), "needs pixels of both classes: 0 background"),
        (np.full((64, 64), 7, np.uint8), r"labels must be 0, 1 or 2, found \[7\]"),
        (np.ones((32, 64), np.uint8), r"image 0: image \(64, 64\) and labels \(32, 64\)"),
    ],
)
def test_bad_labels_are_input_errors(labels: np.ndarray, message: str) -> None:
    image = np.zeros((64, 64), np.uint16)
    with pytest.raises(InputError, match=message):
        train_pixel_classifier([image], [labels], trees=2, max_depth=3)


def test_counts_must_match_and_bad_bytes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="got 1 images and 0 label images"):
        train_pixel_classifier([np.zeros((8, 8))], [])
    with pytest.raises(ModelError, match="empty model bytes"):
        save_model(LocalStore(tmp_path / "s"), "x", b"")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        save_model(LocalStore(tmp_path / "s"), "x", b"garbage")
