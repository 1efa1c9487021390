"""The biology of a finished demo run in a real browser (Debian's Chromium + Playwright).

The demo plate (``make run``'s: 96 wells, 2 fields of 512 px) holds DMSO and
staurosporine controls and two compounds in a 10-point 3-fold dilution series whose
nuclei counts fall along a 4PL with a known IC50 (:data:`plateseg.demo.COMPOUNDS`). The
scientist opens the finished run and reads:

* **Assay quality**: Z' per plate with the number of positive and negative control
  wells, their means and sample SDs, the sigma definition, the band that colours it, and
  the metric it refers to;
* **Dose-response**: each compound's IC50 with its 95 % CI (within 20 % of the truth),
  the curve with per-well points, the table sorted by potency and re-sorted by a click,
  and the fits as CSV.

Screenshots: ``test-artifacts/zprime-evidence.png`` and ``dose-response.png`` (copied to
``docs/images/`` for docs/web.md) and ``biology-run.png`` (the whole page).
"""

from __future__ import annotations

import csv
import re
import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from plateseg.demo import DemoTruth, write_demo_experiment
from plateseg.results.summaries import z_prime_band
from plateseg.store import LocalStore

from .browser import ARTIFACTS, chromium, screenshot, served
from .conftest import TOKEN

DEMO = "DEMO-DR"


@pytest.fixture
def truth(store: LocalStore) -> DemoTruth:
    return write_demo_experiment(store, DEMO)


@pytest.fixture
def run_id(client: TestClient, app: FastAPI, truth: DemoTruth) -> str:
    """The demo plate segmented by the default recipe (about 20 s on 2 cores)."""
    response = client.post("/api/runs", json={"experiment_id": DEMO})
    assert response.status_code == 202, response.text
    run = response.json()["run_id"]
    final = app.state.plateseg.backend.manager.wait(run, timeout=600)
    assert final.status == "SUCCEEDED", final
    return str(run)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 960}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def number(text: str) -> float:
    """The first number in ``text`` (thousands separators allowed)."""
    match = re.search(r"-?[0-9][0-9,]*(?:\.[0-9]+)?", text)
    assert match, text
    return float(match.group(0).replace(",", ""))


def test_z_prime_and_dose_response_of_the_demo_plate(
    app: FastAPI, client: TestClient, page: Page, run_id: str, truth: DemoTruth
) -> None:
    with served(app) as url:
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/runs/{run_id}")
        expect(page.locator("body[data-results-ready=true]")).to_be_attached()

        # ---- Z' with its evidence, for the metric the heatmap shows (nuclei per field)
        card = page.locator("#zprime-card")
        expect(card).to_be_visible()
        expect(page.locator("#zprime-metric")).to_contain_text("Nuclei count (Count_Nuclei)")
        heat = client.get(f"/api/runs/{run_id}/heatmap").json()
        controls = {
            role: [w["value"] for w in heat["wells"] if w["layout"]["control"] == role]
            for role in ("pos", "neg")
        }
        plate = card.locator('.qc[data-plate="P1"]')
        rows = {
            plate.locator("tbody tr").nth(i).locator("th").inner_text(): [
                number(cell)
                for cell in plate.locator("tbody tr").nth(i).locator("td").all_inner_texts()
            ]
            for i in range(2)
        }
        for label, role in (("Positive", "pos"), ("Negative", "neg")):
            n, mean, sd = rows[label]
            assert n == len(controls[role]) == 8
            assert mean == pytest.approx(statistics.mean(controls[role]), rel=5e-3)
            assert sd == pytest.approx(statistics.stdev(controls[role]), rel=5e-3)  # sample SD
        mean_p, mean_n = statistics.mean(controls["pos"]), statistics.mean(controls["neg"])
        sd_p, sd_n = statistics.stdev(controls["pos"]), statistics.stdev(controls["neg"])
        z = 1 - 3 * (sd_p + sd_n) / abs(mean_p - mean_n)
        badge = plate.locator(".qc-z")
        expect(badge).to_have_text(f"Z\u2032 {z:.2f}")
        band = z_prime_band(z)
        assert band is not None
        expect(badge).to_have_attribute("data-band", band)
        expect(plate.locator(".qc-head .qc-band")).to_have_text(band)
        assert page.eval_on_selector(
            '.qc[data-plate="P1"] .qc-z', "e => getComputedStyle(e).backgroundColor"
        ) != page.eval_on_selector("#zprime-card", "e => getComputedStyle(e).backgroundColor")
        method = page.locator("#zprime-method")
        expect(method).to_contain_text("sample standard deviation (n \u2212 1)")
        expect(method).to_contain_text("Zhang, Chung & Oldenburg 1999")
        expect(method).to_contain_text("excellent \u2265 0.5")
        card.scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        card.screenshot(path=str(ARTIFACTS / "zprime-evidence.png"))

        # ---- dose-response: most potent first, IC50 within 20 % of the demo's truth
        dose = page.locator("#dose-card")
        expect(dose).to_be_visible()
        table = dose.locator("#dose-table tbody tr")
        expect(table).to_have_count(2)
        assert [r.get_attribute("data-compound") for r in table.all()] == ["CPD-1", "CPD-2"]
        fitted: dict[str, float] = {}
        for name, known in truth.compounds.items():
            row = dose.locator(f'#dose-table tr[data-compound="{name}"]')
            cell = row.locator('td[data-col="x50"]').inner_text()
            assert cell.startswith("IC50 "), cell
            fitted[name] = number(cell.removeprefix("IC50 "))
            assert fitted[name] == pytest.approx(known["ic50"], rel=0.2), (name, fitted, known)
            low, high = (
                number(t) for t in row.locator('td[data-col="ci"]').inner_text().split("\u2013")
            )
            assert low < fitted[name] < high
            assert number(row.locator('td[data-col="hill_slope"]').inner_text()) < 0
        chart = dose.locator("#dose-chart svg")
        expect(chart.locator("path.curve")).to_have_count(1)
        expect(chart.locator(".chart-title")).to_contain_text("CPD-1 · IC50")
        shown = chart.locator("circle.point").count() + chart.locator("path.point.out").count()
        assert shown == 40  # every CPD-1 well: fitted points and the ones left out, marked

        # sort by potency, descending then ascending again; aria-sort follows
        header = dose.locator('#dose-table th[data-key="x50"]')
        expect(header).to_have_attribute("aria-sort", "ascending")
        header.click()
        expect(header).to_have_attribute("aria-sort", "descending")
        assert [r.get_attribute("data-compound") for r in table.all()] == ["CPD-2", "CPD-1"]
        header.press("Enter")
        expect(header).to_have_attribute("aria-sort", "ascending")
        assert [r.get_attribute("data-compound") for r in table.all()] == ["CPD-1", "CPD-2"]

        # pick CPD-2: its curve; then back to the most potent for the picture
        dose.locator('#dose-table tr[data-compound="CPD-2"]').click()
        expect(chart.locator(".chart-title")).to_contain_text("CPD-2 · IC50")
        dose.locator('#dose-table tr[data-compound="CPD-1"]').click()
        expect(chart.locator(".chart-title")).to_contain_text("CPD-1 · IC50")
        dose.scroll_into_view_if_needed()
        dose.screenshot(path=str(ARTIFACTS / "dose-response.png"))

        # the fits as CSV: the numbers the table shows
        with page.expect_download() as info:
            dose.locator("#dl-dose-csv").click()
        download = info.value
        assert download.suggested_filename == f"{run_id}-dose-response.csv"
        path = download.path()
        with open(path, newline="") as handle:
            fits: list[dict[str, Any]] = list(csv.DictReader(handle))
        assert [r["compound"] for r in fits] == ["CPD-1", "CPD-2"]
        for r in fits:
            known = truth.compounds[r["compound"]]
            assert (r["metric"], r["status"], r["kind"]) == ("Count_Nuclei", "ok", "IC50")
            assert float(r["x50"]) == pytest.approx(known["ic50"], rel=0.2)
            assert float(r["x50"]) == pytest.approx(fitted[r["compound"]], rel=5e-3)
            assert float(r["ci95_low"]) < float(r["x50"]) < float(r["ci95_high"])
        screenshot(page, "biology-run")


def test_a_compound_that_cannot_be_fitted_shows_why_and_no_number(
    app: FastAPI, page: Page, finished_run: dict[str, Any]
) -> None:
    # DEMO-W images two CPD-1 wells (C03, D05): too few for a 4PL
    with served(app) as url:
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/runs/{finished_run['run_id']}")
        expect(page.locator("body[data-results-ready=true]")).to_be_attached()
        row = page.locator('#dose-table tr[data-compound="CPD-1"]')
        expect(row.locator('td[data-col="x50"]')).to_have_text("\u2013")
        expect(row.locator('td[data-col="reason"]')).to_contain_text(
            "too few points: 2 wells at 2 concentrations"
        )
        expect(row.locator('td[data-col="hill_slope"]')).to_have_count(0)
        chart = page.locator("#dose-chart")
        expect(chart.locator("path.curve")).to_have_count(0)
        expect(chart.locator(".chart-title")).to_have_text("CPD-1 \u00b7 no fit")
        expect(chart.locator("figcaption")).to_contain_text("No IC50/EC50: too few points")
        assert chart.locator("circle.point").count() == 2
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#dose-card").screenshot(path=str(ARTIFACTS / "dose-response-failed.png"))
