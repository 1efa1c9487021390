"""The run page's heatmap read at a glance, in a real browser (issue 16 item 3).

The demo plate (96 wells, fields of 256 px) is segmented with one image of C03
unreadable (a well with a failed field) and both of F06's (a well with no value). The
scientist reads the heatmap: a colour bar labelled with the metric's name in words and
its unit (the CellProfiler name in a tooltip), a colour range from the 2nd to the 98th
percentile (or lowest to highest), controls outlined as on the plate page, failed and
empty wells with a legend, values printed on the wells at a click, and the spread of
each well across its fields (CV).

Screenshot: ``test-artifacts/heatmap-legend.png`` (copied to ``docs/images/``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from plateseg.demo import write_demo_experiment
from plateseg.store import LocalStore

from .browser import ARTIFACTS, chromium, served
from .conftest import TOKEN

DEMO = "DEMO-HEAT"
BROKEN = b"II*\x00 this is not a TIFF any more"


@pytest.fixture
def run_id(client: TestClient, app: FastAPI, store: LocalStore) -> str:
    write_demo_experiment(store, DEMO, size=256)
    for key in ("P1_C03_s2_w1", "P1_F06_s1_w1", "P1_F06_s2_w1"):
        store.put_bytes(f"experiments/{DEMO}/P1/{key}.tif", BROKEN)
    response = client.post("/api/runs", json={"experiment_id": DEMO})
    assert response.status_code == 202, response.text
    run = str(response.json()["run_id"])
    final = app.state.plateseg.backend.manager.wait(run, timeout=600)
    assert final.status == "SUCCEEDED", final
    return run


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1440, "height": 960})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()


def _bar(page: Page) -> tuple[float, float]:
    bar = page.locator("#colourbars .colourbar")
    return float(bar.get_attribute("data-low") or "nan"), float(
        bar.get_attribute("data-high") or "nan"
    )


def test_the_heatmap_says_what_it_shows(
    app: FastAPI, client: TestClient, page: Page, run_id: str
) -> None:
    heat = client.get(f"/api/runs/{run_id}/heatmap").json()
    values = [w["value"] for w in heat["wells"] if w["value"] is not None]
    with served(app) as url:
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/runs/{run_id}")
        expect(page.locator("body[data-results-ready=true]")).to_be_attached()

        # ---- metric names in words, the CellProfiler name in a tooltip
        option = page.locator('#metric option[value="Mean_Nuclei_AreaShape_Area"]')
        expect(option).to_have_text("Mean nuclear area (px\u00b2)")
        expect(option).to_have_attribute("title", "CellProfiler name: Mean_Nuclei_AreaShape_Area")
        expect(page.locator('#metric option[value="Count_Nuclei"]')).to_have_text("Nuclei count")

        # ---- the colour bar: labelled, 2nd to 98th percentile by default
        label = page.locator("#colourbars .cb-label")
        expect(label).to_have_text("Nuclei count")
        expect(label).to_have_attribute("title", re.compile(r"Count_Nuclei .*nuclei per field"))
        low, high = np.percentile(values, [2, 98])
        assert _bar(page) == pytest.approx((low, high))
        assert (heat["low"], heat["high"]) == pytest.approx((low, high))
        note = page.locator("#colourbars .cb-note")
        expect(note).to_contain_text("2nd to 98th percentile")
        below = sum(v < low for v in values)
        above = sum(v > high for v in values)
        expect(note).to_contain_text(f"{below} below and {above} above are drawn at the ends")
        # a well above the range has the top colour and says so
        top = max(heat["wells"], key=lambda w: w["value"] or -1)
        cell = page.locator(f'#heatmap .well[data-well="{top["well"]}"]')
        expect(cell).to_have_attribute("title", re.compile("above the colour range"))
        page.locator("#heat-range").select_option("full")
        assert _bar(page) == pytest.approx((min(values), max(values)))
        expect(note).to_contain_text("lowest to the highest well")
        page.locator("#heat-range").select_option("robust")

        # ---- controls outlined as on the plate page; failed and empty wells; legend
        neg = page.locator('#heatmap .well[data-well="A01"]')
        pos = page.locator('#heatmap .well[data-well="A12"]')
        expect(neg).to_have_class(re.compile(r"\bctl-neg\b"))
        expect(pos).to_have_class(re.compile(r"\bctl-pos\b"))
        for well in (neg, pos):
            assert well.evaluate("e => getComputedStyle(e).boxShadow") != "none"
        c03 = page.locator('#heatmap .well[data-well="C03"]')
        expect(c03).to_have_class(re.compile(r"\bfailed\b"))
        expect(c03).to_have_attribute("title", re.compile("1 failed"))
        f06 = page.locator('#heatmap .well[data-well="F06"]')
        expect(f06).to_have_class(re.compile(r"\bnodata\b"))
        expect(f06).to_have_attribute("title", re.compile("every field failed · 2 failed"))
        legend = page.locator("#heat-legend")
        for words in (
            "negative control",
            "positive control",
            "fields failed",
            "no value",
            "not in this run",
        ):
            expect(legend).to_contain_text(words)
        assert legend.locator(".sw.failed").evaluate(
            "e => getComputedStyle(e, '::after').backgroundColor"
        ) == page.evaluate(
            "getComputedStyle(document.querySelector('#heatmap .well.failed'), '::after')"
            ".backgroundColor"
        )

        # ---- values on the wells, at a click
        b05 = page.locator('#heatmap .well[data-well="B05"] .v')
        expect(b05).to_be_hidden()
        page.locator("#heat-values").check()
        expect(b05).to_be_visible()
        b05_value = next(w["value"] for w in heat["wells"] if w["well"] == "B05")
        assert float(b05.inner_text().replace(",", "")) == pytest.approx(b05_value, rel=0.01)
        dark = page.locator("#heatmap .well.on-dark .v").first
        assert dark.evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
        card = page.locator("#heatmap").locator("xpath=ancestor::section[1]")
        card.scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        card.screenshot(path=str(ARTIFACTS / "heatmap-legend.png"))

        # ---- another metric: the bar names it with its unit
        page.locator("#metric").select_option("Mean_Nuclei_AreaShape_Area")
        expect(label).to_have_text("Mean nuclear area (px\u00b2)")

        # ---- spread across fields: CV in percent, from the fields' sample SD
        cv = client.get(f"/api/runs/{run_id}/heatmap", params={"stat": "cv"}).json()
        page.locator("#metric").select_option("Count_Nuclei")
        page.locator("#heat-stat").select_option("cv")
        expect(label).to_have_text("Spread of nuclei count across fields: CV (%)")
        b05_cv = next(w["value"] for w in cv["wells"] if w["well"] == "B05")
        expect(page.locator('#heatmap .well[data-well="B05"]')).to_have_attribute(
            "data-value", str(b05_cv)
        )
        expect(page.locator('#heatmap .well[data-well="B05"]')).to_have_attribute(
            "title", re.compile(r"CV [0-9.]+ %")
        )
        expect(c03).to_have_attribute("title", re.compile("no spread from 1 field"))
        cv_values = [w["value"] for w in cv["wells"] if w["value"] is not None]
        assert _bar(page) == pytest.approx(tuple(np.percentile(cv_values, [2, 98])))
