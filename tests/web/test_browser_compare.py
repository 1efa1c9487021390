"""Compare two runs in a real browser (Debian's Chromium + Playwright), issue 16 item 1.

The scientist segments the demo plate twice, with the learned nuclei model (the default
recipe) and with the classical segmenter, picks the two runs in the experiment's runs
table and compares them: what each run was side by side, a per-well scatter of run A
against run B with the identity line, the difference heatmap (B - A, diverging colours,
a labelled colour bar), every metric's mean in both runs, and the ten wells that changed
most. Every number is checked against ``/api/compare`` and the runs' own heatmaps.

Screenshot: ``test-artifacts/compare-runs.png`` (copied to ``docs/images/``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

import plateseg
from plateseg.demo import write_demo_experiment
from plateseg.store import LocalStore

from .browser import chromium, screenshot, served
from .conftest import TOKEN

DEMO = "DEMO-CMP"


def _run(client: TestClient, app: FastAPI, recipe: dict[str, Any] | None) -> str:
    body: dict[str, Any] = {"experiment_id": DEMO}
    if recipe is not None:
        body["recipe"] = recipe
    response = client.post("/api/runs", json=body)
    assert response.status_code == 202, response.text
    run = str(response.json()["run_id"])
    final = app.state.plateseg.backend.manager.wait(run, timeout=600)
    assert final.status == "SUCCEEDED", final
    return run


@pytest.fixture
def runs(client: TestClient, app: FastAPI, store: LocalStore) -> tuple[str, str]:
    """The 96-well demo plate (fields of 256 px) segmented by the default recipe (the
    learned model), then by the classical segmenter."""
    write_demo_experiment(store, DEMO, size=256)
    learned = _run(client, app, None)
    classical = _run(client, app, {"segmenter": "classical", "channels": {"nuclei": "w1"}})
    return learned, classical


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        yield _page(browser)


def _page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 1440, "height": 960})
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def number(text: str) -> float:
    """The signed number in ``text`` (a minus sign or hyphen, a plus, thousands commas)."""
    match = re.search(r"([+\u2212-]?)([0-9][0-9,]*(?:\.[0-9]+)?)", text)
    assert match, text
    value = float(match.group(2).replace(",", ""))
    return -value if match.group(1) in ("\u2212", "-") else value


def test_the_scientist_compares_the_learned_model_with_the_classical_segmenter(
    app: FastAPI, client: TestClient, page: Page, runs: tuple[str, str]
) -> None:
    learned, classical = runs
    with served(app) as url:
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/experiments/{DEMO}")
        # newest run is B, the one before it A: pick them (the defaults) and compare
        expect(page.locator(f'#runs-table input[name="a"][value="{learned}"]')).to_be_checked()
        expect(page.locator(f'#runs-table input[name="b"][value="{classical}"]')).to_be_checked()
        expect(page.locator(f'#runs-table tr[data-run="{classical}"]')).to_contain_text("classical")
        page.locator("#compare-button").click()
        expect(page).to_have_url(re.compile(r"/compare\?"))
        query = dict(part.split("=") for part in page.url.split("?", 1)[1].split("&"))
        assert query == {"a": learned, "b": classical}
        expect(page.locator("body[data-compare-ready=true]")).to_be_attached()
        data = client.get("/api/compare", params={"a": learned, "b": classical}).json()

        # ---- what each run was, side by side; what differs is marked
        what = page.locator("#compare-what")
        segmenter = what.locator('tr[data-row="Segmenter"]')
        expect(segmenter.locator("td").nth(0)).to_have_text("onnx")
        expect(segmenter.locator("td").nth(1)).to_have_text("classical")
        expect(segmenter).to_have_class("differs")
        expect(what.locator('tr[data-row="Model"] td').nth(0)).to_contain_text("nuclei-unet")
        expect(what.locator('tr[data-row="Model"] td').nth(1)).to_have_text("none")
        expect(what.locator('tr[data-row="Engine"]')).not_to_have_class("differs")
        expect(what.locator('tr[data-row="Map settings"] td').nth(0)).to_contain_text(
            "max_concurrency="
        )
        # how the files were read, who started each run and with which plateseg
        expect(what.locator('tr[data-row="File naming"] td').nth(0)).to_have_text(
            "imagexpress (detected from the file names)"
        )
        expect(what.locator('tr[data-row="plateseg version"] td').nth(1)).to_have_text(
            plateseg.__version__
        )

        # ---- scatter: one point per well with both values, the identity line
        scatter = page.locator("#scatter svg")
        points = scatter.locator("circle.pt")
        expect(points).to_have_count(data["summary"]["n_both"])
        assert data["summary"]["n_both"] == 96
        expect(scatter.locator("line.identity")).to_have_count(1)
        expect(scatter.locator("circle.pt.changed")).to_have_count(10)
        a01 = next(w for w in data["wells"] if w["well"] == "A01")
        title = scatter.locator('circle[data-well="A01"] title').text_content() or ""
        assert title.startswith("A01: A ") and "B \u2212 A" in title
        assert number(title.removeprefix("A01: A ")) == pytest.approx(a01["a"], rel=5e-3)
        # B above the identity line where B > A: cy < the identity's y at that x
        box = page.eval_on_selector(
            "#scatter line.identity",
            "l => [l.x1.baseVal.value, l.y1.baseVal.value, l.x2.baseVal.value, l.y2.baseVal.value]",
        )
        for w in data["changed"][:3]:
            cx, cy = page.eval_on_selector(
                f'#scatter circle[data-well="{w["well"]}"]',
                "c => [c.cx.baseVal.value, c.cy.baseVal.value]",
            )
            on_line = box[1] + (cx - box[0]) * (box[3] - box[1]) / (box[2] - box[0])
            assert (cy < on_line) == (w["diff"] > 0), (w, cy, on_line)
        expect(page.locator("#scatter-note")).to_contain_text("Pearson r")
        expect(page.locator("#scatter-note")).to_contain_text(
            f"{data['summary']['correlation']:.3f}"
        )

        # ---- difference heatmap: B - A, red up, blue down, a labelled diverging bar
        diff = page.locator("#diff-heatmap .well[data-diff]")
        expect(diff).to_have_count(96)
        up = max(data["wells"], key=lambda w: w["diff"])
        down = min(data["wells"], key=lambda w: w["diff"])
        for w, redder in ((up, True), (down, False)):
            rgb = page.eval_on_selector(
                f'#diff-heatmap .well[data-well="{w["well"]}"]',
                "e => getComputedStyle(e).backgroundColor",
            )
            r, _, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
            if w["diff"] != 0:
                assert (r > b) == redder == (w["diff"] > 0), (w, rgb)
        bar = page.locator("#diff-bar")
        expect(bar.locator(".cb-label")).to_have_text("B \u2212 A \u00b7 Nuclei count")
        expect(bar.locator(".cb-label")).to_have_attribute("title", re.compile("Count_Nuclei"))
        limit = data["summary"]["diff_limit"]
        ticks = bar.locator(".cb-ticks span").all_inner_texts()
        assert number(ticks[0]) == pytest.approx(-limit, rel=5e-3)
        assert number(ticks[2]) == pytest.approx(limit, rel=5e-3)
        expect(page.locator("#diff-legend")).to_contain_text("no value in A or B")

        # ---- every metric's mean in both runs and the difference
        deltas = {d["metric"]: d for d in data["deltas"]}
        row = page.locator('#deltas tr[data-metric="Count_Nuclei"]')
        expect(row.locator("td").first).to_have_text("Nuclei count")
        expect(row.locator("td").first).to_have_attribute("title", re.compile("Count_Nuclei"))
        cells = row.locator("td").all_inner_texts()
        assert number(cells[1]) == pytest.approx(deltas["Count_Nuclei"]["mean_a"], rel=5e-3)
        assert number(cells[2]) == pytest.approx(deltas["Count_Nuclei"]["mean_b"], rel=5e-3)
        assert number(cells[3]) == pytest.approx(deltas["Count_Nuclei"]["diff"], rel=5e-3)
        area = page.locator('#deltas tr[data-metric="Mean_Nuclei_AreaShape_Area"] td').first
        expect(area).to_have_text("Mean nuclear area (px\u00b2)")

        # ---- the ten wells that changed most, largest |B - A| first
        changed = page.locator("#changed tbody tr")
        expect(changed).to_have_count(10)
        assert [r.get_attribute("data-well") for r in changed.all()] == [
            w["well"] for w in data["changed"]
        ]
        shown = [
            abs(number(t)) for t in page.locator('#changed td[data-col="diff"]').all_inner_texts()
        ]
        assert shown == sorted(shown, reverse=True)
        assert shown[0] == pytest.approx(abs(data["changed"][0]["diff"]), rel=5e-3)
        screenshot(page, "compare-runs")

        # ---- another metric: the page follows
        page.locator("#compare-metric").select_option("Mean_Nuclei_AreaShape_Area")
        expect(page).to_have_url(re.compile("metric=Mean_Nuclei_AreaShape_Area"))
        expect(page.locator("body[data-compare-ready=true]")).to_be_attached()
        expect(page.locator("#diff-bar .cb-label")).to_contain_text("Mean nuclear area (px\u00b2)")
        expect(page.locator("#changed-metric")).to_contain_text("Mean nuclear area")

        # ---- swap: A becomes B
        page.locator("#swap").click()
        expect(page).to_have_url(re.compile(rf"a={classical}&b={learned}"))
        expect(page.locator("body[data-compare-ready=true]")).to_be_attached()
        expect(page.locator('#compare-what tr[data-row="Segmenter"] td').first).to_have_text(
            "classical"
        )
