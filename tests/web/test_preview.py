"""Recipe validation with field-level messages and the preview on chosen fields."""

from __future__ import annotations

import io

import numpy as np
import tifffile
from fastapi.testclient import TestClient

from plateseg.imaging import write_tiff
from plateseg.store import LocalStore

from .conftest import EXPERIMENT


def test_segmenters_expose_parameters_with_defaults(client: TestClient) -> None:
    listed = {item["name"]: item for item in client.get("/api/segmenters").json()}
    assert set(listed) == {"classical", "trainable", "onnx"}
    properties = listed["classical"]["schema"]["properties"]
    assert properties["min_diameter"]["default"] is None  # estimated from each image
    assert properties["threshold_method"]["enum"] == ["otsu", "otsu3", "li"]
    assert properties["threshold_method"]["default"] == "li"


def test_bad_parameters_are_named_field_by_field(client: TestClient) -> None:
    response = client.post(
        "/api/recipes/validate", json={"params": {"min_diameter": -1, "smoothing_sigma": 99}}
    )
    assert response.status_code == 422
    fields = response.json()["fields"]
    assert set(fields) == {"min_diameter", "smoothing_sigma"}
    assert "greater than 1" in fields["min_diameter"]


def test_unknown_segmenter_and_missing_nuclei_role_are_422(client: TestClient) -> None:
    unknown = client.post("/api/recipes/validate", json={"segmenter": "magic"})
    assert unknown.status_code == 422
    assert "unknown segmenter 'magic'" in unknown.json()["detail"]
    no_nuclei = client.post("/api/recipes/validate", json={"channels": {"cells": "w2"}})
    assert no_nuclei.status_code == 422
    assert "channels" in no_nuclei.json()["fields"]


def test_preview_segments_two_fields_and_estimates_the_run(
    client: TestClient, demo: LocalStore
) -> None:
    response = client.post(
        f"/api/experiments/{EXPERIMENT}/preview",
        json={"image_ids": ["P1_A01_1", "P1_D05_2"], "recipe": {"params": {"min_diameter": 8}}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [f["image_id"] for f in body["fields"]] == ["P1_A01_1", "P1_D05_2"]
    assert body["fields"][0]["object_count"] > 0  # negative controls are full of nuclei
    assert body["fields"][0]["overlay"].startswith("data:image/png;base64,")
    assert body["recipe"]["params"]["min_diameter"] == 8.0
    assert body["estimate"]["fields"] == 12
    assert body["estimate"]["seconds"] > 0
    # the planning model at the definition's batch size (4): 12 fields are 3 batches
    assert (
        "12 fields" in body["estimate"]["basis"] and "3 batches of 4" in body["estimate"]["basis"]
    )


def test_preview_of_a_corrupt_field_is_a_clear_422(client: TestClient, demo: LocalStore) -> None:
    response = client.post(
        f"/api/experiments/{EXPERIMENT}/preview", json={"image_ids": ["P1_C03_2"]}
    )
    assert response.status_code == 422
    assert "P1_C03_s2_w1.tif" in response.json()["detail"]


def test_preview_takes_one_or_two_fields(client: TestClient, demo: LocalStore) -> None:
    url = f"/api/experiments/{EXPERIMENT}/preview"
    assert client.post(url, json={"image_ids": []}).status_code == 422
    three = {"image_ids": ["P1_A01_1", "P1_A01_2", "P1_B01_1"]}
    assert client.post(url, json=three).status_code == 422
    bad_channel = {"image_ids": ["P1_A01_1"], "recipe": {"channels": {"nuclei": "w7"}}}
    response = client.post(url, json=bad_channel)
    assert response.status_code == 422
    assert "w7" in response.json()["fields"]["channels.nuclei"]


def test_preview_projects_planes_only_when_the_recipe_says_max(
    client: TestClient, demo: LocalStore
) -> None:
    """An Operetta field in two planes, each holding half of a demo field: the preview of
    ``"planes": "max"`` segments the whole field, that of the default plane 1 alone."""
    pixels = tifffile.imread(
        io.BytesIO(demo.get_bytes(f"experiments/{EXPERIMENT}/P1/P1_A01_s1_w1.tif"))
    )
    half = pixels.shape[1] // 2
    for plane, keep in ((1, np.s_[:, :half]), (2, np.s_[:, half:])):
        part = np.full_like(pixels, pixels.min())
        part[keep] = pixels[keep]
        demo.put_bytes(f"experiments/ZP/P1/r01c01f01p0{plane}-ch1sk1fk1fl1.tiff", write_tiff(part))
        if plane == 1:  # plane 1 alone, as a plate of one plane
            demo.put_bytes(
                "experiments/P1-ONLY/P1/r01c01f01p01-ch1sk1fk1fl1.tiff", write_tiff(part)
            )
    demo.put_bytes("experiments/FLAT/P1/r01c01f01p01-ch1sk1fk1fl1.tiff", write_tiff(pixels))

    def count(experiment: str, planes: str) -> int:
        recipe = {"channels": {"nuclei": "ch1"}, "planes": planes}
        response = client.post(
            f"/api/experiments/{experiment}/preview",
            json={"image_ids": ["P1_A01_1"], "recipe": recipe},
        )
        assert response.status_code == 200, response.text
        return int(response.json()["fields"][0]["object_count"])

    assert count("ZP", "max") == count("FLAT", "first")
    assert count("ZP", "first") == count("P1-ONLY", "first") != count("FLAT", "first")
