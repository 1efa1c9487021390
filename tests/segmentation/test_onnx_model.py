"""The onnx segmenter: loading, the model contract, tiling, instances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plateseg.contracts import Recipe
from plateseg.demo import FieldTruth
from plateseg.errors import ModelError, RecipeError
from plateseg.segmentation import segment_field, validate_recipe
from plateseg.segmentation.evaluate import f1
from plateseg.segmentation.onnx_model import (
    ModelParams,
    load_model,
    model_key,
    predict_foreground,
    shipped_models,
)
from plateseg.store import LocalStore

from .conftest import identity_image_model


@pytest.fixture
def model_store(tmp_path: Path, image_model: bytes, tiny_forest: bytes) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    store.put_bytes(model_key("identity"), image_model)
    store.put_bytes(model_key("tiny"), tiny_forest)
    return store


def squares() -> tuple[np.ndarray, np.ndarray]:
    """Four bright squares on a dark 200x200 field, and their labels."""
    image = np.full((200, 200), 1000, np.uint16)
    truth = np.zeros((200, 200), np.uint16)
    for n, (y, x) in enumerate([(20, 20), (20, 140), (130, 60), (150, 160)], start=1):
        image[y : y + 24, x : x + 24] = 40000
        truth[y : y + 24, x : x + 24] = n
    image += np.random.default_rng(0).integers(0, 200, image.shape, dtype=np.uint16)
    return image, truth


def test_image_model_segments_through_the_registry(model_store: LocalStore) -> None:
    image, truth = squares()
    recipe = validate_recipe(Recipe(segmenter="onnx", params={"model": "identity"}))
    result = segment_field({"w1": image}, recipe, model_store)
    assert result.object_count == 4
    assert f1(truth, result.labels) == 1.0
    assert result.metrics["Threshold_FinalThreshold_Nuclei"] == 0.5


def test_tiles_with_overlap_equal_one_pass(model_store: LocalStore) -> None:
    image, _ = squares()
    model = load_model("identity", model_store)
    whole = predict_foreground(model, image, tile=4096)
    tiled = predict_foreground(model, image, tile=64, overlap=8)
    np.testing.assert_array_equal(whole, tiled)
    forest = load_model("tiny", model_store)
    np.testing.assert_allclose(
        predict_foreground(forest, image, tile=4096),
        predict_foreground(forest, image, tile=64),
        atol=0.05,
    )


def test_model_with_tile_multiple_is_padded(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    store.put_bytes(model_key("m16"), identity_image_model(multiple=16))
    image, _ = squares()
    probs = predict_foreground(load_model("m16", store), image[:150, :130], tile=100)
    assert probs.shape == (150, 130)


def test_shipped_model_is_found_without_a_store(small_field: FieldTruth) -> None:
    assert "nuclei-rf" in shipped_models()
    result = segment_field({"w1": small_field.w1}, Recipe(segmenter="onnx"))
    assert f1(small_field.labels, result.labels) >= 0.9


def test_missing_model_names_where_it_looked(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    with pytest.raises(ModelError, match=r"model 'nope' not found at .*models/nope.onnx"):
        load_model("nope", store)


def test_garbage_model_is_a_model_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    store.put_bytes(model_key("junk"), b"this is not onnx")
    with pytest.raises(ModelError, match="'junk' is not a valid ONNX model"):
        load_model("junk", store)
    store.put_bytes(model_key("odd"), identity_image_model(kind="cnn"))
    with pytest.raises(ModelError, match="bad metadata: plateseg.kind 'cnn'"):
        load_model("odd", store)


def test_model_errors_are_recipe_errors_and_names_are_checked() -> None:
    assert issubclass(ModelError, RecipeError)
    with pytest.raises(RecipeError, match="recipe.params.model"):
        validate_recipe(Recipe(segmenter="onnx", params={"model": "../etc/passwd"}))
    with pytest.raises(ModelError, match="invalid model name"):
        model_key("a/b")
    assert ModelParams().model == "nuclei-unet"


def test_trainable_refuses_an_image_model(model_store: LocalStore) -> None:
    image, _ = squares()
    recipe = Recipe(segmenter="trainable", params={"model": "identity"})
    with pytest.raises(ModelError, match="not a trained pixel classifier"):
        segment_field({"w1": image}, recipe, model_store)
