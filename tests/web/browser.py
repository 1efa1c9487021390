"""What the Playwright tests share: the app served on loopback, Debian's Chromium,
full-page screenshots in ``test-artifacts/``, and scribbles painted with the mouse on the
Models page's canvas."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextlib.contextmanager
def served(app: FastAPI, **options: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free port of 127.0.0.1, in a thread; yields its URL.

    ``options`` go to :class:`uvicorn.Config` (``access_log``, ``http``, ...).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    options = {"log_level": "warning", "lifespan": "off", **options}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **options)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium (``apt-get install -y chromium``) under Playwright."""
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is required: apt-get install -y chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextlib.contextmanager
def desktop_page(width: int = 1440, height: int = 1000) -> Iterator[Page]:
    """A page of a fresh Chromium at a desktop size, 20 s default timeout."""
    with chromium() as browser:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            context.close()


def screenshot(page: Page, name: str) -> None:
    """A full-page screenshot as ``test-artifacts/<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def truth_strokes(truth: np.ndarray) -> dict[str, list[tuple[float, ...]]]:
    """Short strokes (x0, y0, x1, y1 in image pixels) inside the five largest true nuclei
    of a (Y, X) label image and in its clear background: what a scientist paints."""
    from scipy import ndimage as ndi

    nuclei = []
    index = np.arange(1, int(truth.max()) + 1)
    areas = ndi.sum_labels(np.ones_like(truth), truth, index)
    for label in index[np.argsort(areas)[::-1][:5]]:
        rows, cols = np.nonzero(truth == label)
        y, x = float(np.median(rows)), float(np.median(cols))
        inside = cols[rows == int(y)]
        half = max(1.0, (inside.max() - inside.min()) * 0.25)
        nuclei.append((x - half, y, x + half, y))
    clear = ndi.distance_transform_edt(truth == 0)
    clear[:20], clear[-20:], clear[:, :20], clear[:, -20:] = 0, 0, 0, 0
    background = []
    while len(background) < 6 and clear.max() >= 8:
        y, x = np.unravel_index(int(np.argmax(clear)), clear.shape)
        reach = min(float(clear[y, x]) - 5, 14.0)
        background.append((x - reach, float(y), x + reach, float(y)))
        clear[max(0, y - 24) : y + 24, max(0, x - 24) : x + 24] = 0
    return {"nuclei": nuclei, "background": background}


def paint(page: Page, lines: list[tuple[float, ...]], size: int) -> None:
    """Drag the mouse along ``lines`` (image pixels of a ``size``-pixel field) on the
    Models page's canvas, scrolled fully into view."""
    page.evaluate("document.querySelector('#scribble-canvas').scrollIntoView({block: 'center'})")
    box = page.locator("#scribble-canvas").bounding_box()
    viewport = page.viewport_size
    assert box is not None and box["width"] > size
    assert viewport is not None and box["y"] >= 0
    assert box["y"] + box["height"] <= viewport["height"]  # all of it on screen
    scale = box["width"] / size
    for x0, y0, x1, y1 in lines:
        page.mouse.move(box["x"] + x0 * scale, box["y"] + y0 * scale)
        page.mouse.down()
        page.mouse.move(box["x"] + x1 * scale, box["y"] + y1 * scale, steps=6)
        page.mouse.up()
