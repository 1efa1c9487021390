"""The Models page reads a field as a run with the chosen Z planes reads it: the canvas,
the base model's objects, the scribbles of a pixel classifier and the corrections of a
fine-tune (its check field too). ``planes=max`` projects the plane files of a channel
and a Z-stack held in one file; ``first`` (the default) reads the first plane file and
refuses a one-file stack, saying how to project it. The model's card records the
choice, and its "Use" link carries ``planes=max`` to the new-run form.

Fixtures: DEMO-W's fields A01_1 and D05_1 copied as ZFILE (each channel one ImageJ
Z-stack of two planes whose maximum is DEMO-W's image), ZPLANES (Operetta plane files
``p01``/``p02``, the same two planes) and FLAT (Operetta, the whole image in ``p01``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plateseg.finetune.labels import scribbles_from_truth
from plateseg.imaging import read_image
from plateseg.segmentation.trainable import scribbles_from_mask
from plateseg.store import LocalStore, get_json
from plateseg.web.finetune_eval import encode_rle

from .conftest import EXPERIMENT
from .test_finetune import wait
from .zplanes import write_plane_files, write_stack_files

FIELDS = ["P1_A01_1", "P1_D05_1"]
ZFILE, ZPLANES, FLAT = "ZFILE", "ZPLANES", "FLAT"
STACK_REFUSED = 'a Z-stack is read as its maximum projection with the recipe\'s "planes": "max"'


@pytest.fixture
def stacked(demo: LocalStore) -> LocalStore:
    write_stack_files(demo, EXPERIMENT, ZFILE, FIELDS)
    write_plane_files(demo, EXPERIMENT, ZPLANES, FIELDS)
    write_plane_files(demo, EXPERIMENT, FLAT, FIELDS, planes=False)
    return demo


def nuclei(experiment: str) -> str:
    """The nuclei channel: ImageXpress ``w1``, Operetta ``ch1``."""
    return "ch1" if experiment in (ZPLANES, FLAT) else "w1"


def canvas(client: TestClient, experiment: str, planes: str | None = None) -> Any:
    query = f"?planes={planes}" if planes else ""
    url = f"/api/models/canvas/{experiment}/{FIELDS[0]}/{nuclei(experiment)}.png{query}"
    response = client.get(url)
    assert response.status_code in (200, 422), response.text
    return response


def objects(client: TestClient, experiment: str, planes: str, channel: str = "") -> Any:
    query = f"channel={channel or nuclei(experiment)}&planes={planes}"
    return client.get(f"/api/finetune/objects/{experiment}/{FIELDS[0]}?{query}")


def truth_of(store: LocalStore, image_id: str) -> np.ndarray:
    key = f"truth/{EXPERIMENT}/masks/{image_id}.tif"
    return read_image(store.get_bytes(key), key)


def test_the_canvas_of_a_one_file_stack_is_its_projection_and_first_refuses_it(
    client: TestClient, stacked: LocalStore
) -> None:
    projected = canvas(client, ZFILE, "max")
    assert projected.status_code == 200, projected.text
    assert projected.headers["content-type"] == "image/png"
    assert projected.headers["x-field-shape"] == "128x128"
    assert projected.content == canvas(client, EXPERIMENT).content  # the max of its halves
    for refused in (canvas(client, ZFILE, "first"), canvas(client, ZFILE)):
        assert refused.status_code == 422, refused.text
        assert "multi-plane stack" in refused.json()["detail"]
        assert STACK_REFUSED in refused.json()["detail"]


def test_the_canvas_of_plane_files_is_the_first_plane_or_their_projection(
    client: TestClient, stacked: LocalStore
) -> None:
    flat = canvas(client, FLAT).content
    assert canvas(client, ZPLANES, "max").content == flat
    first = canvas(client, ZPLANES, "first")
    assert first.status_code == 200 and first.content != flat
    assert canvas(client, ZPLANES).content == first.content  # first is the default


def test_a_bad_planes_choice_is_a_422_naming_it(client: TestClient, stacked: LocalStore) -> None:
    for response in (
        canvas(client, ZFILE, "mean"),
        objects(client, ZFILE, "sum"),
        client.post(
            "/api/models/train",
            json={"name": "m", "experiment_id": ZFILE, "planes": "all", "fields": [_blank()]},
        ),
        client.post(
            "/api/finetune",
            json={"name": "m", "experiment_id": ZFILE, "planes": "z", "fields": [_blank()]},
        ),
    ):
        assert response.status_code == 422, response.text
        assert [e["loc"][-1] for e in response.json()["detail"]] == ["planes"]


def _blank() -> dict[str, Any]:
    return {"image_id": FIELDS[0], "height": 128, "width": 128, "rle": [0, 128 * 128]}


def test_the_base_models_objects_on_a_stack_are_those_on_its_projection(
    client: TestClient, stacked: LocalStore
) -> None:
    projected = objects(client, ZFILE, "max")
    assert projected.status_code == 200, projected.text
    flat = objects(client, EXPERIMENT, "first").json()
    assert projected.json()["rle"] == flat["rle"] and projected.json()["count"] == flat["count"]
    refused = objects(client, ZFILE, "first")
    assert refused.status_code == 422 and STACK_REFUSED in refused.json()["detail"]
    planes = objects(client, ZPLANES, "max").json()
    assert planes["count"] == objects(client, FLAT, "first").json()["count"] == flat["count"] > 0
    assert objects(client, ZPLANES, "first").json()["rle"] != flat["rle"]
    assert objects(client, ZFILE, "max", channel="w9").status_code == 404


def test_a_pixel_classifier_taught_on_projections_runs_as_it_was_taught(
    client: TestClient, app: FastAPI, stacked: LocalStore
) -> None:
    fields = [
        {"image_id": i, "height": 128, "width": 128, "rle": encode_rle(m)}
        for i, m in ((i, scribbles_from_mask(truth_of(stacked, i))) for i in FIELDS)
    ]
    body = {"name": "zfile-rf", "experiment_id": ZFILE, "fields": fields}
    refused = client.post("/api/models/train", json=body)
    assert refused.status_code == 422 and STACK_REFUSED in refused.json()["detail"]
    response = client.post("/api/models/train", json={**body, "planes": "max"})
    assert response.status_code == 201, response.text
    trained = response.json()
    truth = get_json(stacked, f"truth/{EXPERIMENT}/counts.json")["fields"]
    for preview in trained["previews"]:
        assert abs(preview["object_count"] - truth[preview["image_id"]]) <= 1
    assert trained["model"]["provenance"]["planes"] == "max"
    assert get_json(stacked, "models/zfile-rf.json")["planes"] == "max"
    assert trained["recipe"]["planes"] == "max"
    assert trained["use_url"] == (
        f"/experiments/{ZFILE}/new-run?segmenter=trainable&model=zfile-rf&nuclei=w1&planes=max"
    )
    page = client.get(trained["use_url"]).text
    assert '<option value="max" selected>maximum projection</option>' in page
    run = client.post("/api/runs", json={"experiment_id": ZFILE, "recipe": trained["recipe"]})
    assert run.status_code == 202, run.text
    final = app.state.plateseg.backend.manager.wait(run.json()["run_id"], timeout=240)
    assert final.status == "SUCCEEDED", final
    images = client.get(f"/api/runs/{run.json()['run_id']}/images").json()
    assert {i["image_id"]: i["object_count"] for i in images} == {
        p["image_id"]: p["object_count"] for p in trained["previews"]
    }


def test_a_default_model_card_says_first_and_its_use_link_is_unchanged(
    client: TestClient, stacked: LocalStore
) -> None:
    mask = scribbles_from_mask(truth_of(stacked, FIELDS[0]))
    field = {"image_id": FIELDS[0], "height": 128, "width": 128, "rle": encode_rle(mask)}
    body = {"name": "p1", "experiment_id": ZPLANES, "channel": "ch1", "fields": [field]}
    response = client.post("/api/models/train", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["model"]["provenance"]["planes"] == "first"
    assert "planes" not in response.json()["recipe"]
    assert response.json()["use_url"].endswith("nuclei=ch1")
    page = client.get(response.json()["use_url"]).text
    assert '<option value="first" selected>first plane</option>' in page


def test_a_fine_tune_on_a_one_file_stack_reads_its_projection(
    client: TestClient, stacked: LocalStore
) -> None:
    labels = scribbles_from_truth(truth_of(stacked, FIELDS[0]), np.random.default_rng(0))
    field = {"image_id": FIELDS[0], "height": 128, "width": 128, "rle": encode_rle(labels)}
    body = {"name": "zfile-tuned", "experiment_id": ZFILE, "fields": [field], "steps": 1}
    refused = client.post("/api/finetune", json=body)
    assert refused.status_code == 422 and STACK_REFUSED in refused.json()["detail"]
    response = client.post("/api/finetune", json={**body, "planes": "max"})
    assert response.status_code == 202, response.text
    final = wait(client, response.json()["job_id"])
    assert final["status"] == "succeeded", final
    result = final["result"]
    labelled, check = result["fields"]
    assert (labelled["image_id"], labelled["labelled"]) == (FIELDS[0], True)
    assert (check["image_id"], check["labelled"]) == (FIELDS[1], False)  # projected too
    assert labelled["before"] > 0 and check["before"] > 0
    assert result["card"]["planes"] == "max" and result["recipe"]["planes"] == "max"
    assert result["use_url"].endswith("segmenter=onnx&model=zfile-tuned&nuclei=w1&planes=max")
