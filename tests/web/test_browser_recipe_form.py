"""The recipe form explains itself (issue 16 item 7): each parameter shows its unit and
help from the schema, edits survive a switch of segmenter, and a preview drawn with
other inputs is cleared when the recipe changes (Chromium)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect

from plateseg.contracts.params import ClassicalParams
from plateseg.store import LocalStore

from .browser import chromium, screenshot, served
from .conftest import EXPERIMENT, TOKEN


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
