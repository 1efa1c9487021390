"""Teaching a model on a plate of Z-stacks, in a real browser (Chromium + Playwright).

Every channel file of the demo experiment is an ImageJ Z-stack of two planes (their
maximum is the demo's image). Read as its first plane, the Models page refuses each
field and says to choose the maximum projection; with "Z planes: maximum projection"
the canvas loads, the base model's outlines come, a pixel classifier trained from
strokes painted where the generator's ground truth has nuclei and background counts the
nuclei, the model list says it was taught on projections, and "Use in a new run" opens
the new-run form with the maximum projection chosen. Screenshot:
``test-artifacts/models-zstack.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect

from plateseg.demo import write_demo_experiment
from plateseg.imaging import read_image
from plateseg.store import LocalStore, get_json

from .browser import paint, screenshot, served, truth_strokes
from .conftest import TOKEN
from .zplanes import write_stack_files

EXPERIMENT = "DEMO-Z"
WELLS = ["A01", "B01", "C03"]
FIELD = "P1_A01_1"
MODEL = "zstack-nuclei"
SIZE = 256
WAIT = 30_000


@pytest.fixture
def stacks(store: LocalStore) -> LocalStore:
    write_demo_experiment(store, EXPERIMENT, size=SIZE, wells=WELLS)
    fields = [f"P1_{well}_{site}" for well in WELLS for site in (1, 2)]
    write_stack_files(store, EXPERIMENT, EXPERIMENT, fields)  # in place
    return store


@pytest.fixture
def server(app: FastAPI, stacks: LocalStore) -> Iterator[str]:
    with served(app) as url:
        yield url


def test_teach_on_the_maximum_projection_of_a_z_stack_plate(
    server: str, page: Page, stacks: LocalStore
) -> None:
    key = f"truth/{EXPERIMENT}/masks/{FIELD}.tif"
    strokes = truth_strokes(read_image(stacks.get_bytes(key), key))
    truth = get_json(stacks, f"truth/{EXPERIMENT}/counts.json")["fields"][FIELD]
    page.goto(f"{server}/models?experiment={EXPERIMENT}&token={TOKEN}")
    expect(page.locator("#train-planes")).to_have_value("first", timeout=WAIT)
    error = page.locator("#train-error")
    expect(error).to_contain_text("multi-plane stack", timeout=WAIT)  # the server's reason
    expect(error).to_contain_text("Choose Z planes: maximum projection.")
    expect(page.locator("#field-tabs .field-tab")).to_have_count(0)

    page.locator("#train-planes").select_option("max")
    expect(page.locator("#scribble-canvas")).to_have_attribute("data-image", FIELD, timeout=WAIT)
    expect(error).to_be_empty()
    expect(page.locator("#outline-info")).to_contain_text(  # the base model's objects
        "nuclei-unet finds", timeout=WAIT
    )

    page.locator("#mode-forest").check()
    page.locator("#brush-fg").click()
    paint(page, strokes["nuclei"], SIZE)
    page.locator("#brush-bg").click()
    paint(page, strokes["background"], SIZE)
    expect(page.locator(f'#field-tabs .field-tab[data-image="{FIELD}"]')).to_have_attribute(
        "title",
        f"{len(strokes['nuclei'])} nucleus and {len(strokes['background'])} background strokes",
        timeout=WAIT,
    )
    page.locator("#model-name").fill(MODEL)
    page.locator("#train-button").click()
    expect(page.locator("#train-result")).to_be_visible(timeout=90_000)
    count = page.locator("#train-previews figure .count-big").first.inner_text()
    assert abs(int(count.replace(",", "")) - truth) <= max(3, 0.3 * truth), (count, truth)
    use = page.locator("#use-model")
    query = f"segmenter=trainable&model={MODEL}&nuclei=w1&planes=max"
    expect(use).to_have_attribute("href", f"/experiments/{EXPERIMENT}/new-run?{query}")
    row = page.locator(f'#models tr[data-model="{MODEL}"]')
    expect(row).to_contain_text("of w1 (maximum projection)", timeout=WAIT)
    expect(row.locator("a.button")).to_have_attribute("href", re.compile(r"[?&]planes=max(&|$)"))
    screenshot(page, "models-zstack")
    # the page back on first planes: the model taught on projections still runs on them,
    # the shipped one follows the menu
    page.locator("#train-planes").select_option("first")
    expect(error).to_contain_text("multi-plane stack", timeout=WAIT)
    expect(row.locator("a.button")).to_have_attribute("href", re.compile(r"[?&]planes=max(&|$)"))
    shipped = page.locator('#models tr[data-model="nuclei-unet"] a.button')
    expect(shipped).to_have_attribute("href", re.compile(r"[?&]model=nuclei-unet(&|$)"))
    expect(shipped).not_to_have_attribute("href", re.compile(r"planes="))
    # the page on another channel: the model still runs on the channel it was taught on
    page.locator("#train-channel").select_option("w2")
    expect(shipped).to_have_attribute("href", re.compile(r"[?&]nuclei=w2(&|$)"))
    expect(row.locator("a.button")).to_have_attribute("href", re.compile(r"[?&]nuclei=w1(&|$)"))

    use.click()
    page.wait_for_url("**/new-run?*")
    expect(page.locator("#segmenter")).to_have_value("trainable", timeout=WAIT)
    expect(page.locator("#model")).to_have_value(MODEL)
    expect(page.locator("#planes")).to_have_value("max")
