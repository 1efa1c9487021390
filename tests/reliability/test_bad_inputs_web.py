"""Bad input through the web API: a JSON error with a clear message, never a traceback.

Run-level bad input is refused when the run is started (422 with the bad field named,
404 when the experiment has no images); what only Lookup can see (duplicates, a broken
layout) ends the started run as FAILED with the error's name and cause in the progress
JSON; per-image errors are listed by ``/api/runs/{id}/failures`` naming file and problem.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from plateseg.demo import write_demo_experiment
from plateseg.store import LocalStore

pytestmark = pytest.mark.xdist_group("bad_inputs")

EXPERIMENT = "BAD-WEB"


@pytest.fixture
def experiment(store: LocalStore) -> LocalStore:
    """BAD-WEB: two good fields (A01, A12; 64 px, w1 and w2) and the demo layout."""
    write_demo_experiment(store, EXPERIMENT, size=64, fields=1, wells=["A01", "A12"])
    return store


def json_error(response: Any, status: int) -> dict[str, Any]:
    """Assert a JSON error response with ``status`` and no traceback; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text and 'File "' not in response.text
    body: dict[str, Any] = response.json()
    return body


def finish(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    """Start a run with ``body``, wait for its thread, return its final progress JSON."""
    started = client.post("/api/runs", json=body)
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    client.app.state.plateseg.backend.manager.wait(run_id, timeout=240)  # type: ignore[attr-defined]
    progress = client.get(f"/api/runs/{run_id}")
    assert progress.status_code == 200
    result: dict[str, Any] = progress.json()
    return result


@pytest.mark.parametrize(
    ("experiment_id", "words"),
    [
        ("../etc", "it contains a path separator"),
        ("EXP*", "it contains a wildcard"),
        ("a%2Fb", "it contains '%'"),
        ("x" * 300, "experiment_id"),
    ],
    ids=["dot-dot-slash", "wildcard", "url-encoded-slash", "300-characters"],
)
def test_unsafe_experiment_id_is_a_422(
    web_client: TestClient, experiment_id: str, words: str
) -> None:
    body = json_error(web_client.post("/api/runs", json={"experiment_id": experiment_id}), 422)
    assert words in str(body["detail"])


@pytest.mark.parametrize(
    ("experiment_id", "status", "words"),
    [
        ("EXP*", 422, "it contains a wildcard"),
        ("a..b", 422, "it contains '..'"),
        ("x" * 300, 422, "experiment_id"),
        ("a%2Fb", 404, "Not Found"),  # decoded to a/b: no such route
    ],
    ids=["wildcard", "dot-dot", "300-characters", "url-encoded-slash"],
)
def test_unsafe_experiment_id_in_a_path_is_a_json_error(
    web_client: TestClient, experiment_id: str, status: int, words: str
) -> None:
    body = json_error(web_client.get(f"/api/experiments/{experiment_id}"), status)
    assert words in str(body["detail"])


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{oops", "json_invalid"),
        ("[]", "valid dictionary"),
        ('{"experiment": "BAD-WEB"}', "experiment_id"),
        ('{"experiment_id": "BAD-WEB", "recipe": {"segmenter": "classical", "x": 1}}', "x"),
    ],
    ids=["not-json", "not-an-object", "misnamed-field", "unknown-recipe-field"],
)
def test_malformed_run_request_is_a_422(web_client: TestClient, content: str, words: str) -> None:
    response = web_client.post(
        "/api/runs", content=content, headers={"content-type": "application/json"}
    )
    assert words in str(json_error(response, 422)["detail"])


@pytest.mark.parametrize(
    ("recipe", "field", "words"),
    [
        ({"segmenter": "magic"}, None, "unknown segmenter 'magic'"),
        ({"params": {"min_diameter": 0.5}}, "min_diameter", "greater than 1"),
        ({"params": {"min_diameter": 40, "max_diameter": 20}}, None, "must be >= min_diameter"),
    ],
    ids=["unknown-segmenter", "below-range", "max-below-min"],
)
def test_bad_recipe_is_a_422_naming_the_parameter(
    web_client: TestClient,
    experiment: LocalStore,
    recipe: dict[str, Any],
    field: str | None,
    words: str,
) -> None:
    body = json_error(
        web_client.post("/api/runs", json={"experiment_id": EXPERIMENT, "recipe": recipe}), 422
    )
    assert body["error"] == "RecipeError" and words in body["detail"]
    if field is not None:
        assert words in body["fields"][field]
    assert not list(experiment.list("runs/"))


def test_experiment_with_no_images_is_a_404(web_client: TestClient, store: LocalStore) -> None:
    store.put_bytes("experiments/BAD-NONE/notes.txt", b"no images here")
    body = json_error(web_client.post("/api/runs", json={"experiment_id": "BAD-NONE"}), 404)
    assert body == {
        "detail": "experiment 'BAD-NONE' has no images in the store",
        "error": "NotFoundError",
    }


@pytest.mark.parametrize(
    ("bad_file", "data", "words"),
    [
        (
            "P1/again/P1_A01_s1_w1.tif",
            None,
            "has 1 duplicate image (same plate, well, field and channel)",
        ),
        ("layout.csv", b"well,control\nA01,neg\nA1x,pos\n", "line 3, column 'well': 'A1x'"),
    ],
    ids=["duplicate-field", "layout-with-unknown-well"],
)
def test_what_lookup_refuses_ends_the_run_failed_with_its_cause(
    web_client: TestClient, experiment: LocalStore, bad_file: str, data: bytes | None, words: str
) -> None:
    source = f"experiments/{EXPERIMENT}/P1/P1_A01_s1_w1.tif"
    experiment.put_bytes(
        f"experiments/{EXPERIMENT}/{bad_file}", data or experiment.get_bytes(source)
    )
    progress = finish(web_client, {"experiment_id": EXPERIMENT})
    assert progress["status"] == "FAILED"
    assert progress["error"] == "InputError"
    assert words in progress["cause"] and "Traceback" not in progress["cause"]
    assert not list(experiment.list(f"runs/{progress['run_id']}/masks/"))


def test_per_image_errors_are_listed_with_file_and_problem(
    web_client: TestClient, experiment: LocalStore
) -> None:
    bad = f"experiments/{EXPERIMENT}/P1/P1_B02_s1_w1.tif"
    experiment.put_bytes(bad, b"")
    experiment.put_bytes(
        f"experiments/{EXPERIMENT}/P1/P1_B02_s1_w2.tif",
        experiment.get_bytes(f"experiments/{EXPERIMENT}/P1/P1_A01_s1_w2.tif"),
    )
    progress = finish(web_client, {"experiment_id": EXPERIMENT})
    assert progress["status"] == "SUCCEEDED"
    run_id = progress["run_id"]
    failures = web_client.get(f"/api/runs/{run_id}/failures").json()
    assert failures == [
        {
            "item_id": "P1_B02_1",
            "kind": "image",
            "batch": None,
            "error": "ImageReadError",
            "cause": f"{bad}: the file is empty (0 bytes)",
            "attempts": None,
        }
    ]
    images = {row["image_id"]: row for row in web_client.get(f"/api/runs/{run_id}/images").json()}
    assert {images[i]["status"] for i in ("P1_A01_1", "P1_A12_1")} == {"ok"}
