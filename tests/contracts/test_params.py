"""The segmenters' parameters: one model per segmenter, validated at the edge."""

from __future__ import annotations

import subprocess
import sys

import pytest

from plateseg.contracts import Recipe
from plateseg.contracts.params import (
    SEGMENTER_PARAMS,
    ClassicalParams,
    ModelParams,
    SecondaryParams,
    canonical_recipe_json,
    parse_params,
    parse_secondary,
    validate_recipe,
)
from plateseg.errors import RecipeError
from plateseg.segmentation import _REGISTRY, get_segmenter


def test_every_segmenter_a_recipe_may_name_runs_and_no_other() -> None:
    assert set(SEGMENTER_PARAMS) == set(_REGISTRY)
    for name, model in SEGMENTER_PARAMS.items():
        assert get_segmenter(name).params_model is model


def test_params_are_parsed_into_the_segmenters_model() -> None:
    classical = parse_params(Recipe(segmenter="classical", params={"min_diameter": 8}))
    assert isinstance(classical, ClassicalParams) and classical.min_diameter == 8.0
    onnx = parse_params(Recipe(segmenter="onnx", params={"model": "nuclei-rf"}))
    assert isinstance(onnx, ModelParams) and onnx.model == "nuclei-rf"


def test_a_bad_parameter_is_named_with_its_path() -> None:
    with pytest.raises(RecipeError, match=r"recipe\.params\.min_diameter"):
        parse_params(Recipe(segmenter="classical", params={"min_diameter": -1}))
    with pytest.raises(RecipeError, match=r"recipe\.segmenter: unknown segmenter 'cellpose'"):
        parse_params(Recipe(segmenter="cellpose"))
    with pytest.raises(RecipeError, match=r"recipe\.secondary: needs a 'cells' channel"):
        parse_secondary(Recipe(channels={"nuclei": "w1"}, secondary={}))


def test_validation_fills_defaults_and_the_canonical_text_is_one_for_both_forms() -> None:
    recipe = validate_recipe(Recipe(segmenter="classical", secondary={"max_distance": 30}))
    assert recipe.params["threshold_method"] == ClassicalParams().threshold_method
    assert recipe.secondary is not None and recipe.secondary["max_distance"] == 30.0
    text = canonical_recipe_json(recipe)
    assert text == canonical_recipe_json(recipe.model_dump(mode="json"))
    assert Recipe.model_validate_json(text) == recipe


def test_checking_an_execution_input_loads_no_numerical_library() -> None:
    """contracts is a leaf: parsing a run's input (recipe and naming included) imports
    neither numpy nor scipy (before: 87 scipy modules through segmentation)."""
    code = (
        "import sys\n"
        "from plateseg.contracts import ExecutionInput\n"
        "ExecutionInput.parse({'experiment_id': 'E1', 'naming': 'operetta',"
        " 'recipe': {'segmenter': 'classical', 'params': {'min_diameter': 8}}})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'scipy', 'skimage'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("model", [*SEGMENTER_PARAMS.values(), SecondaryParams])
def test_every_parameter_explains_itself_in_the_schema(model: type) -> None:
    """The new-run form shows each parameter's help and unit from the JSON schema."""
    properties = model.model_json_schema()["properties"]
    assert [name for name, field in properties.items() if not field.get("description")] == []
    numbers = [
        name
        for name, field in properties.items()
        if "number" in str(field.get("type", field.get("anyOf"))) and name != "model_sha256"
    ]
    assert [name for name in numbers if not properties[name].get("unit")] == []
