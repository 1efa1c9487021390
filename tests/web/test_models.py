"""The models API and pages: list, upload (checked), delete, train from scribbles, use in a run."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from plateseg.errors import ModelError
from plateseg.imaging import read_image
from plateseg.segmentation.onnx_model import SHIPPED_MODELS
from plateseg.segmentation.trainable import scribbles_from_mask
from plateseg.settings import Settings
from plateseg.store import LocalStore, get_json
from plateseg.web import WebSettings, create_app
from plateseg.web.routers import models as models_router
from plateseg.web.scribbles import canvas_step, decode_rle, full_resolution

from .conftest import EXPERIMENT, TOKEN

TRAIN_FIELDS = ["P1_A01_1", "P1_D05_1"]


def rle(mask: np.ndarray) -> list[int]:
    """``[value, length, …]`` row-major runs of a label mask (what scribble.js sends)."""
    flat = mask.ravel()
    starts = np.r_[0, np.flatnonzero(np.diff(flat)) + 1]
    lengths = np.diff(np.r_[starts, flat.size])
    return np.column_stack([flat[starts], lengths]).ravel().astype(int).tolist()


def onnx_bytes(kind: str) -> bytes:
    """A tiny ONNX model: ``image`` (a valid 2-class CNN stand-in) or ``wrong-width``."""
    from onnx import TensorProto, helper

    if kind == "image":
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "h", "w"])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, "h", "w"])
        one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
        nodes = [
            helper.make_node("Sub", ["one", "x"], ["bg"]),
            helper.make_node("Concat", ["bg", "x"], ["y"], axis=1),
        ]
        graph = helper.make_graph(nodes, "image", [x], [y], initializer=[one])
        meta = {}
    else:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
        y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", 3])
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["probabilities"])], "pf", [x], [y]
        )
        meta = {"plateseg.kind": "pixel-features", "plateseg.sigmas": "[0.7, 1.5, 3, 6]"}
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return bytes(model.SerializeToString())


@pytest.fixture
def scribbled(demo: LocalStore) -> list[dict[str, Any]]:
    """Two DEMO-W fields painted from their true nuclei (nucleus; background beyond 3 px)."""
    fields = []
    for image_id in TRAIN_FIELDS:
        key = f"truth/{EXPERIMENT}/masks/{image_id}.tif"
        labels = scribbles_from_mask(read_image(demo.get_bytes(key), key))
        fields.append({"image_id": image_id, "height": 128, "width": 128, "rle": rle(labels)})
    return fields


@pytest.fixture
def trained(client: TestClient, scribbled: list[dict[str, Any]]) -> dict[str, Any]:
    body = {"name": "demo-nuclei", "experiment_id": EXPERIMENT, "fields": scribbled}
    response = client.post("/api/models/train", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
def upload(client: TestClient) -> Iterator[Any]:
    def post(name: str, data: bytes, replace: bool = False) -> Any:
        files = {"file": ("model.onnx", io.BytesIO(data), "application/octet-stream")}
        form = {"name": name, "replace": "true" if replace else "false"}
        return client.post("/api/models", data=form, files=files)

    yield post


def test_every_models_route_refuses_anonymous_requests(anonymous: TestClient) -> None:
    routes = [r for r in models_router.router.routes if isinstance(r, APIRoute)]
    assert len(routes) == 5
    for route in routes:
        for method in route.methods:
            path = route.path.replace("{experiment_id}", "E").replace("{image_id}", "I")
            path = path.replace("{channel}", "w1").replace("{name}", "m")
            assert anonymous.request(method, path).status_code == 401, (method, path)
    response = anonymous.get("/models")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmodels"


def test_the_list_holds_the_shipped_model(client: TestClient) -> None:
    listed = client.get("/api/models").json()
    assert [(m["name"], m["source"], m["segmenter"], m["kind"]) for m in listed] == [
        ("nuclei-rf", "shipped", "trainable", "pixel-features"),
        ("nuclei-unet", "shipped", "onnx", "nuclei-3class"),
    ]
    assert listed[0]["size"] == (SHIPPED_MODELS / "nuclei-rf.onnx").stat().st_size


def test_a_good_upload_is_stored_with_its_provenance(
    client: TestClient, upload: Any, store: LocalStore
) -> None:
    data = (SHIPPED_MODELS / "nuclei-rf.onnx").read_bytes()
    response = upload("my-rf", data)
    assert response.status_code == 201, response.text
    model = response.json()
    assert (model["name"], model["kind"], model["size"]) == ("my-rf", "pixel-features", len(data))
    assert store.get_bytes("models/my-rf.onnx") == data
    assert get_json(store, "models/my-rf.json")["origin"] == "uploaded"
    assert get_json(store, "models/my-rf.json")["filename"] == "model.onnx"
    names = [m["name"] for m in client.get("/api/models").json()]
    assert names == ["my-rf", "nuclei-rf", "nuclei-unet"]


def test_models_put_in_the_store_by_hand_are_listed_from_their_metadata(
    client: TestClient, store: LocalStore
) -> None:
    store.put_bytes("models/by-cli.onnx", (SHIPPED_MODELS / "nuclei-rf.onnx").read_bytes())
    store.put_bytes("models/broken.onnx", b"not onnx")
    store.put_bytes("models/notes.txt", b"ignored")
    listed = {m["name"]: m for m in client.get("/api/models").json()}
    assert sorted(listed) == ["broken", "by-cli", "nuclei-rf", "nuclei-unet"]
    assert listed["by-cli"]["kind"] == "pixel-features"
    assert listed["by-cli"]["provenance"]["training"]["trees"] == 16
    assert listed["broken"]["kind"] == "unknown"
    assert "not a valid" in listed["broken"]["provenance"]["problem"]


def test_an_image_model_uploads_for_the_onnx_segmenter(upload: Any) -> None:
    response = upload("cnn-like", onnx_bytes("image"))
    assert response.status_code == 201, response.text
    assert (response.json()["kind"], response.json()["segmenter"]) == ("image", "onnx")


@pytest.mark.parametrize(
    ("name", "data", "field", "words"),
    [
        ("../evil", b"x", "name", "not a valid model name"),
        ("ok", b"", "file", "empty"),
        ("ok", b"this is not an onnx model", "file", "not a valid ONNX model"),
        ("ok", onnx_bytes("wrong-width"), "file", "(n, 16)"),
    ],
)
def test_bad_uploads_name_the_bad_field(
    upload: Any, store: LocalStore, name: str, data: bytes, field: str, words: str
) -> None:
    response = upload(name, data)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "ModelFormError"
    assert words in body["fields"][field]
    assert not list(store.list("models/"))


def test_a_taken_name_needs_replace(upload: Any) -> None:
    data = (SHIPPED_MODELS / "nuclei-rf.onnx").read_bytes()
    assert upload("twice", data).status_code == 201
    again = upload("twice", data)
    assert again.status_code == 422
    assert "already exists" in again.json()["fields"]["name"]
    assert upload("twice", data, replace=True).status_code == 201


def test_an_upload_over_the_body_limit_gets_413(settings: Settings) -> None:
    app = create_app(settings, WebSettings(web_token=TOKEN, web_secret="s" * 32, web_max_body=4096))
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as small:
        files = {"file": ("big.onnx", io.BytesIO(b"\0" * 8192), "application/octet-stream")}
        response = small.post("/api/models", data={"name": "big"}, files=files)
    assert response.status_code == 413


def test_delete_removes_a_stored_model_but_not_a_shipped_one(
    client: TestClient, upload: Any, store: LocalStore
) -> None:
    assert upload("gone", (SHIPPED_MODELS / "nuclei-rf.onnx").read_bytes()).status_code == 201
    assert client.delete("/api/models/gone").json() == {"name": "gone", "deleted": True}
    assert not list(store.list("models/"))
    assert client.delete("/api/models/gone").status_code == 404
    shipped = client.delete("/api/models/nuclei-rf")
    assert shipped.status_code == 422
    assert "shipped" in shipped.json()["fields"]["name"]


def test_the_canvas_is_the_field_itself_when_small(client: TestClient, demo: LocalStore) -> None:
    response = client.get(f"/api/models/canvas/{EXPERIMENT}/P1_A01_1/w1.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-field-shape"] == "128x128"
    assert read_image(response.content, "canvas.png").shape == (128, 128)
    missing = client.get(f"/api/models/canvas/{EXPERIMENT}/P1_A01_1/w9.png")
    assert missing.status_code == 404


def test_training_stores_a_model_and_previews_it(
    trained: dict[str, Any], store: LocalStore
) -> None:
    truth = get_json(store, f"truth/{EXPERIMENT}/counts.json")["fields"]
    assert trained["model"]["name"] == "demo-nuclei"
    assert trained["model"]["kind"] == "pixel-features"
    assert store.exists("models/demo-nuclei.onnx")
    assert trained["labelled"]["nucleus"] > 1000 and trained["labelled"]["background"] > 1000
    assert [p["image_id"] for p in trained["previews"]] == TRAIN_FIELDS
    for preview in trained["previews"]:
        assert abs(preview["object_count"] - truth[preview["image_id"]]) <= 1
        assert preview["overlay"].startswith("data:image/png;base64,")
    provenance = get_json(store, "models/demo-nuclei.json")
    assert provenance["origin"] == "trained"
    assert provenance["image_ids"] == TRAIN_FIELDS
    assert provenance["preview_objects"] == {
        p["image_id"]: p["object_count"] for p in trained["previews"]
    }
    assert trained["use_url"] == (
        f"/experiments/{EXPERIMENT}/new-run?segmenter=trainable&model=demo-nuclei&nuclei=w1"
    )


def test_a_run_with_the_trained_model_finds_the_nuclei(
    client: TestClient, app: FastAPI, trained: dict[str, Any], store: LocalStore
) -> None:
    recipe = trained["recipe"]
    response = client.post("/api/runs", json={"experiment_id": EXPERIMENT, "recipe": recipe})
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    final = app.state.plateseg.backend.manager.wait(run_id, timeout=240)
    assert final.status == "SUCCEEDED", final
    images = client.get(f"/api/runs/{run_id}/images").json()
    truth = get_json(store, f"truth/{EXPERIMENT}/counts.json")["fields"]
    ok = [i for i in images if i["status"] == "ok" and not i["image_id"].startswith("P1_C03")]
    assert len(ok) == 10
    found = sum(i["object_count"] for i in ok)
    expected = sum(truth[i["image_id"]] for i in ok)
    assert found > 0 and abs(found - expected) <= 0.2 * expected
    runs = client.get(f"/api/experiments/{EXPERIMENT}").json()["runs"]
    assert runs[0]["recipe"]["segmenter"] == "trainable"
    assert runs[0]["recipe"]["params"]["model"] == "demo-nuclei"


def _train(client: TestClient, **changes: Any) -> Any:
    body = {"name": "m", "experiment_id": EXPERIMENT, **changes}
    return client.post("/api/models/train", json=body)


def test_training_errors_name_the_bad_field(
    client: TestClient, scribbled: list[dict[str, Any]], store: LocalStore
) -> None:
    only_nuclei = np.where(np.arange(128 * 128).reshape(128, 128) % 7 == 0, 2, 0)
    one_class = [{**scribbled[0], "rle": rle(only_nuclei)}]
    cases = {
        "scribbles": _train(client, fields=one_class),
        "name": _train(client, name="no/slash", fields=scribbled),
        "channel": _train(client, channel="w7", fields=scribbled),
        "fields": _train(client, fields=[{**scribbled[0], "image_id": "P1_H12_9"}]),
    }
    short = _train(client, fields=[{**scribbled[0], "rle": [1, 100, 2, 5]}])
    huge = {**scribbled[0], "height": 8192, "width": 8192, "rle": [0, 8192 * 8192]}
    cases["scribbles"] = _train(client, fields=[huge])
    assert "fits neither" in cases["scribbles"].json()["fields"]["scribbles"]
    cases["scribbles"] = _train(client, fields=one_class)
    for field, response in {**cases, "scribbles (short)": short}.items():
        assert response.status_code == 422, (field, response.text)
        assert field.split()[0] in response.json()["fields"], (field, response.json())
    assert "background" in cases["scribbles"].json()["fields"]["scribbles"]
    assert "cover 105 pixels" in short.json()["fields"]["scribbles"]
    assert "w7" in cases["channel"].json()["fields"]["channel"]
    assert not list(store.list("models/"))


def test_training_refuses_oversized_or_malformed_requests(
    client: TestClient, scribbled: list[dict[str, Any]]
) -> None:
    assert _train(client, fields=scribbled * 2).status_code == 422  # at most 3 fields
    assert _train(client, fields=[]).status_code == 422
    assert _train(client, fields=scribbled, trees=1000).status_code == 422
    assert _train(client, fields=[{**scribbled[0], "rle": [1, 128 * 128, 3]}]).status_code == 422


def test_a_taken_name_is_kept_unless_replace(
    client: TestClient, trained: dict[str, Any], scribbled: list[dict[str, Any]]
) -> None:
    again = _train(client, name="demo-nuclei", fields=scribbled)
    assert again.status_code == 422
    assert "already exists" in again.json()["fields"]["name"]
    replaced = _train(client, name="demo-nuclei", fields=scribbled[:1], replace=True)
    assert replaced.status_code == 201
    assert replaced.json()["model"]["provenance"]["image_ids"] == TRAIN_FIELDS[:1]


def test_a_second_training_meanwhile_gets_503(
    client: TestClient, app: FastAPI, scribbled: list[dict[str, Any]]
) -> None:
    lock = app.state.plateseg.extras.setdefault("models.training", threading.Lock())
    with lock:
        response = _train(client, fields=scribbled)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_cookie_sessions_need_the_csrf_token_to_train(
    app: FastAPI, anonymous: TestClient, scribbled: list[dict[str, Any]]
) -> None:
    anonymous.get(f"/?token={TOKEN}")
    body = {"name": "m", "experiment_id": EXPERIMENT, "fields": scribbled}
    assert anonymous.post("/api/models/train", json=body).status_code == 403
    csrf = app.state.plateseg.guard.csrf_token(anonymous.cookies["plateseg_session"])
    accepted = anonymous.post("/api/models/train", json=body, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 201


def test_the_models_page_offers_the_trainer(client: TestClient, trained: dict[str, Any]) -> None:
    page = client.get("/models")
    assert page.status_code == 200
    assert "Fine-tune the base model" in page.text  # the default method
    assert "Train a pixel classifier" in page.text
    assert f'<option value="{EXPERIMENT}" selected>' in page.text
    listed = json.loads(page.text.split('id="models-data">')[1].split("</script>")[0])
    assert [m["name"] for m in listed] == ["demo-nuclei", "nuclei-rf", "nuclei-unet"]
    assert 'href="/models"' in client.get("/").text  # the nav link


def test_the_new_run_page_preselects_a_trained_model(
    client: TestClient, trained: dict[str, Any]
) -> None:
    page = client.get(trained["use_url"]).text
    assert '<option value="trainable" selected>' in page
    assert '<option value="demo-nuclei" selected>' in page
    assert 'data-param="probability"' in page
    assert 'data-param="min_diameter"' in page
    assert '<option value="w1" selected>' in page
    default = client.get(f"/experiments/{EXPERIMENT}/new-run").text
    assert '<option value="onnx" selected>' in default
    assert '<option value="nuclei-unet" selected>' in default  # the shipped learned model
    classical = client.get(f"/experiments/{EXPERIMENT}/new-run?segmenter=classical").text
    assert '<option value="classical" selected>' in classical
    assert 'data-param="model"' not in classical
    assert client.get(f"/experiments/{EXPERIMENT}/new-run?segmenter=bogus").status_code == 422


def test_scribble_masks_decode_and_scale_to_the_field() -> None:
    mask = decode_rle([0, 3, 1, 2, 2, 1], 2, 3, "field 1")
    assert mask.tolist() == [[0, 0, 0], [1, 1, 2]]
    assert canvas_step((2048, 2048)) == 2 and canvas_step((1000, 600)) == 1
    canvas = np.zeros((1024, 1024), np.uint8)
    canvas[0, 0], canvas[-1, -1] = 2, 1
    full = full_resolution(canvas, (2047, 2048), "field 1")
    assert full.shape == (2047, 2048)
    assert (full[:2, :2] == 2).all() and full[2, 2] == 0
    assert (full[-1:, -2:] == 1).all()
    assert full_resolution(mask, (2, 3), "field 1") is mask
    with pytest.raises(ModelError, match="fits neither"):
        full_resolution(np.zeros((10, 10), np.uint8), (2048, 2048), "field 1")
    with pytest.raises(ModelError, match="0, 1 or 2"):
        decode_rle([5, 6], 2, 3, "field 1")
