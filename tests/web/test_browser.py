"""The scientist's story in a real browser (Debian's Chromium driven by Playwright).

Open the app with the printed token, pick the experiment, look at a well, preview the
recipe on two fields (after fixing a bad parameter), start the run, watch it finish
without a reload, read the heatmap, open an image with outlines and a tooltip, find the
corrupt image among the failures with its cause, replace the file and click "Retry
failed", watch the retry finish (failure gone, heatmap updated, still no reload),
download the CSV. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect

from plateseg.demo import write_demo_experiment
from plateseg.store import LocalStore

from .browser import ARTIFACTS, chromium, screenshot, served
from .conftest import CORRUPT_IMAGE, CORRUPT_KEY, EXPERIMENT, TOKEN, WELLS

#: A few more wells than the API tests: a fuller plate reads better in screenshots.
STORY_WELLS = sorted({*WELLS, "A02", "C01", "D01", "E01", "C12", "D12", "E12", "B06", "E07", "F09"})


@pytest.fixture
def story_store(store: LocalStore) -> LocalStore:
    write_demo_experiment(store, EXPERIMENT, size=256, wells=STORY_WELLS)
    store.put_bytes(CORRUPT_KEY, b"II*\x00 this is not a TIFF any more")
    return store


@pytest.fixture
def server(app: FastAPI, story_store: LocalStore) -> Iterator[str]:
    """The app served by uvicorn on a free port of 127.0.0.1, in a thread."""
    with served(app) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 960}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def tifffile_bytes(source: bytes) -> bytes:
    """A fresh, valid 16-bit TIFF holding the pixels of ``source`` (another field's image)."""
    import numpy as np

    from plateseg.imaging import read_image, write_tiff

    pixels = read_image(source, "replacement")
    return write_tiff(np.ascontiguousarray(pixels))


def test_scientist_story(server: str, page: Page, story_store: LocalStore) -> None:
    # open the app with the printed token: the cookie replaces it
    page.goto(f"{server}/?token={TOKEN}")
    assert "token=" not in page.url
    expect(page.locator("#experiments")).to_contain_text(EXPERIMENT)
    screenshot(page, "01-experiments")

    # pick the experiment and look at a well's thumbnails
    page.get_by_role("link", name=EXPERIMENT).click()
    expect(page.locator(".plate .well.has")).to_have_count(len(STORY_WELLS))
    page.locator('.plate .well[data-well="A01"]').click()
    expect(page.locator("#well-title")).to_have_text("P1 · A01")
    expect(page.locator("#well-fields img")).to_have_count(4)  # 2 fields x 2 channels
    page.wait_for_function(  # a function, not an expression string: the CSP forbids eval
        "() => [...document.querySelectorAll('#well-fields img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    expect(page.locator("#well-layout")).to_contain_text("neg")
    screenshot(page, "02-experiment-plate")

    # new run: a bad parameter gets a field-level message, then the preview
    page.locator("#new-run").click()
    page.locator('[data-param="min_diameter"]').fill("-3")
    page.locator("#preview-button").click()
    expect(page.locator('.field-error[data-field="min_diameter"]')).to_contain_text("greater than")
    page.locator('[data-param="min_diameter"]').fill("10")
    # the preview's fields are picked on the plate map: P1_A01_1 and P1_D05_1
    for _ in range(2):  # the default picks out
        page.locator("#preview-picks .pick-remove").first.click()
    page.locator('#preview-plates .well[data-well="A01"]').click()
    page.locator('#preview-plates .well[data-well="D05"]').click()
    page.locator("#preview-button").click()
    expect(page.locator("#preview-results figure")).to_have_count(2)
    expect(page.locator('.field-error[data-field="min_diameter"]')).to_be_empty()
    expect(page.locator("#estimate")).to_contain_text("Estimated time")
    counts = page.locator("#preview-results .count-big").all_inner_texts()
    assert int(counts[0].replace(",", "")) > 0
    screenshot(page, "03-new-run-preview")

    # start the run and watch it finish on the same page (no reload)
    page.locator("#launch-button").click()
    page.wait_for_url("**/runs/*")
    run_url = page.url
    page.evaluate("window.__sameDocument = true")
    # one image failed: not a plain green success
    status = page.locator("#run-status")
    expect(status).to_have_text(
        f"succeeded, 1 of {2 * len(STORY_WELLS)} images failed", timeout=240_000
    )
    expect(status).to_have_class(re.compile(r"\bs-succeeded_with_failures\b"))
    page.wait_for_selector("body[data-results-ready='true']", timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True
    assert page.url == run_url
    expect(page.locator("#st-failed")).to_have_text("1")
    # what the run was: the default learned model, pinned to its hash
    expect(page.locator("#run-details")).to_contain_text("nuclei-unet · ")
    expect(page.locator("#run-details")).to_contain_text("Segmenter")

    # the heatmap: every well of the run coloured, a colour scale, Z'
    wells = page.locator("#heatmap .well[data-well]")
    expect(wells).to_have_count(len(STORY_WELLS))
    colour = wells.first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour.startswith("rgb(")
    expect(page.locator("#zprime")).to_contain_text("Z\u2032")
    expect(page.locator("#cancel-button")).to_be_hidden()
    # an image failed: "Retry failed" is offered, with what it does
    expect(page.locator("#retry-button")).to_be_visible()
    expect(page.locator("#failure-note")).to_contain_text("Replace unreadable files")
    expect(page.locator("#scale-max")).not_to_be_empty()
    page.locator("#metric").select_option("Mean_Nuclei_AreaShape_Area")
    expect(page.locator("#scale-max")).not_to_have_text("")
    page.locator("#metric").select_option("Count_Nuclei")  # "nuclei per field"

    # the corrupt image, with its cause
    expect(page.locator("#failures")).to_contain_text(CORRUPT_IMAGE)
    expect(page.locator("#failures")).to_contain_text("P1_C03_s2_w1.tif")
    expect(page.locator("#failures")).to_contain_text("ImageReadError")
    # the failed count is a link to that list
    page.locator("#st-failed a").click()
    assert page.url == run_url + "#failures-card"
    expect(page.locator("#failures-card")).to_be_in_viewport()
    page.go_back()  # a fragment step: the same document
    assert page.url == run_url

    # open an image with outlines and hover an object for its tooltip
    page.locator('#heatmap .well[data-well="A01"]').click()
    overlay = page.locator("#overlay")
    expect(overlay).to_be_visible()
    page.wait_for_function("() => document.querySelector('#overlay').naturalWidth > 0")
    page.wait_for_load_state("networkidle")
    objects: dict[str, Any] = page.evaluate(
        "async () => (await fetch(location.pathname.replace('/runs/', '/api/runs/') + "
        "'/images/P1_A01_1/objects')).json()"
    )
    target = max(objects["objects"], key=lambda o: o["area"])
    y, x = target["centroid"]
    # the tooltip listens once the page has the objects; hover again if the picture
    # moved (a late layout change) between measuring it and the move
    page.wait_for_selector("#overlay[data-tips='ready']")
    for _ in range(5):
        overlay.scroll_into_view_if_needed()
        box = overlay.bounding_box()
        assert box is not None
        page.mouse.move(max(box["x"] - 5, 0), max(box["y"] - 5, 0))
        page.mouse.move(
            box["x"] + box["width"] * x / objects["width"],
            box["y"] + box["height"] * y / objects["height"],
        )
        if page.locator("#tip").is_visible():
            break
        page.wait_for_timeout(500)
    expect(page.locator("#tip")).to_be_visible()
    expect(page.locator("#tip")).to_contain_text("area")
    screenshot(page, "04-run-results")
    page.locator("#heatmap").screenshot(path=str(ARTIFACTS / "05-heatmap.png"))
    page.locator("#image-filter").fill("error")
    expect(page.locator("#images tbody tr")).to_have_count(1)
    nuclei = page.locator(f'#images tbody tr[data-image="{CORRUPT_IMAGE}"] td').nth(4)
    expect(nuclei).to_have_text("\u2013")  # a failed image has no count, not 0 nuclei

    # the scientist replaces the corrupt file with a good TIFF and retries the failures
    c03 = page.locator('#heatmap .well[data-well="C03"]')
    expect(c03).to_have_class(re.compile(r"\bfailed\b"))
    expect(c03).to_have_attribute("title", re.compile("1 failed"))
    good = tifffile_bytes(story_store.get_bytes(CORRUPT_KEY.replace("_s2_", "_s1_")))
    Path(story_store.uri(CORRUPT_KEY)).write_bytes(good)
    page.locator("#retry-button").click()
    expect(page.locator("#run-status")).to_have_text("running")
    expect(page.locator("#results")).to_be_hidden()
    status = page.locator("#run-status")
    expect(status).to_have_text("succeeded", timeout=240_000)  # every image now
    expect(status).to_have_class(re.compile(r"\bs-succeeded\b"))
    page.wait_for_selector("body[data-results-ready='true']", timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True and page.url == run_url
    expect(page.locator("#st-failed")).to_have_text("0")
    expect(page.locator("#failures-card")).to_be_hidden()
    expect(page.locator("#retry-button")).to_be_hidden()
    expect(page.locator("#heatmap .well.failed")).to_have_count(0)
    expect(c03).not_to_have_attribute("title", re.compile("failed"))
    expect(page.locator("#images tbody tr")).to_have_count(0)  # the "error" filter: none left
    page.locator("#image-filter").fill(CORRUPT_IMAGE)
    expect(page.locator(f'#images tbody tr[data-image="{CORRUPT_IMAGE}"]')).to_contain_text("ok")
    screenshot(page, "04b-run-after-retry")

    # download the CSV: every field segmented now
    with page.expect_download() as download_info:
        page.locator("#dl-images-csv").click()
    path = download_info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert len(rows) == 2 * len(STORY_WELLS)
    assert {r["image_id"]: r["status"] for r in rows}[CORRUPT_IMAGE] == "ok"
    assert {r["status"] for r in rows} == {"ok"}
