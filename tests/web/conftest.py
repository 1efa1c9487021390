"""Fixtures of the web tests: a small demo experiment with one corrupt image, the app, clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plateseg.demo import write_demo_experiment
from plateseg.settings import Settings
from plateseg.store import LocalStore
from plateseg.web import WebSettings, create_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

TOKEN = "test-token-0123456789"
EXPERIMENT = "DEMO-W"
#: Negative (column 1) and positive (column 12) controls, so Z' is defined, plus a dose well.
WELLS = ["A01", "B01", "A12", "B12", "C03", "D05"]
CORRUPT_IMAGE = "P1_C03_2"
CORRUPT_KEY = f"experiments/{EXPERIMENT}/P1/P1_C03_s2_w1.tif"


@pytest.fixture
def demo(store: LocalStore) -> LocalStore:
    """DEMO-W: 6 wells x 2 fields x 2 channels of 128 px; one nuclei image is corrupt."""
    write_demo_experiment(store, EXPERIMENT, size=128, wells=WELLS)
    store.put_bytes(CORRUPT_KEY, b"II*\x00 this is not a TIFF any more")
    return store


@pytest.fixture
def web_config() -> WebSettings:
    return WebSettings(web_token=TOKEN, web_secret="s" * 32)


@pytest.fixture
def app(settings: Settings, web_config: WebSettings) -> FastAPI:
    return create_app(settings, web_config)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """Authenticated like a script: ``Authorization: Bearer <token>``."""
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as test_client:
        yield test_client


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def finished_run(client: TestClient, app: FastAPI, demo: LocalStore) -> dict[str, Any]:
    """Start a run of DEMO-W through the API and wait for it (about 3 s)."""
    response = client.post("/api/runs", json={"experiment_id": EXPERIMENT})
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    backend = app.state.plateseg.backend
    final = backend.manager.wait(run_id, timeout=240)
    assert final.status == "SUCCEEDED", final
    progress: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
    return progress


@pytest.fixture
def page() -> Iterator[Page]:
    """A desktop-sized Chromium page (:func:`tests.web.browser.desktop_page`); browser
    modules that need another size or context define their own ``page``."""
    from .browser import desktop_page

    with desktop_page() as opened:
        yield opened
