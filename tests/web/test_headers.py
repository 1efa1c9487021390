"""Security headers on every answer, and connections that send headers too slowly."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plateseg.store import LocalStore
from plateseg.web.server import header_timeout_protocol

from .browser import served
from .conftest import EXPERIMENT


def _assert_hardened(headers: Mapping[str, str], path: str) -> None:
    csp = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, path
    assert "script-src 'self';" in csp, path
    assert "unsafe-inline" not in csp, path
    assert headers.get("x-frame-options") == "DENY", path
    assert headers.get("x-content-type-options") == "nosniff", path
    assert headers.get("referrer-policy") == "no-referrer", path


def test_pages_api_answers_and_refusals_carry_the_security_headers(
    client: TestClient, anonymous: TestClient, demo: LocalStore
) -> None:
    for path in ("/", f"/experiments/{EXPERIMENT}", "/api/experiments", "/api/nope"):
        response = client.get(path)
        _assert_hardened(response.headers, path)
        assert response.headers["cache-control"] == "no-store", path
    for response in (
        anonymous.get("/api/experiments"),
        anonymous.get("/"),
        anonymous.get("/login"),
    ):
        _assert_hardened(response.headers, str(response.url))
        assert response.headers["cache-control"] == "no-store"


def test_static_assets_may_be_cached_and_thumbnails_keep_their_policy(
    client: TestClient, demo: LocalStore
) -> None:
    css = client.get("/static/app.css")
    _assert_hardened(css.headers, "/static/app.css")
    assert css.headers.get("cache-control") != "no-store"
    thumbnail = client.get(f"/api/experiments/{EXPERIMENT}/fields/P1_A01_1/w1.png")
    assert thumbnail.status_code == 200
    assert thumbnail.headers["cache-control"] == "private, max-age=300"


def test_the_login_page_styles_carry_the_nonce_of_its_policy(anonymous: TestClient) -> None:
    page = anonymous.get("/login")
    nonce = page.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in page.text
    again = anonymous.get("/login").headers["content-security-policy"]
    assert f"'nonce-{nonce}'" not in again  # one per response


@pytest.fixture
def deadline_server(app: FastAPI) -> Iterator[str]:
    with served(app, http=header_timeout_protocol(0.5)) as url:
        yield url


def _open(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _closed_after(sock: socket.socket, trickle: float, limit: float) -> float | None:
    """Send header lines every ``trickle`` s; seconds until the server closed, or None."""
    start = time.monotonic()
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    sock.settimeout(trickle)
    while time.monotonic() - start < limit:
        try:
            if sock.recv(1024) == b"":
                return time.monotonic() - start
        except TimeoutError:
            pass
        except ConnectionResetError:  # closed by a reset rather than a FIN: closed all the same
            return time.monotonic() - start
        try:
            sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            return time.monotonic() - start
    return None


def test_a_connection_sending_headers_slowly_is_closed(deadline_server: str) -> None:
    with _open(deadline_server) as sock:
        closed = _closed_after(sock, trickle=0.1, limit=4.0)
    assert closed is not None and closed < 2.0


def test_without_the_deadline_uvicorn_waits_for_slow_headers(app: FastAPI) -> None:
    """What the deadline changes: uvicorn's own protocol keeps the trickle open."""
    with served(app) as url, _open(url) as sock:
        assert _closed_after(sock, trickle=0.1, limit=1.5) is None


def _response(sock: socket.socket) -> bytes:
    """One whole HTTP response (headers and ``Content-Length`` body), however TCP splits it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, body
        body += chunk
    return head + b"\r\n\r\n" + body


def test_prompt_requests_are_served_under_the_deadline(deadline_server: str) -> None:
    with _open(deadline_server) as sock:
        for _ in range(2):  # the deadline is re-armed for the next request on the connection
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = _response(sock)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
            time.sleep(0.3)
