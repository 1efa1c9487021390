"""Lookup reads file names with the execution input's naming preset."""

from __future__ import annotations

import pytest

from plateseg.contracts import LookupRequest
from plateseg.errors import ExecutionInputError, RecipeError
from plateseg.pipeline.lookup import lookup
from plateseg.store import LocalStore, get_json


def request(naming: str | None, nuclei: str | None = "ch1") -> LookupRequest:
    """Lookup's request; ``nuclei=None``: a recipe that names no channels."""
    payload: dict[str, object] = {
        "experiment_id": "OP-1",
        "run_id": "r1",
        "recipe": {"channels": {"nuclei": nuclei}} if nuclei is not None else {},
    }
    if naming is not None:
        payload["naming"] = naming
    return LookupRequest(input=payload, execution_name="x", bucket="b")


@pytest.fixture
def operetta(tmp_path: object) -> LocalStore:
    store = LocalStore(f"{tmp_path}/store")
    for name in (
        "r01c01f01p01-ch1sk1fk1fl1.tiff",
        "r01c01f01p01-ch2sk1fk1fl1.tiff",
        "r01c02f02p01-ch1sk1fk1fl1.tiff",
        "notes.txt",
    ):
        store.put_bytes(f"experiments/OP-1/P1/{name}", b"x")
    return store


def test_lookup_groups_operetta_fields(operetta: LocalStore) -> None:
    result = lookup(request("operetta"), operetta)
    assert result.item_count == 2
    manifest = get_json(operetta, result.manifest_key)
    assert [(m["well"], m["field"], sorted(m["channels"])) for m in manifest] == [
        ("A01", 1, ["ch1", "ch2"]),
        ("A02", 2, ["ch1"]),
    ]
    assert get_json(operetta, "runs/r1/lookup-report.json")["naming"] == "operetta"


def test_without_a_naming_the_convention_is_detected(operetta: LocalStore) -> None:
    result = lookup(request(None), operetta)
    assert result.item_count == 2
    assert "file names read as operetta (detected)" in result.message
    report = get_json(operetta, "runs/r1/lookup-report.json")
    assert (report["naming"], report["naming_detected"]) == ("operetta", True)


def test_wrong_naming_explains_itself(operetta: LocalStore) -> None:
    result = lookup(request("imagexpress"), operetta)  # named, so not detected
    assert result.item_count == 0
    assert "3 unmatched names" in result.message and "'imagexpress'" in result.message
    assert "operetta" in result.message
    with pytest.raises(ExecutionInputError, match="input.naming: 'phenix' is neither a preset"):
        lookup(request("phenix"), operetta)


def test_a_nuclei_channel_no_field_has_is_a_recipe_error(operetta: LocalStore) -> None:
    with pytest.raises(RecipeError, match=r"recipe.channels.nuclei: channel 'w1' .* ch1, ch2"):
        lookup(request("operetta", nuclei="w1"), operetta)
    assert not operetta.exists("runs/r1/manifest.json")


def test_a_recipe_naming_no_channels_gets_the_plates_first_channel(operetta: LocalStore) -> None:
    result = lookup(request(None, nuclei=None), operetta)
    assert result.item_count == 2
    assert result.recipe.channels == {"nuclei": "ch1", "cells": "ch2"}
    assert get_json(operetta, "runs/r1/recipe.json")["channels"] == result.recipe.channels
    assert "nuclei channel ch1: the first" in result.message
    report = get_json(operetta, "runs/r1/lookup-report.json")
    assert (report["channels"], report["channels_detected"]) == (result.recipe.channels, True)


def test_a_stain_named_channel_is_the_nuclei(tmp_path: object) -> None:
    store = LocalStore(f"{tmp_path}/store")
    for channel in ("Cy3", "DAPI", "FITC"):
        store.put_bytes(f"experiments/OP-1/P1/B - 03(fld 1 wv {channel} - {channel}).tif", b"x")
    result = lookup(request(None, nuclei=None), store)
    assert result.recipe.channels == {"nuclei": "dapi", "cells": "cy3"}  # names lower-cased
    assert "the one named after a nuclear stain" in result.message


def test_the_default_channels_stay_where_w1_exists(tmp_path: object) -> None:
    store = LocalStore(f"{tmp_path}/store")
    store.put_bytes("experiments/OP-1/P1/P1_A01_s1_w2.tif", b"x")
    store.put_bytes("experiments/OP-1/P1/P1_A01_s1_w1.tif", b"x")
    result = lookup(request(None, nuclei=None), store)
    assert result.recipe.channels == {"nuclei": "w1", "cells": "w2"}
    assert get_json(store, "runs/r1/lookup-report.json")["channels_detected"] is False
