"""The seams: execution input validated at the edge, with the bad field named."""

from __future__ import annotations

import re

import pytest

from plateseg.contracts import Batch, ExecutionInput, ManifestItem, parse_event
from plateseg.errors import ExecutionInputError, RecipeError


def test_minimal_input_gets_the_default_recipe() -> None:
    parsed = ExecutionInput.parse({"experiment_id": "EXP-001"})
    assert parsed.recipe.segmenter == "onnx"
    assert parsed.recipe.channels["nuclei"] == "w1"
    assert parsed.run_id is None


@pytest.mark.parametrize(
    "bad", ["../x", "a/b", "*", "%2F", "x" * 129, "", ".hidden", "a..b", "sp ace", "ü"]
)
def test_unsafe_experiment_ids_are_refused(bad: str) -> None:
    with pytest.raises(ExecutionInputError, match="experiment_id"):
        ExecutionInput.parse({"experiment_id": bad})


def test_input_that_is_not_an_object() -> None:
    with pytest.raises(ExecutionInputError, match="JSON object"):
        ExecutionInput.parse(["EXP-001"])


def test_unknown_top_level_field_is_named() -> None:
    with pytest.raises(ExecutionInputError, match="input.experimentid"):
        ExecutionInput.parse({"experiment_id": "E1", "experimentid": "E1"})


def test_recipe_problems_are_recipe_errors_naming_the_field() -> None:
    with pytest.raises(RecipeError, match=r"input\.recipe\.channels"):
        ExecutionInput.parse({"experiment_id": "E1", "recipe": {"channels": {"cells": "w2"}}})


def test_run_id_must_be_safe() -> None:
    with pytest.raises(ExecutionInputError, match="run_id"):
        ExecutionInput.parse({"experiment_id": "E1", "run_id": "../../x"})


def test_manifest_item_image_id() -> None:
    item = ManifestItem(plate="P1", well="B03", field=2, channels={"w1": "k"})
    assert item.image_id == "P1_B03_2"


def test_batch_event_parses_with_aws_field_names() -> None:
    batch = parse_event(
        Batch,
        {
            "BatchInput": {"run_id": "r", "experiment_id": "E", "bucket": "b", "recipe": {}},
            "Items": [{"plate": "P1", "well": "A01", "field": 1, "channels": {"w1": "k"}}],
        },
        "segment event",
    )
    assert batch.items[0].well == "A01"


def test_malformed_batch_names_the_event_and_field() -> None:
    with pytest.raises(ExecutionInputError, match=r"segment event\.Items"):
        parse_event(Batch, {"BatchInput": {}, "Items": 3}, "segment event")


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ("../x", "path separator"),
        ("EXP*", "wildcard"),
        ("a%2Fb", "'%'"),
        ("x" * 300, "300 characters long (at most 128)"),
        ("a..b", "'..'"),
        ("sp ace", "' '"),
        (".hidden", "start with a letter or digit"),
    ],
)
def test_an_unsafe_experiment_id_is_told_which_rule_it_breaks(bad: str, rule: str) -> None:
    with pytest.raises(ExecutionInputError) as caught:
        ExecutionInput.parse({"experiment_id": bad})
    message = str(caught.value)
    assert message.startswith("input.experiment_id: invalid experiment id") and rule in message
    assert "Value error" not in message and len(message) < 400


@pytest.mark.parametrize(
    ("recipe", "words"),
    [
        ({"segmenter": "magic"}, "input.recipe.segmenter: unknown segmenter 'magic'"),
        ({"params": {"min_diameter": 0.5}}, "input.recipe.params.min_diameter"),
    ],
)
def test_the_recipe_is_checked_against_its_segmenter_at_the_edge(
    recipe: dict[str, object], words: str
) -> None:
    with pytest.raises(RecipeError, match=re.escape(words)):
        ExecutionInput.parse({"experiment_id": "E1", "recipe": recipe})
    parsed = ExecutionInput.parse(
        {"experiment_id": "E1", "recipe": {"params": {"min_diameter": 8}}}
    )
    assert parsed.recipe.params == {"min_diameter": 8}  # kept as given, defaults not filled


def test_a_bad_naming_is_refused_at_the_edge() -> None:
    with pytest.raises(ExecutionInputError, match=r"input\.naming: '\(oops'"):
        ExecutionInput.parse({"experiment_id": "E1", "naming": "(oops"})
    assert ExecutionInput.parse({"experiment_id": "E1", "naming": "operetta"}).naming == "operetta"
