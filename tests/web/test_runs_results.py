"""A run started through the API, its progress, and every view of its results."""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import plateseg.runner
from plateseg.errors import ExecutionFailed
from plateseg.settings import Settings
from plateseg.web.backends import LocalBackend
from plateseg.web.runs import RunManager

from .conftest import CORRUPT_IMAGE, EXPERIMENT, WELLS


def test_run_finishes_and_counts_the_corrupt_image_as_failed(
    client: TestClient, finished_run: dict[str, Any]
) -> None:
    assert finished_run["status"] == "SUCCEEDED"
    assert finished_run["experiment_id"] == EXPERIMENT
    assert (finished_run["succeeded"], finished_run["failed"]) == (11, 1)
    assert finished_run["total"] == 12
    assert finished_run["eta_seconds"] == 0.0
    assert finished_run["can_redrive"] is False  # a corrupt file is not fixed by re-running it
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


def test_results_heatmap_failures_tables_downloads_and_overlays(
    client: TestClient, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["run_id"]
    base = f"/api/runs/{run_id}"
    metrics = client.get(f"{base}/metrics").json()
    assert metrics[0] == "object_count"
    assert "Mean_Nuclei_AreaShape_Area" in metrics

    heat = client.get(f"{base}/heatmap", params={"metric": "object_count"}).json()
    values = {w["well"]: w["value"] for w in heat["wells"]}
    assert sorted(values) == sorted(WELLS)
    assert heat["min"] == min(values.values()) and heat["max"] == max(values.values())
    assert values["A01"] > values["A12"]  # DMSO keeps its nuclei, staurosporine kills cells
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

    table = list(csv.DictReader(io.StringIO(client.get(f"{base}/images.csv").text)))
    assert len(table) == 12
    assert {"image_id", "well", "object_count", "Mean_Nuclei_AreaShape_Area"} <= set(table[0])
    wells = list(csv.DictReader(io.StringIO(client.get(f"{base}/wells.csv").text)))
    assert sorted(row["well"] for row in wells) == sorted(WELLS)
    parquet = pq.read_table(io.BytesIO(client.get(f"{base}/images.parquet").content))
    assert parquet.num_rows == 12
    assert "object_count" in parquet.column_names

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
    monkeypatch.delattr(plateseg.runner, "redrive_local", raising=False)
    response = client.post("/api/runs/some-run/redrive")
    assert response.status_code in (404, 409)
    assert isinstance(app.state.plateseg.backend, LocalBackend)
    assert not app.state.plateseg.backend.supports_redrive()


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
    monkeypatch.setattr(plateseg.runner, "redrive_local", redrive_local, raising=False)
    assert backend.progress("r1").can_redrive is True
    backend.redrive("r1")
    assert backend.manager.wait("r1", timeout=30).status == "SUCCEEDED"
    assert [c[0] for c in calls] == ["r1"]
    assert {"listener", "settings"} <= set(calls[0][1])
