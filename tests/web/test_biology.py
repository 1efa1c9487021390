"""The biology API of a run: Z' per plate with its evidence, dose-response fits and their
CSV. DEMO-W has two controls of each kind and two CPD-1 wells (too few for a fit); a
hand-made dilution series checks a fit that succeeds."""

from __future__ import annotations

import csv
import io
import math
import statistics
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plateseg.pipeline.aggregate import aggregate_run
from plateseg.results import plate_qc
from plateseg.results.dose_export import CSV_COLUMNS
from plateseg.results.dose_response import four_pl
from plateseg.store import LocalStore
from tests.db.runs import MapResults, ok, write_layout


def test_plate_qc_shows_z_prime_with_its_evidence(
    app: FastAPI, client: TestClient, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["run_id"]
    qc = client.get(f"/api/runs/{run_id}/plate-qc").json()
    assert qc["metric"] == "Count_Nuclei"
    assert "sample standard deviation" in qc["sigma"] and "Zhang" in qc["sigma"]
    assert [b["band"] for b in qc["bands"]] == ["excellent", "marginal", "unusable"]
    [plate] = qc["plates"]
    assert (plate["plate"], plate["n_pos"], plate["n_neg"]) == ("P1", 2, 2)
    heat = client.get(f"/api/runs/{run_id}/heatmap").json()
    values = {
        role: [w["value"] for w in heat["wells"] if w["layout"]["control"] == role]
        for role in ("pos", "neg")
    }
    assert plate["mean_pos"] == pytest.approx(statistics.mean(values["pos"]))
    assert plate["std_pos"] == pytest.approx(statistics.stdev(values["pos"]))
    assert plate["std_neg"] == pytest.approx(statistics.stdev(values["neg"]))
    spread = abs(plate["mean_pos"] - plate["mean_neg"])
    expected = 1 - 3 * (plate["std_pos"] + plate["std_neg"]) / spread
    assert plate["z_prime"] == pytest.approx(expected)
    assert plate["band"] == (
        "excellent" if expected >= 0.5 else "marginal" if expected >= 0 else "unusable"
    )
    [stored] = plate_qc(app.state.plateseg.engine, run_id, "Count_Nuclei")
    assert plate["z_prime"] == stored.z_prime == heat["z_prime"]["P1"]


def test_plate_qc_of_an_unknown_run_is_404(client: TestClient) -> None:
    assert client.get("/api/runs/NOPE-1/plate-qc").status_code == 404


def test_a_compound_with_too_few_wells_shows_why_and_no_ic50(
    client: TestClient, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["run_id"]
    data = client.get(f"/api/runs/{run_id}/dose-response").json()
    [cpd] = data["compounds"]  # C03 and D05: CPD-1 at two concentrations; controls left out
    assert (cpd["compound"], cpd["status"]) == ("CPD-1", "failed")
    assert cpd["reason"].startswith("too few points: 2 wells at 2 concentrations")
    assert cpd["x50"] is cpd["ci_low"] is cpd["hill_slope"] is cpd["top"] is None
    assert cpd["curve"] == []
    assert sorted(p["well"] for p in cpd["points"]) == ["C03", "D05"]
    text = client.get(f"/api/runs/{run_id}/dose-response.csv").text
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert (row["compound"], row["status"], row["x50"]) == ("CPD-1", "failed", "")
    missing = client.get(f"/api/runs/{run_id}/dose-response", params={"metric": "Nope"})
    assert missing.status_code == 404 and "Count_Nuclei" in missing.json()["detail"]


#: CPD-A falls with IC50 2 (8-point half-log series, 3 replicates); CPD-B is flat.
SERIES = [10.0 ** (k / 2 - 2) for k in range(8)]
ROWS = "ABC"


def series_layout() -> str:
    lines = ["well,compound,concentration,control", "H01,DMSO,0,neg", "H12,stauro,1,pos"]
    for r, row in enumerate(ROWS + "DEF"):
        compound = "CPD-A" if r < 3 else "CPD-B"
        lines += [f"{row}{k + 2:02d},{compound},{c:g}," for k, c in enumerate(SERIES)]
    return "\n".join(lines) + "\n"


def series_run(run_id: str, experiment_id: str) -> MapResults:
    results = MapResults(run_id=run_id, experiment_id=experiment_id)
    wiggle = [1.5, -2.0, 0.5]
    items = [ok("P1", "H01", 1, 70, 100.0), ok("P1", "H12", 1, 25, 100.0)]
    for r, row in enumerate(ROWS + "DEF"):
        for k, c in enumerate(SERIES):
            falling = four_pl(math.log10(c), 70.0, 25.0, math.log10(2.0), 1.0)
            y = float(falling) if r < 3 else 50.0
            count = round(y + wiggle[(r + k) % 3])
            items.append(ok("P1", f"{row}{k + 2:02d}", 1, count, 100.0))
    results.add_ok(items)
    return results


@pytest.fixture
def series(app: FastAPI, store: LocalStore) -> str:
    """A run with a dilution series aggregated straight into the app's database."""
    write_layout(store, "EXP-DR", series_layout())
    aggregate_run(series_run("run-dr", "EXP-DR").write(store), store, app.state.plateseg.engine)
    return "run-dr"


def test_a_dilution_series_is_fitted_and_exported(client: TestClient, series: str) -> None:
    data = client.get(f"/api/runs/{series}/dose-response").json()
    assert [c["compound"] for c in data["compounds"]] == ["CPD-A", "CPD-B"]
    fit, flat = data["compounds"]
    assert (fit["status"], fit["kind"], fit["n_wells"], fit["n_concentrations"]) == (
        "ok",
        "IC50",
        24,
        8,
    )
    assert fit["x50"] == pytest.approx(2.0, rel=0.2)
    assert fit["ci_low"] < 2.0 < fit["ci_high"]
    assert fit["hill_slope"] < 0 and fit["top"] > fit["bottom"]
    assert len(fit["curve"]) > 10 and len(fit["points"]) == 24
    assert flat["status"] == "failed" and flat["reason"].startswith("no dose response")
    assert flat["x50"] is None

    response = client.get(f"/api/runs/{series}/dose-response.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="{series}-dose-response.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["metric", *CSV_COLUMNS]
    assert [r["compound"] for r in rows] == ["CPD-A", "CPD-B"]
    assert float(rows[0]["x50"]) == pytest.approx(fit["x50"])
    assert rows[1]["x50"] == "" and rows[1]["reason"] == flat["reason"]
