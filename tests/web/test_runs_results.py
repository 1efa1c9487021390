"""A run started through the API, its progress, and every view of its results."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import plateseg.runs.embedded
from plateseg.errors import ExecutionFailed
from plateseg.results import export_run, plate_qc
from plateseg.runs.local import LocalRunner as LocalBackend
from plateseg.runs.manager import RunManager
from plateseg.settings import Settings
from plateseg.store import LocalStore

from .conftest import CORRUPT_IMAGE, CORRUPT_KEY, EXPERIMENT, WELLS


def test_run_finishes_and_counts_the_corrupt_image_as_failed(
    client: TestClient, finished_run: dict[str, Any]
) -> None:
    assert finished_run["status"] == "SUCCEEDED"
    assert finished_run["experiment_id"] == EXPERIMENT
    assert (finished_run["succeeded"], finished_run["failed"]) == (11, 1)
    assert finished_run["total"] == 12
    assert finished_run["eta_seconds"] == 0.0
    assert finished_run["can_redrive"] is False  # no Map item (batch) failed: nothing to redrive
    assert finished_run["can_retry"] is True  # but an image failed: a retry segments it again
    run_id = finished_run["run_id"]
    redrive = client.post(f"/api/runs/{run_id}/redrive")
    assert (redrive.status_code, redrive.json()["error"]) == (409, "ResumeError")
    cancel = client.post(f"/api/runs/{run_id}/cancel")
    assert cancel.status_code == 409
    assert "already finished" in cancel.json()["detail"]
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200 and run_id in page.text
    [row] = client.get("/api/experiments").json()
    assert row["latest_run"] == run_id
    assert client.get("/api/runs").json()[0]["run_id"] == run_id


def test_an_experiment_only_the_database_knows_is_listed_with_its_counts(
    client: TestClient, demo: LocalStore, finished_run: dict[str, Any]
) -> None:
    demo.delete_prefix(f"experiments/{EXPERIMENT}/")
    [row] = client.get("/api/experiments").json()
    assert (row["experiment_id"], row["in_store"]) == (EXPERIMENT, False)
    # plateseg.results.list_experiments: imaged wells, fields of the latest run
    assert (row["plates"], row["wells"], row["fields"]) == (1, len(WELLS), 2 * len(WELLS))
    assert (row["runs"], row["latest_run"]) == (1, finished_run["run_id"])
    assert row["latest_status"] == "SUCCEEDED_WITH_FAILURES"  # the corrupt image


def test_results_heatmap_failures_tables_downloads_and_overlays(
    app: FastAPI, client: TestClient, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["run_id"]
    base = f"/api/runs/{run_id}"
    metrics = client.get(f"{base}/metrics").json()
    # nuclei per field is the stored well mean of Count_Nuclei (the web's own
    # "object_count" query is gone); the page labels it "nuclei per field"
    assert metrics[0] == "Count_Nuclei"
    assert "Mean_Nuclei_AreaShape_Area" in metrics
    assert "object_count" not in metrics

    heat = client.get(f"{base}/heatmap").json()
    assert heat["metric"] == "Count_Nuclei"
    values = {w["well"]: w["value"] for w in heat["wells"]}
    assert sorted(values) == sorted(WELLS)  # only imaged wells, not every layout well
    assert heat["min"] == min(values.values()) and heat["max"] == max(values.values())
    assert values["A01"] > values["A12"]  # DMSO keeps its nuclei, staurosporine kills cells
    assert (heat["rows"], heat["columns"]) == (8, 12)
    assert {w["well"]: w["layout"]["control"] for w in heat["wells"]}["A12"] == "pos"
    assert set(heat["z_prime"]) == {"P1"}
    assert {w["well"]: w["failed"] for w in heat["wells"]}["C03"] == 1
    area = client.get(f"{base}/heatmap", params={"metric": "Mean_Nuclei_AreaShape_Area"})
    assert area.status_code == 200
    assert client.get(f"{base}/heatmap", params={"metric": "nope"}).status_code == 404

    [failure] = client.get(f"{base}/failures").json()
    assert failure["item_id"] == CORRUPT_IMAGE
    assert failure["error"] == "ImageReadError"
    assert "P1_C03_s2_w1.tif" in failure["cause"]

    images = client.get(f"{base}/images").json()
    assert len(images) == 12
    assert {r["image_id"]: r["status"] for r in images}[CORRUPT_IMAGE] == "error"

    # downloads are plateseg.results.export_run's bytes (the CLI's --export writes the same)
    engine = app.state.plateseg.engine
    csv_response = client.get(f"{base}/images.csv")
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert f'filename="{run_id}-images.csv"' in csv_response.headers["content-disposition"]
    assert csv_response.content == export_run(engine, run_id, "csv")
    table = {r["image_id"]: r for r in csv.DictReader(io.StringIO(csv_response.text))}
    assert len(table) == 12
    assert {"well", "object_count", "Mean_Nuclei_AreaShape_Area", "control"} <= set(
        table["P1_A01_1"]
    )
    assert table[CORRUPT_IMAGE]["error"] == "ImageReadError"
    assert "P1_C03_s2_w1.tif" in table[CORRUPT_IMAGE]["cause"]
    assert table["P1_A01_1"]["error"] == ""
    wells = {
        r["well"]: r for r in csv.DictReader(io.StringIO(client.get(f"{base}/wells.csv").text))
    }
    assert sorted(wells) == sorted(WELLS)
    assert (wells["C03"]["n_failed"], wells["A01"]["n_failed"]) == ("1", "0")
    assert wells["A12"]["control"] == "pos" and "Count_Nuclei" in wells["A01"]
    parquet = pq.read_table(io.BytesIO(client.get(f"{base}/images.parquet").content))
    assert parquet.num_rows == 12
    assert {"object_count", "error", "cause"} <= set(parquet.column_names)
    objects = pq.read_table(io.BytesIO(client.get(f"{base}/objects.parquet").content))
    assert objects.num_rows == sum(r["object_count"] for r in images)
    assert {"image_id", "AreaShape_Area", "control"} <= set(objects.column_names)

    # one field: outlines and per-object tips
    base = f"/api/runs/{finished_run['run_id']}/images/P1_A01_1"
    overlay = client.get(f"{base}/overlay.png")
    assert overlay.status_code == 200
    assert overlay.content[:4] == b"\x89PNG"
    tips = client.get(f"{base}/objects").json()
    assert (tips["height"], tips["width"]) == (128, 128)
    images = client.get(f"/api/runs/{finished_run['run_id']}/images").json()
    count = {r["image_id"]: r["object_count"] for r in images}["P1_A01_1"]
    assert len(tips["objects"]) == count
    assert all(o["area"] > 0 and o["mean_intensity"] > 0 for o in tips["objects"])
    failed = client.get(f"/api/runs/{finished_run['run_id']}/images/{CORRUPT_IMAGE}/overlay.png")
    assert failed.status_code == 404


def test_an_overlay_is_drawn_in_the_display_range_asked_for(
    client: TestClient, finished_run: dict[str, Any]
) -> None:
    """The viewer's per-channel contrast: ``low``/``high`` percentiles, bounded, 422 else."""
    url = f"/api/runs/{finished_run['run_id']}/images/P1_A01_1/overlay.png"
    default = client.get(url)
    assert default.status_code == 200
    same = client.get(url, params={"low": 0.5, "high": 99.8})
    assert same.content == default.content
    for outlines in ("true", "false"):
        plain = client.get(url, params={"outlines": outlines, "channel": "w2"}).content
        bright = client.get(
            url, params={"outlines": outlines, "channel": "w2", "low": 5, "high": 80}
        )
        assert bright.status_code == 200 and bright.content[:4] == b"\x89PNG"
        assert bright.content != plain
    for low, high, words in [
        (50, 20, "the low percentile (50) must be at least 0.1 below the high one (20)"),
        (10, 10, "must be at least 0.1 below"),
        (-1, 99, "greater than or equal to 0"),
        (1, 101, "less than or equal to 100"),
        ("nan", 99, "less than or equal to 100"),
        ("dark", 99, "valid number"),
    ]:
        bad = client.get(url, params={"low": low, "high": high})
        assert bad.status_code == 422, (low, high, bad.text)
        assert words in bad.text, (low, high, bad.text)
    checked_first = client.get(url.replace("P1_A01_1", "P1_NOPE_1"), params={"low": 60, "high": 50})
    assert checked_first.status_code == 422 and "0.1 below" in checked_first.text


def test_heatmap_z_prime_is_the_one_stored_in_plate_qc(
    app: FastAPI, client: TestClient, finished_run: dict[str, Any]
) -> None:
    # The database is the product surface: the heatmap shows the plate_qc row written at
    # aggregation, which uses the sample standard deviation (ddof=1, Zhang et al. 1999)
    # over the control wells' means.
    run_id = finished_run["run_id"]
    heat = client.get(f"/api/runs/{run_id}/heatmap", params={"metric": "Count_Nuclei"}).json()
    by_role = {
        role: np.array([w["value"] for w in heat["wells"] if w["layout"]["control"] == role])
        for role in ("pos", "neg")
    }
    pos, neg = by_role["pos"], by_role["neg"]
    expected = 1 - 3 * (pos.std(ddof=1) + neg.std(ddof=1)) / abs(pos.mean() - neg.mean())
    assert heat["z_prime"]["P1"] == pytest.approx(expected)
    [stored] = plate_qc(app.state.plateseg.engine, run_id, "Count_Nuclei")
    assert heat["z_prime"] == {"P1": stored.z_prime}


def test_starting_a_run_validates_before_anything_runs(client: TestClient) -> None:
    assert client.post("/api/runs", json={"experiment_id": "../x"}).status_code == 422
    assert client.post("/api/runs", json={"experiment_id": "NOPE"}).status_code == 404
    bad = client.post(
        "/api/runs", json={"experiment_id": "NOPE", "recipe": {"params": {"declump": "maybe"}}}
    )
    assert bad.status_code == 422
    assert "declump" in bad.json()["fields"]


def test_unknown_run_is_404(client: TestClient) -> None:
    assert client.get("/api/runs/never-ran").status_code == 404
    assert client.get("/api/runs/never-ran/heatmap").status_code == 404


def test_redrive_is_refused_clearly_while_the_runner_lacks_it(
    app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(plateseg.runs.embedded, "redrive_local", raising=False)
    response = client.post("/api/runs/some-run/redrive")
    assert response.status_code in (404, 409)
    backend = app.state.plateseg.backend  # admission control wraps the local backend
    assert isinstance(backend.inner, LocalBackend)
    assert not backend.supports_redrive()


def test_redrive_uses_the_runner_once_it_offers_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(experiment_id: str, **kwargs: Any) -> None:
        raise ExecutionFailed("States.ExceedToleratedFailureThreshold", "3 batches failed", "r1")

    calls: list[tuple[str, dict[str, Any]]] = []

    def redrive_local(run_id: str, **kwargs: Any) -> None:
        calls.append((run_id, kwargs))

    backend = LocalBackend(settings, manager=RunManager(settings, runner=failing))
    backend.start("EXP-1", "r1", {})
    failed = backend.manager.wait("r1", timeout=30)
    assert (failed.status, failed.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    monkeypatch.setattr(plateseg.runs.embedded, "redrive_local", redrive_local, raising=False)
    assert backend.progress("r1").can_redrive is True
    backend.redrive("r1")
    assert backend.manager.wait("r1", timeout=30).status == "SUCCEEDED"
    assert [c[0] for c in calls] == ["r1"]
    assert {"listener", "settings"} <= set(calls[0][1])


def _rows(client: TestClient, run_id: str) -> dict[str, dict[str, Any]]:
    images = client.get(f"/api/runs/{run_id}/images").json()
    assert len(images) == len({row["image_id"] for row in images})  # no duplicates
    return {row["image_id"]: row for row in images}


def test_retry_after_replacing_the_corrupt_file_clears_the_failure(
    app: FastAPI, client: TestClient, demo: LocalStore, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["run_id"]
    before = _rows(client, run_id)
    assert before[CORRUPT_IMAGE]["status"] == "error"
    reused_mask = demo.root / "runs" / run_id / "masks" / "P1_A01_1.tif"
    stamp = reused_mask.stat().st_mtime_ns

    # the scientist replaces the corrupt file with a readable one, then retries
    demo.put_bytes(CORRUPT_KEY, demo.get_bytes(CORRUPT_KEY.replace("_s2_", "_s1_")))
    started = client.post(f"/api/runs/{run_id}/retry")
    assert started.status_code == 202, started.text
    assert (started.json()["run_id"], started.json()["status"]) == (run_id, "RUNNING")
    final = app.state.plateseg.backend.manager.wait(run_id, timeout=240)
    assert final.status == "SUCCEEDED", final
    assert (final.succeeded, final.failed, final.can_retry) == (12, 0, False)

    after = _rows(client, run_id)
    assert after[CORRUPT_IMAGE]["status"] == "ok" and after[CORRUPT_IMAGE]["error"] is None
    assert client.get(f"/api/runs/{run_id}/failures").json() == []
    for image_id, row in before.items():  # every other image: the very same row
        if image_id != CORRUPT_IMAGE:
            assert after[image_id] == row
    # P1_A01_1's batch fully succeeded the first time: reused, its mask not rewritten
    assert reused_mask.stat().st_mtime_ns == stamp
    progress = client.get(f"/api/runs/{run_id}").json()
    assert (progress["status"], progress["failed"], progress["can_retry"]) == (
        "SUCCEEDED",
        0,
        False,
    )
    heat = client.get(f"/api/runs/{run_id}/heatmap").json()
    assert {w["well"]: w["failed"] for w in heat["wells"]}["C03"] == 0
    # nothing failed any more: a second retry is refused clearly
    again = client.post(f"/api/runs/{run_id}/retry")
    assert (again.status_code, again.json()["error"]) == (409, "ResumeError")
    assert "nothing to retry" in again.json()["detail"]


def test_retry_of_an_unknown_run_is_404(client: TestClient) -> None:
    assert client.post("/api/runs/never-ran/retry").status_code == 404


def test_the_run_says_what_it_was(client: TestClient, finished_run: dict[str, Any]) -> None:
    import hashlib

    import plateseg
    from plateseg.segmentation.onnx_model import read_model_bytes

    details = client.get(f"/api/runs/{finished_run['run_id']}/details").json()
    assert details["segmenter"] == "onnx"
    shipped = hashlib.sha256(read_model_bytes("nuclei-unet", None)).hexdigest()
    assert details["model"] == {"name": "nuclei-unet", "sha256": shipped, "card": None}
    assert "model" not in details["params"] and "model_sha256" not in details["params"]
    assert details["channels"]["nuclei"] and details["engine"] == "local"
    assert details["batch_size"] and details["max_concurrency"]
    assert details["images_ok"] + details["images_failed"] == finished_run["total"]
    # the start named no convention: Lookup detected it; who and which plateseg are kept
    assert (details["naming"], details["naming_detected"]) == ("imagexpress", True)
    assert details["started_by"] == "token holder"
    assert details["code_version"] == plateseg.__version__
    assert client.get("/api/runs/no-such-run/details").status_code == 404
