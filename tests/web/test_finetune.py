"""The fine-tune API of the Models page: status, the base model's objects, starting a job
(and every way a request can be refused), progress, cancel, pictures, the model card."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from plateseg.finetune.labels import BACKGROUND, NUCLEUS, SEPARATOR, scribbles_from_truth
from plateseg.imaging import read_image
from plateseg.segmentation.learned import segment_learned
from plateseg.segmentation.onnx_model import SHIPPED_MODELS, load_model
from plateseg.store import LocalStore, get_json
from plateseg.web.finetune_eval import encode_rle, label_agreement
from plateseg.web.routers import finetune as finetune_router
from plateseg.web.scribbles import decode_rle

from .conftest import EXPERIMENT

FIELDS = ["P1_A01_1", "P1_D05_1"]


def corrected(store: LocalStore, image_id: str, seed: int = 0) -> dict[str, Any]:
    """One DEMO-W field with sparse labels drawn from its truth, as the page sends it."""
    key = f"truth/{EXPERIMENT}/masks/{image_id}.tif"
    labels = scribbles_from_truth(
        read_image(store.get_bytes(key), key), np.random.default_rng(seed)
    )
    return {"image_id": image_id, "height": 128, "width": 128, "rle": encode_rle(labels)}


@pytest.fixture
def fields(demo: LocalStore) -> list[dict[str, Any]]:
    return [corrected(demo, image_id) for image_id in FIELDS]


def body(fields: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    return {"name": "tuned", "experiment_id": EXPERIMENT, "fields": fields, **changes}


def wait(client: TestClient, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        progress: dict[str, Any] = client.get(f"/api/finetune/jobs/{job_id}").json()
        if progress["status"] != "running":
            return progress
        assert time.monotonic() < deadline, progress
        time.sleep(0.2)


def test_every_finetune_route_refuses_anonymous_requests(anonymous: TestClient) -> None:
    paths = {
        ("GET", "/api/finetune/status"),
        ("GET", "/api/finetune/objects/E/I"),
        ("POST", "/api/finetune"),
        ("GET", "/api/finetune/jobs/abc"),
        ("POST", "/api/finetune/jobs/abc/cancel"),
        ("GET", "/api/finetune/jobs/abc/pictures/0/after.png"),
        ("GET", "/api/finetune/cards/m"),
    }
    routed = {
        (method, route.path)
        for route in finetune_router.router.routes
        for method in getattr(route, "methods", ())
    }
    assert len(routed) == len(paths)
    for method, path in paths:
        assert anonymous.request(method, path).status_code == 401, (method, path)


def test_the_status_names_the_fine_tunable_models(client: TestClient) -> None:
    status = client.get("/api/finetune/status").json()
    assert status == {"available": True, "reason": None, "bases": ["nuclei-unet"], "running": None}


def test_without_pytorch_the_page_and_the_start_say_how_to_install_it(
    client: TestClient, fields: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    status = client.get("/api/finetune/status").json()
    assert status["available"] is False
    assert "pip install -r tools/requirements-train.txt" in status["reason"]
    response = client.post("/api/finetune", json=body(fields))
    assert response.status_code == 422
    assert "needs PyTorch" in response.json()["fields"]["method"]


def test_the_base_models_objects_come_at_canvas_size(client: TestClient, demo: LocalStore) -> None:
    response = client.get(f"/api/finetune/objects/{EXPERIMENT}/{FIELDS[0]}?channel=w1")
    assert response.status_code == 200, response.text
    found = response.json()
    key = f"experiments/{EXPERIMENT}/P1/P1_A01_s1_w1.tif"
    labels = segment_learned(read_image(demo.get_bytes(key), key), load_model("nuclei-unet"), None)
    ids = np.asarray(found["rle"]).reshape(-1, 2)
    decoded = np.repeat(ids[:, 0], ids[:, 1]).reshape(found["height"], found["width"])
    assert (found["height"], found["width"], found["step"]) == (128, 128, 1)
    assert np.array_equal(decoded, labels.labels)
    assert found["count"] == len(np.unique(labels.labels)) - 1 > 0


def test_objects_of_a_model_that_is_no_nuclei_network_are_refused(client: TestClient) -> None:
    response = client.get(f"/api/finetune/objects/{EXPERIMENT}/{FIELDS[0]}?model=nuclei-rf")
    assert response.status_code == 422
    assert "pixel-features" in response.json()["fields"]["base"]


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"name": "../up"}, "name", "not a valid model name"),
        ({"name": "nuclei-unet"}, "name", "shipped model's name"),
        ({"base": "nuclei-rf"}, "base", "is a pixel-features model: only nuclei-3class"),
        ({"base": "missing-model"}, "base", "not found"),
        ({"channel": "w9"}, "channel", "has no channel 'w9'"),
        ({"check_field": FIELDS[0]}, "check_field", "is labelled"),
    ],
)
def test_a_bad_request_names_its_field(
    client: TestClient, fields: list[dict[str, Any]], changes: dict[str, Any], field: str, text: str
) -> None:
    response = client.post("/api/finetune", json=body(fields, **changes))
    assert response.status_code == 422, response.text
    assert text in response.json()["fields"][field]


def test_labels_without_a_nucleus_or_with_unknown_values_are_refused(
    client: TestClient, fields: list[dict[str, Any]]
) -> None:
    only_background = [{**fields[0], "rle": [BACKGROUND, 128 * 128]}]
    response = client.post("/api/finetune", json=body(only_background))
    assert response.status_code == 422
    assert "paint some nucleus too" in response.json()["fields"]["scribbles"]
    nothing = [{**fields[0], "rle": [0, 128 * 128]}]
    response = client.post("/api/finetune", json=body(nothing))
    assert "paint some background and nucleus" in response.json()["fields"]["scribbles"]
    bad = [{**fields[0], "rle": [4, 128 * 128]}]
    response = client.post("/api/finetune", json=body(bad))
    assert "must be 0, 1, 2 or 3, got [4]" in response.json()["fields"]["scribbles"]
    twice = [fields[0], fields[0]]
    response = client.post("/api/finetune", json=body(twice))
    assert "each field may be corrected once" in response.json()["fields"]["fields"]


def test_a_taken_name_needs_replace(
    client: TestClient, fields: list[dict[str, Any]], store: LocalStore
) -> None:
    store.put_bytes("models/tuned.onnx", (SHIPPED_MODELS / "nuclei-unet.onnx").read_bytes())
    response = client.post("/api/finetune", json=body(fields))
    assert response.status_code == 422
    assert "already exists" in response.json()["fields"]["name"]


def test_a_fine_tune_is_stored_with_its_card_and_shows_what_it_learned(
    client: TestClient, fields: list[dict[str, Any]], store: LocalStore
) -> None:
    request = body(fields, steps=3, seconds=60, leave_one_out=True)
    response = client.post("/api/finetune", json=request)
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["status"] == "running" and started["name"] == "tuned"
    final = wait(client, started["job_id"])
    assert final["status"] == "succeeded", final
    assert (final["step"], final["phase"]) == (final["steps"], "done")
    result = final["result"]
    assert [(f["image_id"], f["labelled"]) for f in result["fields"]] == [
        (FIELDS[0], True),
        (FIELDS[1], True),
        ("P1_A01_2", False),  # the first field not corrected
    ]
    for row in result["fields"][:2]:
        assert 0.0 <= row["agreement_after"]["all"] <= 1.0 and row["before"] > 0
    assert result["fields"][2]["agreement_after"] is None
    loo = result["leave_one_out"]
    assert [f["image_id"] for f in loo["folds"]] == FIELDS and not loo["cancelled"]
    assert loo["steps"] == 1
    assert result["recipe"] == {
        "segmenter": "onnx",
        "params": {"model": "tuned"},
        "channels": {"nuclei": "w1"},
    }
    assert result["use_url"] == (
        f"/experiments/{EXPERIMENT}/new-run?segmenter=onnx&model=tuned&nuclei=w1"
    )
    card = get_json(store, "models/tuned.json")
    assert card == client.get("/api/finetune/cards/tuned").json()
    assert card["origin"] == "fine-tuned" and card["kind"] == "nuclei-3class"
    assert card["base"]["name"] == "nuclei-unet" and card["steps"] == 3
    assert (card["experiment_id"], card["channel"], card["check_field"]) == (
        EXPERIMENT,
        "w1",
        "P1_A01_2",
    )
    assert card["created_by"] == "token sign-in"
    assert card["evaluation"]["leave_one_out"] == loo
    assert [f["name"] for f in card["fields"]] == FIELDS
    assert load_model("tuned", store).kind == "nuclei-3class"
    for index in range(3):
        for which in ("before", "after"):
            picture = client.get(
                f"/api/finetune/jobs/{started['job_id']}/pictures/{index}/{which}.png"
            )
            assert picture.status_code == 200 and picture.content[:4] == b"\x89PNG"
    listed = {m["name"]: m for m in client.get("/api/models").json()}
    assert listed["tuned"]["segmenter"] == "onnx"
    # iterate: the fine-tuned model is a base now, and a new run preselects it
    assert client.get("/api/finetune/status").json()["bases"] == ["tuned", "nuclei-unet"]
    again = client.post("/api/finetune", json=body(fields, name="tuned-2", base="tuned", steps=1))
    assert wait(client, again.json()["job_id"])["result"]["card"]["base"]["name"] == "tuned"
    page = client.get(result["use_url"])
    assert page.status_code == 200 and '<option value="tuned" selected>' in page.text


def test_one_job_at_a_time_and_cancel_stores_nothing(
    client: TestClient, fields: list[dict[str, Any]], store: LocalStore
) -> None:
    response = client.post("/api/finetune", json=body(fields, steps=5000, seconds=600))
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    busy = client.post("/api/finetune", json=body(fields, name="other"))
    assert busy.status_code == 503 and busy.headers["Retry-After"]
    assert "already running" in busy.json()["detail"]
    assert client.get("/api/finetune/status").json()["running"]["job_id"] == job_id
    cancelled = client.post(f"/api/finetune/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    final = wait(client, job_id, timeout=120)
    assert (final["status"], final["phase"], final["result"]) == ("cancelled", "cancelled", None)
    assert not store.exists("models/tuned.onnx")
    # cancelling a finished job changes nothing
    assert client.post(f"/api/finetune/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    assert client.get(f"/api/finetune/jobs/{job_id}/pictures/0/after.png").status_code == 404


def test_unknown_jobs_and_cards(client: TestClient) -> None:
    assert client.get("/api/finetune/jobs/0123abcd").status_code == 404
    assert client.get("/api/finetune/jobs/NOT-HEX").status_code == 422
    assert client.get("/api/finetune/cards/none-such").status_code == 404
    assert client.get("/api/finetune/cards/..bad").status_code == 422


def test_label_agreement_per_label() -> None:
    objects = np.zeros((20, 20), np.int32)
    objects[2:18, 2:18] = 1  # one object over two nuclei: a merge
    labels = np.zeros((20, 20), np.uint8)
    labels[19, 2:10] = BACKGROUND  # right: outside every object
    labels[4, 4:8] = NUCLEUS  # right: inside one
    labels[19, 12:14] = NUCLEUS  # wrong: in no object
    labels[6:14, 10] = SEPARATOR  # wrong: through the middle of the merged object
    found = label_agreement(labels, objects)
    assert (found["background"], found["nucleus"], found["separator"]) == (1.0, 0.6667, 0.0)
    assert found["pixels"] == 8 + 6 + 8
    split = objects.copy()
    split[2:18, 10:18] = 2  # split where she drew the stroke
    assert label_agreement(labels, split)["separator"] == 1.0
    assert label_agreement(np.zeros((3, 3), np.uint8), objects[:3, :3])["all"] is None


def test_rle_round_trip() -> None:
    mask = np.array([[0, 3, 3], [2, 1, 0]], np.uint8)
    assert np.array_equal(decode_rle(encode_rle(mask), 2, 3, "f", values=(0, 1, 2, 3)), mask)
