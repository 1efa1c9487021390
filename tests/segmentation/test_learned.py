"""The shipped learned nuclei model (``nuclei-unet``) on real annotated images."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from plateseg.contracts import Recipe
from plateseg.errors import ModelError
from plateseg.segmentation import segment_field
from plateseg.segmentation.learned import segment_learned
from plateseg.segmentation.onnx_model import DEFAULT_MODEL, load_model, shipped_models
from tests.segmentation.conftest import pooled_ap, upscale

Images = list[tuple[np.ndarray, np.ndarray]]


def _ap(images: Images, recipe: Recipe) -> float:
    return pooled_ap([(t, segment_field({"w1": i}, recipe).labels) for i, t in images])


def test_shipped_model_loads_with_its_contract() -> None:
    assert DEFAULT_MODEL in shipped_models()
    model = load_model(DEFAULT_MODEL)
    assert model.kind == "nuclei-3class"
    assert model.diameter is not None and 8 <= model.diameter <= 32
    assert model.session.get_outputs()[0].shape[1] == 3


def test_default_recipe_uses_the_learned_model() -> None:
    assert Recipe().segmenter == "onnx"


def test_learned_model_scores_on_real_images(bbbc039: Images) -> None:
    assert _ap(bbbc039, Recipe(segmenter="onnx")) >= 0.8


@pytest.mark.parametrize("segmenter", ["onnx", "classical"])
def test_camera_offset_and_magnification_do_not_collapse(bbbc039: Images, segmenter: str) -> None:
    recipe = Recipe(segmenter=segmenter)
    clean = _ap(bbbc039, recipe)
    offset = [((i.astype(np.int64) + 30_000).astype(np.uint16), t) for i, t in bbbc039]
    assert _ap(offset, recipe) >= clean - 0.1
    bigger = [(upscale(i, 3), upscale(t, 3)) for i, t in bbbc039[:2]]
    assert _ap(bigger, recipe) >= clean - 0.1


@pytest.mark.parametrize("segmenter", ["onnx", "classical"])
def test_large_nuclei_with_chromocentres_are_not_cut_up(
    bbbc039: Images, nuclei_data: ModuleType, segmenter: str
) -> None:
    """Mouse-like nuclei: x3 and ~15 bright chromocentres each (the benchmark's stress row);
    neither the texture nor the size may split them into pieces."""
    recipe = Recipe(segmenter=segmenter)
    clean = _ap(bbbc039[:2], recipe)
    textured = [
        nuclei_data.STRESS["chromocentres x3"](
            nuclei_data.Annotated(f"test-{index}", image, truth, nuclei_data.median_diameter(truth))
        )
        for index, (image, truth) in enumerate(bbbc039[:2])
    ]
    assert _ap([(item.image, item.labels) for item in textured], recipe) >= clean - 0.1


def test_an_empty_field_has_no_nuclei() -> None:
    noise = np.random.default_rng(3).normal(2000, 40, (300, 300)).astype(np.uint16)
    result = segment_field({"w1": noise}, Recipe(segmenter="onnx"))
    assert result.object_count == 0


def test_given_diameter_skips_the_estimate(bbbc039: Images) -> None:
    image, truth = bbbc039[0]
    model = load_model(DEFAULT_MODEL)
    given = segment_learned(image, model, diameter=28.0)
    assert given.diameter == 28.0
    assert pooled_ap([(truth, given.labels)]) >= 0.75


def test_a_pixel_classifier_is_not_a_three_class_model(bbbc039: Images) -> None:
    with pytest.raises(ModelError, match="not nuclei-3class"):
        segment_learned(bbbc039[0][0], load_model("nuclei-rf"))
