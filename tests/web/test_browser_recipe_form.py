"""The recipe form explains itself (issue 16 item 7): each parameter shows its unit and
help from the schema, edits survive a switch of segmenter, and a preview drawn with
other inputs is cleared when the recipe changes (Chromium). The preview's fields are
picked on a plate map of the experiment, with the mouse or the keyboard (issue 16).

Screenshots: ``test-artifacts/recipe-form.png``, ``preview-plate-pick.png`` (copied to
``docs/images/``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect

from plateseg.contracts.params import ClassicalParams
from plateseg.store import LocalStore

from .browser import ARTIFACTS, chromium, screenshot, served
from .conftest import EXPERIMENT, TOKEN, WELLS
from .test_browser_a11y import WIDEST, serious_violations


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_the_recipe_form_explains_itself_and_keeps_edits(
    app: FastAPI, demo: LocalStore, browser: Browser
) -> None:
    with served(app) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page: Page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/experiments/{EXPERIMENT}/new-run?segmenter=classical")

        # ---- unit and help from the schema, visible beside each parameter
        field = ClassicalParams.model_json_schema()["properties"]["min_diameter"]
        label = page.locator("label", has=page.locator('[data-param="min_diameter"]'))
        expect(label.locator(".unit")).to_have_text(f"({field['unit']})")
        expect(label.locator(".help")).to_have_text(field["description"])
        helps = page.locator(".params .help")
        expect(helps).to_have_count(len(ClassicalParams.model_fields))

        # ---- a preview, then a changed parameter clears it
        page.locator("#preview-button").click()
        expect(page.locator("#preview-results figure")).not_to_have_count(0)
        page.locator('[data-param="min_diameter"]').fill("9")
        expect(page.locator("#preview-results figure")).to_have_count(0)
        expect(page.locator("#preview-status")).to_have_text("the recipe changed: preview again")
        screenshot(page, "recipe-form")

        # ---- switching segmenter keeps what both share, and comes back with it
        page.locator('[data-param="max_diameter"]').fill("40")
        page.locator('[data-param="exclude_border"]').check()
        page.locator("#segmenter").select_option("onnx")
        page.wait_for_url("**segmenter=onnx")
        expect(page.locator('[data-param="min_diameter"]')).to_have_value("9")
        expect(page.locator('[data-param="max_diameter"]')).to_have_value("40")
        expect(page.locator('[data-param="exclude_border"]')).to_be_checked()
        expect(page.locator('[data-param="model"]')).to_have_value("nuclei-unet")
        page.locator("#segmenter").select_option("classical")
        page.wait_for_url("**segmenter=classical")
        expect(page.locator('[data-param="min_diameter"]')).to_have_value("9")
        expect(page.locator('[data-param="threshold_method"]')).to_have_value("li")
        context.close()


def test_the_preview_fields_are_picked_on_the_plate_map(
    app: FastAPI, demo: LocalStore, browser: Browser
) -> None:
    with served(app) as url:
        # bypass_csp: axe-core is injected as an inline script
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
        page: Page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/experiments/{EXPERIMENT}/new-run?segmenter=classical")
        plate = page.locator('#preview-plates .plate[data-plate="P1"]')
        well = {name: plate.locator(f'.well[data-well="{name}"]') for name in WELLS}
        picks = page.locator("#preview-picks li")

        # ---- the experiment's wells, controls ringed; the first two wells picked
        expect(plate.locator(".well.has")).to_have_count(len(WELLS))
        expect(well["A01"]).to_have_attribute(
            "aria-label",
            "A01 · 2 fields · condition: DMSO · compound: DMSO · concentration: 0 · control: neg"
            " · preview 1",
        )
        expect(well["A01"]).to_have_class(re.compile(r"\bctl-neg\b.*\bpicked\b"))
        expect(well["A12"]).to_have_attribute("aria-pressed", "true")
        expect(well["A12"]).to_have_text("2")
        expect(picks).to_have_count(2)

        # ---- a click unpicks; the keyboard moves between wells and Enter picks
        well["A12"].click()
        expect(well["A12"]).to_have_attribute("aria-pressed", "false")
        expect(picks).to_have_count(1)
        well["A01"].focus()
        for _ in range(3):  # A01 -> B01 -> C03 -> D05
            page.keyboard.press("ArrowDown")
        expect(well["D05"]).to_be_focused()
        page.keyboard.press("Enter")
        expect(well["D05"]).to_have_attribute("aria-pressed", "true")
        expect(well["D05"]).to_have_text("2")

        # ---- a well with several fields: its field is chosen in the list
        page.locator("#preview-field-1").select_option("P1_A01_2")
        expect(picks.nth(0)).to_contain_text("P1_A01_2")
        expect(page.locator("#preview-pick-status")).to_have_text(
            "Preview: P1 A01 field 2 and P1 D05 field 1"
        )

        # ---- the preview segments exactly the picked fields
        page.locator("#preview-button").click()
        figures = page.locator("#preview-results figure")
        expect(figures).to_have_count(2)
        assert figures.evaluate_all("fs => fs.map(f => f.dataset.image)") == [
            "P1_A01_2",
            "P1_D05_1",
        ]
        counts = page.locator("#preview-results .count-big").all_inner_texts()
        assert all(int(c.replace(",", "")) > 0 for c in counts), counts
        expect(page.locator("#estimate")).to_contain_text("Estimated time")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#preview-results img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#estimate").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "preview-plate-pick.png"))  # the preview sticks
        found = serious_violations(page)
        assert not found, found

        # ---- a third well replaces the first picked; the picks survive a segmenter switch
        well["C03"].click()
        expect(well["A01"]).to_have_attribute("aria-pressed", "false")
        expect(page.locator("#preview-pick-status")).to_have_text(
            "Preview: P1 D05 field 1 and P1 C03 field 1"
        )
        page.locator("#segmenter").select_option("onnx")
        page.wait_for_url("**segmenter=onnx")
        pressed = page.locator('#preview-plates .well[aria-pressed="true"]')
        expect(pressed).to_have_count(2)
        assert sorted(pressed.evaluate_all("ws => ws.map(w => w.dataset.well)")) == ["C03", "D05"]

        # ---- and nothing scrolls sideways on a phone
        page.set_viewport_size({"width": 390, "height": 844})
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, page.evaluate(WIDEST)
        context.close()
