"""The well drill-down on the run page, in a real browser (issue 16 item 6).

DEMO-W (6 wells x 2 fields x 2 channels of 128 px) is segmented. The scientist clicks a
well on the heatmap: the viewer shows every field of the well as a montage with outlines,
lets her pick the channel (w1 nuclei, w2 cells), turn the outlines off, and open one field
large (and come back to the well), and set each channel's contrast (the percentiles drawn
black and white; the served PNG changes). On a phone the viewer is below the heatmap: clicking a
well scrolls it into view, and the montage does not make the page scroll sideways.

Screenshot: ``test-artifacts/well-drilldown.png`` (copied to ``docs/images/``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect

from .browser import ARTIFACTS, chromium, served
from .conftest import TOKEN

LOADED = "imgs => imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _open(browser: Browser, url: str, run_id: str, width: int, height: int) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{url}/?token={TOKEN}")
    page.goto(f"{url}/runs/{run_id}")
    expect(page.locator("body[data-results-ready=true]")).to_be_attached()
    return page


def _sources(page: Page) -> list[str]:
    page.wait_for_function(
        f"() => ({LOADED})([...document.querySelectorAll('#viewer .montage img')])"
    )
    return page.locator("#viewer .montage img").evaluate_all("imgs => imgs.map(i => i.src)")


def test_a_well_opens_as_a_montage_of_its_fields(
    app: FastAPI, browser: Browser, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["run_id"]
    with served(app) as url:
        page = _open(browser, url, run_id, 1440, 960)
        page.locator('#heatmap .well[data-well="A01"]').click()

        # ---- every field of the well, one tile each, outlines on the nuclei channel
        tiles = page.locator("#viewer .montage .tile-open")
        expect(tiles).to_have_count(2)
        expect(page.locator("#viewer-title")).to_contain_text("P1 A01 · 2 fields")
        expect(page.locator("#viewer .montage figcaption").first).to_contain_text("field 1")
        first = _sources(page)
        assert all("channel=w1" in s and "outlines" not in s for s in first), first

        # ---- the channel toggle: the run's channels, the tiles redrawn in the other one
        channel = page.locator("#viewer-channel")
        expect(channel.locator("option")).to_have_text(["w1 (nuclei)", "w2 (cells)"])
        channel.select_option("w2")
        expect(page.locator("#viewer .montage img").first).to_have_attribute(
            "src", re.compile(r"channel=w2")
        )
        second = _sources(page)
        assert [s.replace("channel=w2", "channel=w1") for s in second] == first

        # ---- outlines off: the same fields, plain
        page.locator("#viewer-outlines").uncheck()
        expect(page.locator("#viewer .montage img").first).to_have_attribute(
            "src", re.compile(r"outlines=false")
        )
        plain = _sources(page)
        assert all("channel=w2" in s and "outlines=false" in s for s in plain), plain
        page.locator("#viewer-outlines").check()
        page.locator("#viewer-channel").select_option("w1")
        _sources(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#results .split").screenshot(path=str(ARTIFACTS / "well-drilldown.png"))

        # ---- contrast per channel: a lower white point redraws the tiles brighter
        before = _sources(page)
        assert all("low=" not in s and "high=" not in s for s in before), before
        expect(page.locator("#viewer-contrast legend")).to_have_text("Contrast of w1 (percentiles)")
        high = page.locator("#contrast-high")
        expect(high).to_have_value("99.8")
        high.fill("90")
        expect(page.locator("#viewer .montage img").first).to_have_attribute(
            "src", re.compile(r"low=0\.5&high=90$")
        )
        expect(page.locator("#contrast-high-value")).to_have_text("90")
        brighter = _sources(page)
        assert [s.replace("&low=0.5&high=90", "") for s in brighter] == before
        plain_png, bright_png = page.request.get(before[0]), page.request.get(brighter[0])
        assert plain_png.ok and bright_png.ok
        assert plain_png.body() != bright_png.body(), "the served PNG did not change"
        # the keyboard moves the focused slider; the focus stays on it
        high.press("ArrowLeft")
        expect(page.locator("#viewer .montage img").first).to_have_attribute(
            "src", re.compile(r"high=89\.9$")
        )
        expect(high).to_be_focused()
        # each channel keeps its own contrast
        page.locator("#viewer-channel").select_option("w2")
        expect(page.locator("#viewer-contrast legend")).to_have_text("Contrast of w2 (percentiles)")
        expect(page.locator("#contrast-high")).to_have_value("99.8")
        assert all("high=" not in s for s in _sources(page))
        page.locator("#viewer-channel").select_option("w1")
        expect(page.locator("#contrast-high")).to_have_value("89.9")
        _sources(page)
        page.locator("#results .viewer").screenshot(path=str(ARTIFACTS / "drilldown-contrast.png"))
        page.locator("#contrast-reset").click()
        expect(page.locator("#contrast-high")).to_have_value("99.8")
        assert _sources(page) == before

        # ---- zoom: a tile opens its field large, with tooltips; back to the well
        tiles.nth(1).click()
        large = page.locator("#viewer img#overlay.zoomed")
        expect(large).to_have_attribute("src", re.compile(r"/images/P1_A01_2/overlay\.png"))
        page.wait_for_function("() => document.querySelector('#overlay').naturalWidth > 0")
        expect(page.locator("#viewer-title")).to_contain_text("P1_A01_2")
        assert (large.bounding_box() or {"width": 0})["width"] > 300
        page.locator("#viewer-back").click()
        expect(page.locator("#viewer .montage .tile-open")).to_have_count(2)

        # ---- a well with a failed field shows it as failed, beside the good one
        page.locator('#heatmap .well[data-well="C03"]').click()
        expect(page.locator("#viewer .montage .tile-open")).to_have_count(1)
        expect(page.locator("#viewer .montage .tile.failed")).to_contain_text("failed")
        page.context.close()


def test_on_a_phone_the_viewer_scrolls_into_view(
    app: FastAPI, browser: Browser, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["run_id"]
    with served(app) as url:
        page = _open(browser, url, run_id, 390, 844)
        below = "() => document.querySelector('#viewer').getBoundingClientRect().top > innerHeight"
        assert page.evaluate(below), "the viewer starts below the heatmap on a phone"
        page.locator('#heatmap .well[data-well="B12"]').click()
        expect(page.locator("#viewer .montage .tile-open")).to_have_count(2)
        _sources(page)
        page.wait_for_function(
            "() => { const r = document.querySelector('#viewer').getBoundingClientRect();"
            " return r.top >= 0 && r.top < innerHeight; }"
        )
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the drill-down scrolls sideways: {width} px wide"
        page.context.close()
