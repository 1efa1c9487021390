"""The models page in a real browser (Debian's Chromium driven by Playwright).

Open /models, upload an ONNX model (a bad file first), paint nucleus strokes over a
few nuclei and background strokes between them on two fields of the demo experiment
(with the mouse, where the generator's ground truth says the nuclei are), train, see
the preview with outlines and counts, click "Use in a new run", start the run and
watch it finish. Screenshots go to ``test-artifacts/`` (``06-models-scribbles``,
``07-models-trained``, ``08-models-new-run``, ``09-models-run``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect

from plateseg.demo import write_demo_experiment
from plateseg.imaging import read_image
from plateseg.segmentation.onnx_model import SHIPPED_MODELS
from plateseg.store import LocalStore, get_json

from .browser import paint, screenshot, served, truth_strokes
from .conftest import TOKEN

EXPERIMENT = "DEMO-M"
WELLS = ["A01", "B01", "C03", "D05", "E07", "F09"]
FIELDS = ["P1_A01_1", "P1_B01_2"]
MODEL = "scribbled-nuclei"
SIZE = 256
#: Generous waits: the machine running the suite may be busy.
WAIT = 30_000


@pytest.fixture
def models_store(store: LocalStore) -> LocalStore:
    write_demo_experiment(store, EXPERIMENT, size=SIZE, wells=WELLS)
    return store


@pytest.fixture
def server(app: FastAPI, models_store: LocalStore) -> Iterator[str]:
    """The app served by uvicorn on a free port of 127.0.0.1, in a thread."""
    with served(app) as url:
        yield url


@pytest.fixture
def strokes(models_store: LocalStore) -> dict[str, dict[str, list[tuple[float, ...]]]]:
    """Per field: short strokes (x0, y0, x1, y1 in image pixels) inside true nuclei and
    in clear background, from the generator's ground truth."""
    found = {}
    for image_id in FIELDS:
        key = f"truth/{EXPERIMENT}/masks/{image_id}.tif"
        found[image_id] = truth_strokes(read_image(models_store.get_bytes(key), key))
        assert len(found[image_id]["background"]) >= 3, image_id
    return found


def _paint(page: Page, lines: list[tuple[float, ...]]) -> None:
    paint(page, lines, SIZE)


def test_train_a_model_from_scribbles_and_run_it(
    server: str,
    page: Page,
    strokes: dict[str, dict[str, list[tuple[float, ...]]]],
    models_store: LocalStore,
) -> None:
    truth = get_json(models_store, f"truth/{EXPERIMENT}/counts.json")["fields"]
    page.goto(f"{server}/models?token={TOKEN}")
    page.wait_for_selector("body[data-trainer-ready='true']")
    page.locator("#mode-forest").check()  # the pixel classifier (fine-tuning is the default)
    expect(page.locator("#models")).to_contain_text("nuclei-rf", timeout=WAIT)
    expect(page.locator("#train-experiment")).to_have_value(EXPERIMENT, timeout=WAIT)
    expect(page.locator("#scribble-canvas")).to_have_attribute(
        "data-image", FIELDS[0], timeout=WAIT
    )

    # upload: a file that is not a model is refused under its field, a real one is listed
    page.locator("#upload-name").fill("uploaded-rf")
    page.locator("#upload-file").set_input_files(
        files=[{"name": "notes.onnx", "mimeType": "text/plain", "buffer": b"not a model"}]
    )
    page.locator("#upload-button").click()
    expect(page.locator('#upload-form .field-error[data-field="file"]')).to_contain_text(
        "not a valid ONNX model", timeout=WAIT
    )
    page.locator("#upload-file").set_input_files(str(SHIPPED_MODELS / "nuclei-rf.onnx"))
    page.locator("#upload-button").click()
    expect(page.locator('#models tr[data-model="uploaded-rf"]')).to_contain_text(
        "uploaded from nuclei-rf.onnx", timeout=WAIT
    )
    expect(page.locator('#upload-form .field-error[data-field="file"]')).to_be_empty()

    page.locator("#train-field").select_option(FIELDS[1])
    page.locator("#add-field").click()
    expect(page.locator("#field-tabs .field-tab")).to_have_count(2, timeout=WAIT)
    expect(page.locator("#scribble-canvas")).to_have_attribute(
        "data-image", FIELDS[1], timeout=WAIT
    )
    for index in (1, 0):
        image_id = FIELDS[index]
        page.locator(f'#field-tabs .field-tab[data-image="{image_id}"]').click()
        expect(page.locator("#scribble-canvas")).to_have_attribute(
            "data-image", image_id, timeout=WAIT
        )
        page.locator("#brush-fg").click()
        _paint(page, strokes[image_id]["nuclei"])
        page.locator("#brush-bg").click()
        _paint(page, strokes[image_id]["background"])
        tab = page.locator(f'#field-tabs .field-tab[data-image="{image_id}"]')
        painted = strokes[image_id]
        expect(tab).to_have_attribute(
            "title",
            f"{len(painted['nuclei'])} nucleus and {len(painted['background'])} background strokes",
            timeout=WAIT,
        )
    # a stray stroke, taken back
    total = sum(len(s["background"]) for s in strokes.values())
    _paint(page, [(5.0, 5.0, 60.0, 60.0)])
    expect(page.locator("#paint-stats")).to_contain_text(
        f"{total + 1} background strokes", timeout=WAIT
    )
    page.locator("#undo").click()
    expect(page.locator("#paint-stats")).to_contain_text(
        f"{total} background strokes", timeout=WAIT
    )
    page.locator("#model-name").fill(MODEL)
    page.mouse.move(10, 10)
    screenshot(page, "06-models-scribbles")

    page.locator("#train-button").click()
    expect(page.locator("#train-result")).to_be_visible(timeout=90_000)
    figures = page.locator("#train-previews figure")
    expect(figures).to_have_count(2, timeout=WAIT)
    page.wait_for_function(  # a function, not an expression string: the CSP forbids eval
        "() => [...document.querySelectorAll('#train-previews img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    for index, image_id in enumerate(FIELDS):
        count = int(figures.nth(index).locator(".count-big").inner_text().replace(",", ""))
        assert count > 0
        assert abs(count - truth[image_id]) <= max(3, 0.3 * truth[image_id]), (image_id, count)
    expect(page.locator(f'#models tr[data-model="{MODEL}"]')).to_contain_text(
        "trained on", timeout=WAIT
    )
    screenshot(page, "07-models-trained")

    page.locator("#use-model").click()
    page.wait_for_url("**/new-run?*")
    expect(page.locator("#segmenter")).to_have_value("trainable", timeout=WAIT)
    expect(page.locator("#model")).to_have_value(MODEL, timeout=WAIT)
    expect(page.locator("#channel-nuclei")).to_have_value("w1", timeout=WAIT)
    screenshot(page, "08-models-new-run")
    page.locator("#launch-button").click()
    page.wait_for_url("**/runs/*")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=240_000)
    page.wait_for_selector("body[data-results-ready='true']", timeout=60_000)
    expect(page.locator("#st-failed")).to_have_text("0", timeout=WAIT)
    expect(page.locator("#heatmap .well[data-well]")).to_have_count(len(WELLS), timeout=WAIT)
    screenshot(page, "09-models-run")
    runs: list[dict[str, Any]] = page.evaluate(
        f"async () => (await (await fetch('/api/experiments/{EXPERIMENT}')).json()).runs"
    )
    assert runs[0]["recipe"]["segmenter"] == "trainable"
    assert runs[0]["recipe"]["params"]["model"] == MODEL
    assert runs[0]["objects"] > 0
