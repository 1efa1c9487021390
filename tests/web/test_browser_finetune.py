"""Fine-tuning the base model from corrections, in a real browser (Chromium + Playwright).

The demo experiment is shifted to a domain the shipped ``nuclei-unet`` gets wrong: a
whole-cell signal bleeds into the nuclei channel around every nucleus (as in
``bench/finetune.py``), so the base model outlines cells, merges neighbours and
undercounts. On two fields picked on the plate, the test corrects it with the mouse
where the generator's ground truth says it is wrong: nucleus strokes, background strokes
in the halo around nuclei, split strokes between nuclei the base merged, a click that
erases an object with no nucleus under it, and one nucleus drawn by its outline. It then
fine-tunes for 30 steps (a fixed number, so the model is the same on a busy machine:
27 s on 2 cores at a load of ~10), checks that the counts moved toward the truth on the
corrected fields, and starts a run with the new model from "Use in a new run".

Screenshots: ``test-artifacts/finetune-correct.png`` and ``finetune-result.png`` (the
Models page's trainer; copied to ``docs/images/`` for the README), and
``finetune-run.png``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect
from scipy import ndimage as ndi

from plateseg.demo import write_demo_experiment
from plateseg.imaging import read_image, write_tiff
from plateseg.segmentation.learned import segment_learned
from plateseg.segmentation.onnx_model import load_model
from plateseg.store import LocalStore, get_json

from .browser import ARTIFACTS, screenshot, served
from .conftest import TOKEN

EXPERIMENT = "DEMO-F"
WELLS = ["A01", "B01", "C03", "D05", "E07", "F09"]
FIELDS = ["P1_A01_1", "P1_B01_2"]
MODEL = "bleed-nuclei"
SIZE = 256
WAIT = 30_000
#: Fine-tune steps (a fixed number, so the model does not depend on how busy the machine is).
STEPS = 30
Line = tuple[float, float, float, float]


def bleed_through(image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """A blurred whole-cell signal, as bright as the nuclei, around every nucleus."""
    values = image.astype(np.float64)
    if not truth.any():
        return image
    background = np.median(values[truth == 0])
    signal = np.median(values[truth > 0]) - background
    areas = np.bincount(truth.ravel())[1:]
    diameter = float(np.sqrt(4 * np.median(areas[areas > 0]) / np.pi))
    cells = ndi.grey_dilation(truth, size=int(0.8 * diameter)) > 0
    body = ndi.gaussian_filter(cells.astype(np.float64), 2.0)
    shifted = values + signal * body * (truth == 0)
    return np.clip(np.round(shifted), 0, 65535).astype(np.uint16)


@pytest.fixture
def shifted(store: LocalStore) -> LocalStore:
    write_demo_experiment(store, EXPERIMENT, size=SIZE, wells=WELLS)
    for info in store.list(f"experiments/{EXPERIMENT}/"):
        if not info.key.endswith("_w1.tif"):
            continue
        name = info.key.rsplit("/", 1)[1]  # P1_A01_s1_w1.tif
        plate, well, site, _ = name.split("_")
        truth_key = f"truth/{EXPERIMENT}/masks/{plate}_{well}_{site[1:]}.tif"
        truth = read_image(store.get_bytes(truth_key), truth_key)
        image = read_image(store.get_bytes(info.key), info.key)
        store.put_bytes(info.key, write_tiff(bleed_through(image, truth), compress=False))
    return store


@pytest.fixture
def server(app: FastAPI, shifted: LocalStore) -> Iterator[str]:
    with served(app) as url:
        yield url


def _field(store: LocalStore, image_id: str) -> tuple[np.ndarray, np.ndarray]:
    plate, well, site = image_id.split("_")
    key = f"experiments/{EXPERIMENT}/{plate}/{plate}_{well}_s{site}_w1.tif"
    truth_key = f"truth/{EXPERIMENT}/masks/{image_id}.tif"
    return read_image(store.get_bytes(key), key), read_image(store.get_bytes(truth_key), truth_key)


def corrections(image: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Where a scientist would correct the base model on one field (image pixels)."""
    from skimage.measure import find_contours

    base = segment_learned(image, load_model("nuclei-unet"), None).labels
    ids = np.arange(1, int(truth.max()) + 1)
    boxes = ndi.find_objects(truth)
    sizes = np.bincount(truth.ravel(), minlength=len(ids) + 1)
    nuclei: list[Line] = []
    for label in ids[:-1]:  # every nucleus but the last, which is drawn
        rows, cols = np.nonzero(truth == label)
        y = float(np.median(rows))
        inside = cols[rows == int(y)]
        x, half = float(inside.mean()), max(1.0, (inside.max() - inside.min()) * 0.25)
        nuclei.append((x - half, y, x + half, y))
    box = boxes[int(ids[-1]) - 1]
    assert box is not None
    local = np.pad(truth[box] == ids[-1], 1)
    contour = max(find_contours(local.astype(float), 0.5), key=len)
    step = max(1, len(contour) // 24)
    drawn = [(float(c[1] + box[1].start - 1), float(c[0] + box[0].start - 1)) for c in contour]
    drawn = drawn[::step]
    # background: the halo the base model takes for nucleus, 4-7 px from any nucleus
    distance = ndi.distance_transform_edt(truth == 0)
    halo = (distance >= 4) & (distance <= 7) & (base > 0)
    halo[:6], halo[-6:], halo[:, :6], halo[:, -6:] = False, False, False, False
    background: list[Line] = []
    while len(background) < 16 and halo.any():
        y, x = (int(v) for v in np.argwhere(halo)[0])
        background.append((float(x), float(y), float(x), float(y)))
        halo[max(0, y - 14) : y + 14, max(0, x - 14) : x + 14] = False
    # split: two true nuclei inside one base object, a stroke across their gap
    splits: list[Line] = []
    for obj in range(1, int(base.max()) + 1):
        overlap = np.bincount(truth[base == obj], minlength=len(ids) + 1)
        inside = [t for t in ids if overlap[t] >= 0.3 * sizes[t]]
        for a, b in itertools.pairwise(inside):
            pa, pb = np.argwhere(truth == a), np.argwhere(truth == b)
            gaps = ((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1)
            i, j = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
            mid = (pa[i] + pb[j]) / 2.0
            along = (pb[j] - pa[i]).astype(float)
            along /= max(float(np.hypot(*along)), 1.0)
            across = np.array([-along[1], along[0]]) * 5.0
            (y0, x0), (y1, x1) = mid - across, mid + across
            splits.append((float(x0), float(y0), float(x1), float(y1)))
    # erase: base objects with (almost) no true nucleus under them
    erase = []
    for obj in range(1, int(base.max()) + 1):
        where = base == obj
        if np.count_nonzero(truth[where]) < 0.1 * np.count_nonzero(where):
            depth = ndi.distance_transform_edt(where)
            y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
            erase.append((float(x), float(y)))
    return {
        "base": int(base.max()),
        "nuclei": nuclei,
        "background": background,
        "splits": splits,
        "erase": erase,
        "drawn": drawn,
    }


def _box(page: Page) -> tuple[float, float, float]:
    page.evaluate("document.querySelector('#scribble-canvas').scrollIntoView({block: 'center'})")
    box = page.locator("#scribble-canvas").bounding_box()
    assert box is not None and box["width"] > SIZE
    assert box["y"] >= 0 and box["y"] + box["height"] <= 1000  # all of it on screen
    return box["x"], box["y"], box["width"] / SIZE


def _paint(page: Page, lines: list[Line]) -> None:
    left, top, scale = _box(page)
    for x0, y0, x1, y1 in lines:
        page.mouse.move(left + (x0 + 0.5) * scale, top + (y0 + 0.5) * scale)
        page.mouse.down()
        page.mouse.move(left + (x1 + 0.5) * scale, top + (y1 + 0.5) * scale, steps=5)
        page.mouse.up()


def _click(page: Page, points: list[tuple[float, float]]) -> None:
    left, top, scale = _box(page)
    for x, y in points:
        page.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale)


def _draw(page: Page, outline: list[tuple[float, float]]) -> None:
    left, top, scale = _box(page)
    page.mouse.move(left + (outline[0][0] + 0.5) * scale, top + (outline[0][1] + 0.5) * scale)
    page.mouse.down()
    for x, y in outline[1:]:
        page.mouse.move(left + (x + 0.5) * scale, top + (y + 0.5) * scale, steps=2)
    page.mouse.up()


def _shot(page: Page, name: str, first: str, last: str) -> None:
    """The trainer card from ``first`` down to the end of ``last``, clipped from a
    full-page screenshot."""
    box = page.evaluate(
        """([first, last]) => {
          const card = document.querySelector('#trainer').getBoundingClientRect();
          const top = document.querySelector(first).getBoundingClientRect().top - 12;
          const bottom = document.querySelector(last).getBoundingClientRect().bottom + 12;
          return {x: card.left + scrollX, y: top + scrollY, width: card.width,
                  height: bottom - top};
        }""",
        [first, last],
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, clip=box)


def _count(cell: Any) -> int:
    return int(cell.inner_text().replace(",", ""))


def test_correct_the_base_model_fine_tune_it_and_run_it(
    server: str, page: Page, shifted: LocalStore
) -> None:
    truth = get_json(shifted, f"truth/{EXPERIMENT}/counts.json")["fields"]
    fixes = {i: corrections(*_field(shifted, i)) for i in FIELDS}
    for image_id in FIELDS:  # the shift makes the base model undercount
        assert fixes[image_id]["base"] < truth[image_id], (image_id, fixes[image_id]["base"])

    page.goto(f"{server}/models?token={TOKEN}&experiment={EXPERIMENT}")
    page.wait_for_selector("body[data-trainer-ready='true']")
    expect(page.locator("#mode-finetune")).to_be_checked()
    expect(page.locator("#ft-base")).to_have_value("nuclei-unet", timeout=WAIT)
    # fields are picked on the plate: the second one by clicking its square in B01
    page.locator(f'#plate-pick .fieldpick[data-image="{FIELDS[1]}"]').click()
    expect(page.locator("#field-tabs .field-tab")).to_have_count(2, timeout=WAIT)
    page.locator("#brush-size").fill("8")
    for image_id in FIELDS:
        fix = fixes[image_id]
        page.locator(f'#field-tabs .field-tab[data-image="{image_id}"]').click()
        expect(page.locator("#scribble-canvas")).to_have_attribute(
            "data-image", image_id, timeout=WAIT
        )
        # the base model's outlines, as the server segments the field
        expect(page.locator("#outline-info")).to_contain_text(
            f"nuclei-unet finds {fix['base']} objects on {image_id}", timeout=WAIT
        )
        page.locator("#brush-fg").click()
        _paint(page, fix["nuclei"])
        page.locator("#brush-bg").click()
        _paint(page, fix["background"])
        page.locator("#tool-split").click()
        _paint(page, fix["splits"])
        page.locator("#tool-erase").click()
        _click(page, fix["erase"])
        page.locator("#tool-draw").click()
        _draw(page, fix["drawn"])
        tab = page.locator(f'#field-tabs .field-tab[data-image="{image_id}"]')
        expected = f"{len(fix['nuclei'])} nucleus and {len(fix['background'])} background strokes"
        expect(tab).to_have_attribute("title", _title(expected, fix), timeout=WAIT)
        expect(page.locator(f'#plate-pick .fieldpick[data-image="{image_id}"]')).to_have_class(
            re.compile(r"\bpainted\b"), timeout=WAIT
        )
    page.locator("#model-name").fill(MODEL)
    page.locator(".ft-advanced summary").click()
    page.locator("#ft-steps").fill(str(STEPS))
    page.locator("#ft-seconds").fill("150")  # a cap it never meets: 30 steps, always
    # a focused number input makes Chromium scroll back to it under Playwright's next click
    page.locator("#ft-seconds").blur()
    page.mouse.move(10, 10)
    _shot(page, "finetune-correct", "#trainer", ".ft-advanced")

    page.locator("#finetune-button").click()
    page.wait_for_selector("#ft-progress:not([hidden]), .trainer .field-error:not(:empty)")
    problems = page.locator(".trainer .field-error:not(:empty), #ft-error").all_inner_texts()
    assert not "".join(problems), problems
    expect(page.locator("#ft-progress")).to_be_visible(timeout=WAIT)
    expect(page.locator("#ft-step")).to_contain_text(f"of {STEPS}", timeout=60_000)
    expect(page.locator("#ft-result")).to_be_visible(timeout=180_000)
    rows = page.locator("#ft-table tbody tr")
    expect(rows).to_have_count(3, timeout=WAIT)  # two corrected fields, one unlabelled
    page.wait_for_function(
        "() => [...document.querySelectorAll('#ft-figures img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    errors = {}
    for image_id in FIELDS:
        row = page.locator(f'#ft-table tbody tr[data-image="{image_id}"]')
        before, after = _count(row.locator("td.before")), _count(row.locator("td.after"))
        assert before == fixes[image_id]["base"]
        errors[image_id] = (abs(before - truth[image_id]), abs(after - truth[image_id]))
    page.mouse.move(10, 10)
    _shot(page, "finetune-result", "#ft-progress", "#ft-result")
    summary = page.locator("#ft-summary").inner_text()
    before_total = sum(b for b, _ in errors.values())
    assert sum(a for _, a in errors.values()) < before_total, (errors, summary)
    card = get_json(shifted, f"models/{MODEL}.json")
    assert card["origin"] == "fine-tuned" and card["base"]["name"] == "nuclei-unet"
    assert card["experiment_id"] == EXPERIMENT
    assert [f["name"] for f in card["fields"]] == FIELDS
    assert card["evaluation"]["agreement"]["after"] > card["evaluation"]["agreement"]["before"]

    page.locator("#ft-use").click()
    page.wait_for_url("**/new-run?*")
    expect(page.locator("#segmenter")).to_have_value("onnx", timeout=WAIT)
    expect(page.locator("#model")).to_have_value(MODEL, timeout=WAIT)
    page.locator("#launch-button").click()
    page.wait_for_url("**/runs/*")
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=240_000)
    page.wait_for_selector("body[data-results-ready='true']", timeout=60_000)
    expect(page.locator("#st-failed")).to_have_text("0", timeout=WAIT)
    # the run says which model it ran, pinned to its hash, with a link to the model card
    details = page.locator("#run-details")
    expect(details).to_contain_text(f"{MODEL} · {card['sha256'][:12]}", timeout=WAIT)
    expect(details.get_by_role("link", name="model card")).to_have_attribute(
        "href", f"/api/finetune/cards/{MODEL}"
    )
    screenshot(page, "finetune-run")
    runs: list[dict[str, Any]] = page.evaluate(
        f"async () => (await (await fetch('/api/experiments/{EXPERIMENT}')).json()).runs"
    )
    params = runs[0]["recipe"]["params"]
    assert (runs[0]["recipe"]["segmenter"], params["model"]) == ("onnx", MODEL)
    if "model_sha256" in params:  # the run is pinned to the bytes of the fine-tuned model
        assert params["model_sha256"] == card["sha256"]
    assert runs[0]["objects"] > 0


def _title(start: str, fix: dict[str, Any]) -> str:
    parts = [f"{len(fix['splits'])} split"] if fix["splits"] else []
    parts.append("1 drawn")
    if fix["erase"]:
        parts.append(f"{len(fix['erase'])} erased")
    return f"{start}, {', '.join(parts)}"
