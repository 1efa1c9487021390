"""The new-run page starts a run with ``plateseg run``'s options: a file naming, a
batch size, a run id and the recipe's Z planes chosen on the page reach the execution
(Chromium)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect

from plateseg.map_settings import DEFAULTS
from plateseg.settings import Settings
from plateseg.store import LocalStore

from .browser import chromium, screenshot, served
from .conftest import EXPERIMENT, TOKEN
from .test_run_options import recorded


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_the_new_run_page_starts_a_run_with_a_batch_size_and_a_naming(
    app: FastAPI, demo: LocalStore, browser: Browser, settings: Settings
) -> None:
    batch_size = DEFAULTS.items_per_batch + 1
    with served(app) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page: Page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/experiments/{EXPERIMENT}/new-run?segmenter=classical")
        expect(page.locator("#naming")).to_have_value("")  # detected unless chosen
        expect(page.locator("#naming-regex")).to_be_disabled()
        expect(page.locator("#batch-size")).to_have_attribute(
            "placeholder", str(DEFAULTS.items_per_batch)
        )
        page.locator("#naming").select_option("regex")
        expect(page.locator("#naming-regex")).to_be_enabled()
        page.locator("#naming").select_option("imagexpress")
        page.locator("#batch-size").fill(str(batch_size))
        page.locator("#run-id").fill("page-run-1")
        expect(page.locator("#planes")).to_have_value("first")
        page.locator("#planes").select_option("max")  # no plane files here: the same fields
        screenshot(page, "new-run-options")
        page.locator("#launch-button").click()
        page.wait_for_url("**/runs/page-run-1")
        expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=240_000)
        expect(page.locator("#run-details")).to_contain_text("maximum projection of their planes")
        context.close()
    sent, map_state = recorded("page-run-1", settings)
    assert sent["naming"] == "imagexpress"
    assert sent["recipe"]["planes"] == "max"
    assert map_state["ItemBatcher"]["MaxItemsPerBatch"] == batch_size
    assert map_state["MaxConcurrency"] == DEFAULTS.max_concurrency  # left empty: the default


def test_a_bad_option_is_shown_on_the_page_and_nothing_starts(
    app: FastAPI, demo: LocalStore, browser: Browser
) -> None:
    with served(app) as url:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{url}/?token={TOKEN}")
        page.goto(f"{url}/experiments/{EXPERIMENT}/new-run?segmenter=classical")
        page.locator("#run-id").fill("v1.2")
        page.locator("#launch-button").click()
        expect(page.locator("#form-error")).to_contain_text("invalid run id 'v1.2'")
        expect(page.locator("#launch-button")).to_be_enabled()
        assert "/new-run" in page.url
        context.close()
