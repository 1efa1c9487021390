"""The segmenter registry, recipe validation and segment_field."""

from __future__ import annotations

import numpy as np
import pytest

from plateseg.contracts import Recipe
from plateseg.errors import ImageShapeError, RecipeError
from plateseg.segmentation import get_segmenter, segment_field, validate_recipe
from plateseg.segmentation.classical import ClassicalParams


def test_validate_recipe_fills_in_defaults() -> None:
    recipe = validate_recipe(Recipe(segmenter="classical", params={"min_diameter": 8}))
    assert recipe.params["min_diameter"] == 8.0
    assert recipe.params["threshold_method"] == ClassicalParams().threshold_method
    assert recipe.channels == {"nuclei": "w1", "cells": "w2"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_diameter": -3}, "recipe.params.min_diameter: "),
        ({"threshold_method": "triangle"}, "recipe.params.threshold_method: "),
        ({"min_diamter": 10}, "recipe.params.min_diamter: Extra inputs are not permitted"),
        ({"min_diameter": 40, "max_diameter": 20}, "max_diameter (20.0) must be >= min_diameter"),
    ],
)
def test_bad_params_name_the_field(params: dict[str, object], message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        validate_recipe(Recipe(segmenter="classical", params=params))
    assert message in str(caught.value)


def test_unknown_segmenter_lists_the_known_ones() -> None:
    with pytest.raises(
        RecipeError, match=r"unknown segmenter 'cellpose' \(known: classical, onnx, trainable\)"
    ):
        get_segmenter("cellpose")
    with pytest.raises(RecipeError, match="recipe.segmenter"):
        validate_recipe(Recipe(segmenter="cellpose"))


def test_segment_field_measures_every_channel() -> None:
    image = np.full((64, 64), 500, np.uint16)
    image[10:26, 10:26] = 30000
    image[40:56, 30:50] = 20000
    other = np.full((64, 64), 1000, np.uint16)
    result = segment_field({"w1": image, "w9": other}, Recipe(segmenter="classical"))
    assert result.object_count == 2
    assert result.labels.dtype == np.uint16 and result.labels.shape == (64, 64)
    assert sorted(np.unique(result.labels).tolist()) == [0, 1, 2]
    assert "Intensity_MeanIntensity_w9" in result.objects
    np.testing.assert_allclose(result.objects["Intensity_MeanIntensity_w9"], 1000 / 65535)
    assert result.metrics["Count_Nuclei"] == 2.0
    assert 0 < result.metrics["Threshold_FinalThreshold_Nuclei"] < 30000 / 65535


def test_the_default_recipe_segments_with_the_learned_model() -> None:
    image = np.full((96, 96), 500, np.uint16)
    image[20:40, 20:40] = 30000
    image[60:80, 50:74] = 20000
    result = segment_field({"w1": image}, Recipe())
    assert Recipe().segmenter == "onnx" and result.object_count == 2
    assert result.metrics["Threshold_FinalThreshold_Nuclei"] == 0.5  # the probability


def test_segment_field_needs_the_nuclei_channel() -> None:
    with pytest.raises(ImageShapeError, match="nuclei channel 'w1'"):
        segment_field({"w2": np.zeros((8, 8), np.uint16)}, Recipe())
