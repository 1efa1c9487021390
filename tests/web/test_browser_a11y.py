"""Any screen, any user (issue 16 item 9), in a real browser (Debian's Chromium + Playwright).

One demo plate (96 wells, fields of 128 px) is segmented three times: a clean run, a run
with unreadable images (succeeded, some failed) and a run cancelled at once. Then every
page is checked:

* **axe-core** (pinned in package.json, ``npm ci``; injected into the page) reports no
  serious or critical violation on the experiments, experiment, new run, run (finished,
  with failures, cancelled), models, compare and sign-in pages;
* at **390 x 844** (a phone) the page never scrolls sideways: plates and wide tables
  scroll inside their own box; at 1280 x 800 the top bar and the page heads stay on one
  line;
* the images table sorts from the keyboard and says how with ``aria-sort``; arrow keys
  move between the wells of the heatmap and of the plate map; a polite live region
  says what the run's status is; every page has a favicon.

Screenshots: ``test-artifacts/mobile-run.png`` and ``mobile-experiment.png`` (copied to
``docs/images/`` for docs/web.md), and ``laptop-<page>.png`` at 1280 x 800.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from plateseg.demo import write_demo_experiment
from plateseg.settings import Settings, use_settings
from plateseg.store import LocalStore
from plateseg.web import WebSettings, create_app

from .browser import ARTIFACTS, chromium, screenshot, served
from .conftest import TOKEN

pytestmark = pytest.mark.xdist_group("a11y")

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
DEMO = "DEMO-A11Y"
BROKEN = b"II*\x00 this is not a TIFF any more"
#: Unreadable in the second run: one field of C03, both of F06.
UNREADABLE = ("P1_C03_s2_w1", "P1_F06_s1_w1", "P1_F06_s2_w1")
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


class Site:
    """The served app and the runs every test reads."""

    def __init__(self, url: str, ok: str, partial: str, cancelled: str) -> None:
        self.url, self.ok, self.partial, self.cancelled = url, ok, partial, cancelled


def _start(client: TestClient) -> str:
    response = client.post("/api/runs", json={"experiment_id": DEMO})
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The three runs of the demo plate, once for the module (about 20 s on 2 cores)."""
    settings = Settings(home=tmp_path_factory.mktemp("a11y") / "home", time_scale=0.0, workers=2)
    use_settings(settings)
    try:
        store = LocalStore(settings.store_location)
        write_demo_experiment(store, DEMO, size=128)
        app: FastAPI = create_app(settings, WebSettings(web_token=TOKEN, web_secret="s" * 32))
        with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            manager = app.state.plateseg.backend.manager
            ok = _start(client)
            assert manager.wait(ok, timeout=600).status == "SUCCEEDED"
            for key in UNREADABLE:
                store.put_bytes(f"experiments/{DEMO}/P1/{key}.tif", BROKEN)
            partial = _start(client)
            assert manager.wait(partial, timeout=600).status == "SUCCEEDED"
            cancelled = _start(client)
            assert client.post(f"/api/runs/{cancelled}/cancel").status_code == 200
            assert manager.wait(cancelled, timeout=600).status == "ABORTED"
            with served(app) as url:
                yield Site(url, ok, partial, cancelled)
    finally:
        use_settings(None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _context(browser: Browser, site: Site, viewport: ViewportSize) -> BrowserContext:
    # bypass_csp: axe-core is injected as an inline script, which the app's CSP forbids
    context = browser.new_context(viewport=viewport, bypass_csp=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{site.url}/?token={TOKEN}")  # the session cookie
    page.close()
    return context


@pytest.fixture(scope="module")
def desktop(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    context = _context(browser, site, DESKTOP)
    yield context
    context.close()


@pytest.fixture(scope="module")
def phone(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    context = _context(browser, site, PHONE)
    yield context
    context.close()


#: name -> (path, what shows the page is drawn); the run ids are filled in from the site
PAGES: dict[str, tuple[str, str]] = {
    "experiments": ("/", "#experiments"),
    "experiment": (f"/experiments/{DEMO}", "#runs-table"),
    "new-run": (f"/experiments/{DEMO}/new-run", "#recipe-form"),
    "run-finished": ("/runs/{ok}", "body[data-results-ready=true]"),
    "run-with-failures": ("/runs/{partial}", "body[data-results-ready=true]"),
    "run-cancelled": ("/runs/{cancelled}", "#st-eta:text('done')"),
    "models": ("/models", "#trainer"),
    "compare": ("/compare?a={ok}&b={partial}", "body[data-compare-ready=true]"),
}


def _open(context: BrowserContext, site: Site, name: str) -> Page:
    path, ready = PAGES[name]
    page = context.new_page()
    page.goto(site.url + path.format(ok=site.ok, partial=site.partial, cancelled=site.cancelled))
    page.wait_for_selector(ready, state="attached")
    page.wait_for_load_state("networkidle")
    return page


#: The elements that reach furthest right (outermost first), to say what makes a page wide.
WIDEST = """() => [...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .slice(0, 8)
  .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${[...e.classList].join(".")}`
    + ` ${Math.round(e.getBoundingClientRect().right)}px`)"""


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    assert AXE.exists(), f"{AXE} is missing: run `npm ci` (make test does)"
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
          const result = await axe.run(document, { resultTypes: ["violations"] });
          return result.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                           targets: v.nodes.map((n) => n.target.join(" ")),
                           summary: v.nodes[0].failureSummary }));
        }"""
    )
    return found


def _report(found: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['impact']} {v['id']} ({v['help']}) on {len(v['targets'])}: "
        f"{', '.join(v['targets'][:6])}\n    {v['summary']}"
        for v in found
    )


@pytest.mark.parametrize("name", list(PAGES))
def test_axe_finds_no_serious_violation(desktop: BrowserContext, site: Site, name: str) -> None:
    page = _open(desktop, site, name)
    if name == "experiment":  # the well panel's layout and thumbnails too
        page.locator('.plate .well[data-well="A01"]').click()
        expect(page.locator("#well-layout dt").first).to_be_visible()
    if name in ("run-finished", "run-with-failures"):  # an image in the viewer, values on wells
        page.locator('#heatmap .well[data-well="A01"]').click()
        expect(page.locator("#overlay")).to_be_visible()
        page.locator("#heat-values").check()
    found = serious_violations(page)
    page.close()
    assert not found, f"{name}:\n{_report(found)}"


def test_the_sign_in_page(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)  # no session
    page = context.new_page()
    page.goto(f"{site.url}/login")
    expect(page.locator("#secret")).to_be_visible()
    found = serious_violations(page)
    page.set_viewport_size(PHONE)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    context.close()
    assert not found, f"login:\n{_report(found)}"
    assert width <= PHONE["width"], f"login scrolls sideways on a phone: {width} px wide"


@pytest.mark.parametrize("name", list(PAGES))
def test_no_sideways_scroll_on_a_phone(phone: BrowserContext, site: Site, name: str) -> None:
    page = _open(phone, site, name)
    if name == "run-finished":
        page.locator("#heat-values").check()  # wider wells: the plate scrolls in its box
    width = page.evaluate("() => document.documentElement.scrollWidth")
    wide = page.evaluate(WIDEST)
    if name == "experiment" or name == "run-with-failures":
        ARTIFACTS.mkdir(exist_ok=True)
        shot = "mobile-experiment" if name == "experiment" else "mobile-run"
        page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    page.close()
    assert width <= PHONE["width"], f"{name} scrolls sideways: {width} px wide; {wide}"


def test_no_awkward_wraps_on_a_laptop(desktop: BrowserContext, site: Site) -> None:
    for name in PAGES:
        page = _open(desktop, site, name)
        bar = page.locator(".topbar").bounding_box()
        head = page.locator(".pagehead h1").bounding_box()
        assert bar is not None and bar["height"] <= 48, (name, bar)  # one line
        assert head is not None and head["height"] <= 32, (name, head)  # the title on one line
        assert page.evaluate("() => document.documentElement.scrollWidth") <= DESKTOP["width"]
        screenshot(page, f"laptop-{name}")
        page.close()


def test_the_images_table_sorts_from_the_keyboard(desktop: BrowserContext, site: Site) -> None:
    page = _open(desktop, site, "run-with-failures")
    header = page.locator('#images th[data-key="object_count"]')
    expect(page.locator('#images th[data-key="image_id"]')).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(header).to_have_attribute("aria-sort", "none")
    # reachable with Tab from the filter box before the table
    page.locator("#image-filter").focus()
    for _ in range(3):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.dataset.key") == "image_id":
            break
    assert page.evaluate("() => document.activeElement.dataset.key") == "image_id"
    header.focus()
    page.keyboard.press("Enter")
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator('#images th[data-key="image_id"]')).to_have_attribute("aria-sort", "none")
    counts = page.locator('#images tbody td[data-col="object_count"]').all_inner_texts()
    numbers = [int(c.replace(",", "")) for c in counts if c != "\u2013"]
    assert numbers == sorted(numbers) and counts[-1] == "\u2013"  # failed images last
    page.keyboard.press(" ")
    expect(header).to_have_attribute("aria-sort", "descending")
    counts = page.locator('#images tbody td[data-col="object_count"]').all_inner_texts()
    numbers = [int(c.replace(",", "")) for c in counts if c != "\u2013"]
    assert numbers == sorted(numbers, reverse=True)
    page.close()


def test_arrow_keys_move_between_wells(desktop: BrowserContext, site: Site) -> None:
    page = _open(desktop, site, "run-finished")
    focused = "() => document.activeElement.dataset.well || null"
    wells = page.locator("#heatmap .well[data-well]")
    # one tab stop for the plate, not 96
    expect(page.locator('#heatmap .well[tabindex="0"]')).to_have_count(1)
    page.locator('#heatmap .well[data-well="A01"]').focus()
    for key, well in (
        ("ArrowRight", "A02"),
        ("ArrowDown", "B02"),
        ("ArrowDown", "C02"),
        ("ArrowLeft", "C01"),
        ("ArrowLeft", "C01"),  # the edge: stays
        ("End", "C12"),
        ("Home", "C01"),
        ("ArrowUp", "B01"),
    ):
        page.keyboard.press(key)
        assert page.evaluate(focused) == well, (key, well)
    expect(page.locator('#heatmap .well[data-well="B01"]')).to_have_attribute("tabindex", "0")
    assert wells.count() == 96
    page.keyboard.press("Enter")  # opens the well's image
    expect(page.locator("#viewer-title")).to_contain_text("P1_B01")
    page.close()

    # the plate map of the experiment page too
    page = _open(desktop, site, "experiment")
    page.locator('.plate .well[data-well="D05"]').focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == "E06"
    page.keyboard.press("Enter")
    expect(page.locator("#well-title")).to_have_text("P1 \u00b7 E06")
    page.close()


def test_a_live_region_says_the_run_status(desktop: BrowserContext, site: Site) -> None:
    for name, words in (
        ("run-finished", "Run succeeded: 192 of 192 images segmented"),
        ("run-with-failures", "Run succeeded, 3 of 192 images failed"),
        ("run-cancelled", "Run cancelled"),
    ):
        page = _open(desktop, site, name)
        live = page.locator("#run-announce")
        expect(live).to_have_attribute("aria-live", "polite")
        expect(live).to_have_attribute("role", "status")
        expect(live).to_contain_text(words)
        page.close()


def test_every_page_has_a_favicon(desktop: BrowserContext, site: Site) -> None:
    page = _open(desktop, site, "experiments")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href and href.endswith(".svg")
    response = page.request.get(site.url + href)
    assert response.ok and response.headers["content-type"].startswith("image/svg+xml")
    page.close()


def test_a_cancelled_run_says_so_on_its_page_and_in_the_runs_table(
    desktop: BrowserContext, site: Site
) -> None:
    page = _open(desktop, site, "run-cancelled")
    expect(page.locator("#run-status")).to_have_text("cancelled")
    # the engine's message in words; the raw one behind a click
    expect(page.locator("#run-error")).to_have_text("The run was cancelled.")
    expect(page.locator("#st-phase")).to_have_text("cancelled")
    detail = page.locator("#run-error-detail")
    expect(detail).to_be_hidden()
    page.locator("#run-error-raw summary").click()
    expect(detail).to_contain_text("Abort")
    page.locator("#progress-card").screenshot(path=str(ARTIFACTS / "run-cancelled-words.png"))
    # the words for the other ways a run ends (the same function the page uses)
    words = {
        error: page.evaluate("([e, c]) => runErrorWords('FAILED', e, c)", [error, cause])
        for error, cause in (
            ("States.ExceedToleratedFailureThreshold", "3 of 48 batches failed"),
            ("NoImagesError", "experiment X has no image files"),
            ("States.Timeout", ""),
            ("Weird.Error", "something"),
        )
    }
    assert words["States.ExceedToleratedFailureThreshold"].startswith("Too many batches failed")
    assert words["NoImagesError"] == "No images to segment: experiment X has no image files"
    assert words["States.Timeout"] == "A step ran past its time limit."
    assert words["Weird.Error"] == "The run failed (Weird.Error): something"
    page.close()
    page = _open(desktop, site, "experiment")
    row = page.locator(f'#runs-table tr[data-run="{site.cancelled}"]')
    expect(row.locator(".status")).to_have_text("cancelled")
    expect(row).to_contain_text("no results recorded")
    expect(row.locator("input[type=radio]")).to_have_count(0)  # nothing to compare
    page.close()
