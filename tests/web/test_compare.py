"""Compare two runs (``/api/compare``, ``/compare``) and the heatmap's ranges and spread.

DEMO-W (6 wells, one corrupt image) is segmented twice: the default recipe (the learned
nuclei model) and the classical segmenter; the comparison must be the two runs' own
heatmap numbers, side by side.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plateseg.demo import write_demo_experiment
from plateseg.store import LocalStore

from .conftest import EXPERIMENT


def _start(client: TestClient, app: FastAPI, body: dict[str, Any]) -> str:
    response = client.post("/api/runs", json=body)
    assert response.status_code == 202, response.text
    run_id = str(response.json()["run_id"])
    final = app.state.plateseg.backend.manager.wait(run_id, timeout=240)
    assert final.status == "SUCCEEDED", final
    return run_id


@pytest.fixture
def classical_run(client: TestClient, app: FastAPI, finished_run: dict[str, Any]) -> str:
    """DEMO-W again, with the classical segmenter (after the default run)."""
    recipe = {"segmenter": "classical", "channels": {"nuclei": "w1"}}
    return _start(client, app, {"experiment_id": EXPERIMENT, "recipe": recipe})


def _values(client: TestClient, run_id: str, metric: str) -> dict[str, float | None]:
    heat = client.get(f"/api/runs/{run_id}/heatmap", params={"metric": metric}).json()
    return {w["well"]: w["value"] for w in heat["wells"]}


def test_two_runs_compared_well_by_well_and_metric_by_metric(
    client: TestClient, finished_run: dict[str, Any], classical_run: str
) -> None:
    a, b = finished_run["run_id"], classical_run
    response = client.get("/api/compare", params={"a": a, "b": b})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["experiment_id"] == EXPERIMENT and data["metric"] == "Count_Nuclei"
    # what each run was, as the run page's panel says it
    assert data["a"]["segmenter"] == "onnx" and data["a"]["model"]["name"] == "nuclei-unet"
    assert data["b"]["segmenter"] == "classical" and data["b"]["model"] is None
    assert data["a"]["run_id"] == a and data["b"]["run_id"] == b
    assert "max_concurrency" in data["a"]["map_settings"]

    # per well: each run's own heatmap values and B - A
    va, vb = _values(client, a, "Count_Nuclei"), _values(client, b, "Count_Nuclei")
    wells = {w["well"]: w for w in data["wells"]}
    assert set(wells) == set(va) == set(vb)
    for name, w in wells.items():
        assert (w["a"], w["b"]) == (va[name], vb[name])
        if w["a"] is not None and w["b"] is not None:
            assert w["diff"] == pytest.approx(w["b"] - w["a"])
    assert wells["A01"]["control"] == "neg" and wells["C03"]["compound"] == "CPD-1"
    diffs = [w["diff"] for w in data["wells"] if w["diff"] is not None]
    assert data["summary"]["n_both"] == len(diffs) == 6
    assert data["summary"]["mean_diff"] == pytest.approx(statistics.mean(diffs))
    assert data["summary"]["diff_limit"] == pytest.approx(max(abs(d) for d in diffs))
    xs = [wells[n]["a"] for n in sorted(wells)]
    ys = [wells[n]["b"] for n in sorted(wells)]
    assert data["summary"]["correlation"] == pytest.approx(float(np.corrcoef(xs, ys)[0, 1]))
    assert data["plates"] == [{"plate": "P1", "rows": 8, "columns": 12}]

    # the wells that changed most: largest |B - A| first, at most 10
    changed = [abs(w["diff"]) for w in data["changed"]]
    assert changed == sorted((abs(d) for d in diffs), reverse=True)[:10]

    # every metric both runs measured: its mean over wells in A and in B
    deltas = {d["metric"]: d for d in data["deltas"]}
    assert "Count_Nuclei" in deltas and "Mean_Nuclei_AreaShape_Area" in deltas
    for metric in ("Count_Nuclei", "Mean_Nuclei_AreaShape_Area"):
        in_a = [v for v in _values(client, a, metric).values() if v is not None]
        in_b = [v for v in _values(client, b, metric).values() if v is not None]
        d = deltas[metric]
        assert d["mean_a"] == pytest.approx(statistics.mean(in_a))
        assert d["mean_b"] == pytest.approx(statistics.mean(in_b))
        assert d["diff"] == pytest.approx(statistics.mean(in_b) - statistics.mean(in_a))
        assert (d["n_a"], d["n_b"]) == (len(in_a), len(in_b))

    # another metric
    area = client.get(
        "/api/compare", params={"a": a, "b": b, "metric": "Mean_Nuclei_AreaShape_Area"}
    ).json()
    assert area["metric"] == "Mean_Nuclei_AreaShape_Area"
    assert "Count_Nuclei" in area["metrics"]


def test_bad_pairs_are_refused_with_what_is_wrong(
    client: TestClient, app: FastAPI, store: LocalStore, finished_run: dict[str, Any]
) -> None:
    a = finished_run["run_id"]
    write_demo_experiment(store, "DEMO-OTHER", size=128, wells=["A01"])
    other = _start(
        client,
        app,
        {"experiment_id": "DEMO-OTHER", "recipe": {"segmenter": "classical"}},
    )
    response = client.get("/api/compare", params={"a": a, "b": other})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert f"experiment '{EXPERIMENT}'" in detail and "experiment 'DEMO-OTHER'" in detail
    page = client.get("/compare", params={"a": a, "b": other}, headers={"Accept": "text/html"})
    assert page.status_code == 422 and "DEMO-OTHER" in page.text

    same = client.get("/api/compare", params={"a": a, "b": a})
    assert same.status_code == 422 and "two different runs" in same.json()["detail"]
    unknown = client.get("/api/compare", params={"a": a, "b": "no-such-run"})
    assert unknown.status_code == 404
    metric = client.get("/api/compare", params={"a": a, "b": other, "metric": "Nope"})
    assert metric.status_code == 422  # the experiments are checked first
    assert client.get("/api/compare", params={"a": a}).status_code == 422
    assert client.get("/api/compare", params={"a": a, "b": "../x"}).status_code == 422


def test_the_compare_page_names_both_runs(
    client: TestClient, finished_run: dict[str, Any], classical_run: str
) -> None:
    a, b = finished_run["run_id"], classical_run
    page = client.get("/compare", params={"a": a, "b": b}, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert a in page.text and b in page.text and f"/experiments/{EXPERIMENT}" in page.text
    experiment = client.get(f"/experiments/{EXPERIMENT}", headers={"Accept": "text/html"})
    assert 'action="/compare"' in experiment.text and 'name="a"' in experiment.text


def test_the_heatmap_has_a_robust_range_and_the_spread_across_fields(
    client: TestClient, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["run_id"]
    heat = client.get(f"/api/runs/{run_id}/heatmap").json()
    values = [w["value"] for w in heat["wells"] if w["value"] is not None]
    assert heat["stat"] == "mean" and heat["percentiles"] == [2.0, 98.0]
    assert (heat["min"], heat["max"]) == (min(values), max(values))
    low, high = np.percentile(values, [2, 98])
    assert (heat["low"], heat["high"]) == pytest.approx((low, high))
    assert heat["plates"]["P1"]["low"] == pytest.approx(low)
    assert all(w["value"] == w["mean"] for w in heat["wells"])

    images = client.get(f"/api/runs/{run_id}/images").json()
    cv = client.get(f"/api/runs/{run_id}/heatmap", params={"stat": "cv"}).json()
    assert cv["stat"] == "cv"
    by_well = {w["well"]: w for w in cv["wells"]}
    for name in ("A01", "B12"):
        counts = [r["object_count"] for r in images if r["well"] == name and r["status"] == "ok"]
        assert len(counts) == 2
        expected = 100 * statistics.stdev(counts) / statistics.mean(counts)
        assert by_well[name]["value"] == pytest.approx(expected)
        assert by_well[name]["n_fields"] == 2
    assert by_well["C03"]["value"] is None  # one field failed: no spread from one field
    assert by_well["C03"]["failed"] == 1 and by_well["C03"]["mean"] is not None
    bad = client.get(f"/api/runs/{run_id}/heatmap", params={"stat": "sd"})
    assert bad.status_code == 422
