"""An experiment exported by Harmony (Operetta / Opera Phenix names) runs from the web
UI without anyone naming the convention: Lookup and the UI detect it (Chromium)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from plateseg.demo import write_demo_experiment
from plateseg.store import LocalStore
from tests.plate.test_manifest_detect import as_operetta

from .browser import chromium, screenshot, served
from .conftest import TOKEN

HARMONY = "HARMONY-1"
WELLS = ["A01", "B03", "C05"]


@pytest.fixture
def harmony(store: LocalStore) -> LocalStore:
    write_demo_experiment(store, HARMONY, size=128, wells=WELLS)
    as_operetta(store, HARMONY)
    write_demo_experiment(store, "NO-PRESET", size=64, wells=["A01"])
    for info in list(store.list("experiments/NO-PRESET/")):
        if info.key.endswith(".tif"):  # names no preset reads
            store.put_bytes(info.key.replace("_s1_w", "-site1-ch"), store.get_bytes(info.key))
            store.delete_prefix(info.key)
    return store


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_the_api_starts_a_harmony_experiment_without_a_naming(
    client: TestClient, app: FastAPI, harmony: LocalStore
) -> None:
    listed = {e["experiment_id"]: e for e in client.get("/api/experiments").json()}
    assert listed[HARMONY]["naming"] == "operetta"
    assert listed[HARMONY]["fields"] == 2 * len(WELLS)
    assert listed["NO-PRESET"]["fields"] == 0
    assert "no preset reads all" in listed["NO-PRESET"]["naming_reason"]
    started = client.post(
        "/api/runs", json={"experiment_id": HARMONY, "recipe": {"channels": {"nuclei": "ch1"}}}
    )
    assert started.status_code == 202, started.text
    final = app.state.plateseg.backend.manager.wait(started.json()["run_id"], timeout=240)
    assert final.status == "SUCCEEDED", final


def test_the_new_run_page_runs_a_harmony_experiment(
    app: FastAPI, harmony: LocalStore, browser: Browser
) -> None:
    with served(app) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page: Page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{url}/?token={TOKEN}")
        row = page.locator("#experiments tr", has_text=HARMONY)
        expect(row.locator("td.naming")).to_contain_text("operetta")
        expect(page.locator("#experiments tr", has_text="NO-PRESET")).to_contain_text(
            "no field read"
        )
        screenshot(page, "naming-detected")
        page.get_by_role("link", name=HARMONY).click()
        page.locator("#new-run").click()
        expect(page.locator("#channel-nuclei")).to_have_value("ch1")
        page.locator("#launch-button").click()
        page.wait_for_url("**/runs/*")
        expect(page.locator("#run-status")).to_have_text("succeeded", timeout=240_000)
        context.close()
