"""The UI under its Content-Security-Policy in Chromium: no blocked script or style, image
ids with ``#``, ``?``, ``%`` and spaces load their thumbnails, and "Sign out" ends the
session."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from playwright.sync_api import ConsoleMessage, Page, expect

from plateseg.demo import write_demo_experiment
from plateseg.store import LocalStore

from .browser import chromium, screenshot, served
from .conftest import TOKEN

#: A plate whose name breaks unencoded URLs: "#" starts a fragment, "?" a query, "%" an escape.
ODD_PLATE = "P#1 ?%"
ODD = "ODD-1"
ENCODED_SRC = re.compile(r"/fields/P%231%20%3F%25_A01_[12]/w[12]\.png$")


@pytest.fixture
def odd_store(store: LocalStore) -> LocalStore:
    """One well of the demo, moved to a plate named ``P#1 ?%``."""
    write_demo_experiment(store, ODD, size=96, wells=["A01"])
    for info in list(store.list(f"experiments/{ODD}/P1/")):
        renamed = info.key.replace("/P1/", f"/{ODD_PLATE}/").replace("/P1_", f"/{ODD_PLATE}_")
        store.put_bytes(renamed, store.get_bytes(info.key))
    store.delete_prefix(f"experiments/{ODD}/P1/")
    return store


@pytest.fixture
def page_and_violations(
    app: FastAPI, odd_store: LocalStore
) -> Iterator[tuple[Page, str, list[str]]]:
    violations: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or (
            message.type == "error" and "Failed to load resource" not in message.text
        ):
            violations.append(message.text)

    with served(app) as url, chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("console", watch)
        page.on("pageerror", lambda error: violations.append(str(error)))
        page.on(
            "response",
            lambda r: (
                violations.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )
        yield page, url, violations
        context.close()


def test_the_ui_works_under_its_csp_with_odd_image_ids(
    page_and_violations: tuple[Page, str, list[str]],
) -> None:
    page, url, violations = page_and_violations
    page.goto(f"{url}/?token={TOKEN}")
    expect(page.locator("#experiments")).to_contain_text(ODD)

    page.goto(f"{url}/experiments/{ODD}")
    columns = page.locator(".plate").first.evaluate("p => p.style.getPropertyValue('--cols')")
    assert columns.strip() == "12"  # set by app.js, not by a (blocked) style attribute
    page.locator(".well.has").first.click()
    thumbnails = page.locator("#well-fields img")
    expect(thumbnails).to_have_count(4)
    for index in range(4):
        image = thumbnails.nth(index)
        expect(image).to_have_attribute("src", ENCODED_SRC)
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
    screenshot(page, "security-odd-ids")

    page.goto(f"{url}/experiments/{ODD}/new-run?segmenter=onnx")
    page.select_option("select#segmenter", "classical")  # the handler moved out of onchange=""
    page.wait_for_url("**segmenter=classical")

    page.goto(f"{url}/models")
    expect(page.locator("#sign-out")).to_be_visible()
    assert violations == []

    page.click("#sign-out")
    page.wait_for_url("**/login")
    page.goto(f"{url}/")
    assert "/login?next=" in page.url
    assert violations == []
