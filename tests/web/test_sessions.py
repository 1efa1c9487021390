"""Sessions expire and rotate, sign-out revokes them, failed sign-ins are rate-limited,
and the access token stays out of the logs."""

from __future__ import annotations

import http.client
import logging
import time

from fastapi import FastAPI
from fastapi.testclient import TestClient

from plateseg.settings import Settings
from plateseg.web import WebSettings, create_app
from plateseg.web.security import SESSION_COOKIE

from .browser import served
from .conftest import TOKEN


def _csrf(page: str) -> str:
    return page.split('<meta name="csrf-token" content="')[1].split('"')[0]


def test_the_session_cookie_expires(settings: Settings) -> None:
    config = WebSettings(web_token=TOKEN, web_session_ttl=1)
    with TestClient(create_app(settings, config), follow_redirects=False) as browser:
        signed_in = browser.get(f"/?token={TOKEN}")
        assert "Max-Age=1;" in signed_in.headers["set-cookie"]
        stolen = browser.cookies[SESSION_COOKIE]
        assert browser.get("/api/experiments").status_code == 200
        time.sleep(1.2)
        browser.cookies.clear()
        browser.cookies.set(SESSION_COOKIE, stolen)
        assert browser.get("/api/experiments").status_code == 401


def test_every_sign_in_mints_a_new_session(anonymous: TestClient) -> None:
    """A cookie planted before sign-in (session fixation) never becomes a valid session."""
    anonymous.cookies.set(SESSION_COOKIE, "0.planted.0")
    first = anonymous.get(f"/?token={TOKEN}").headers["set-cookie"]
    anonymous.cookies.clear()
    second = anonymous.get(f"/?token={TOKEN}").headers["set-cookie"]
    assert first.split(";")[0] != second.split(";")[0]
    with TestClient(anonymous.app) as other:
        other.cookies.set(SESSION_COOKIE, "0.planted.0")
        assert other.get("/api/experiments").status_code == 401


def test_sign_out_revokes_the_session(anonymous: TestClient) -> None:
    anonymous.get(f"/?token={TOKEN}")
    session = anonymous.cookies[SESSION_COOKIE]
    page = anonymous.get("/")
    assert 'action="/logout"' in page.text
    assert anonymous.post("/logout").status_code == 403  # CSRF-checked like any POST
    out = anonymous.post("/logout", data={"csrf_token": _csrf(page.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert "Max-Age=0" in out.headers["set-cookie"]
    anonymous.cookies.clear()
    anonymous.cookies.set(SESSION_COOKIE, session)  # the old cookie, replayed
    assert anonymous.get("/api/experiments").status_code == 401


def test_failed_passwords_are_rate_limited(settings: Settings) -> None:
    config = WebSettings(web_auth="password", web_password="correct horse", web_login_attempts=3)
    with TestClient(create_app(settings, config), follow_redirects=False) as browser:
        for _ in range(3):
            wrong = browser.post("/login", data={"secret": "guess", "next": "/"})
            assert wrong.status_code == 303
        limited = browser.post("/login", data={"secret": "correct horse", "next": "/"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        assert "Too many failed attempts" in limited.text
        assert SESSION_COOKIE not in browser.cookies


def test_failed_tokens_in_the_url_and_bearer_are_rate_limited(settings: Settings) -> None:
    config = WebSettings(web_token=TOKEN, web_login_attempts=2, web_login_window=1)
    with TestClient(create_app(settings, config), follow_redirects=False) as client:
        assert client.get("/?token=guess-1").status_code == 303
        bearer = client.get("/api/experiments", headers={"Authorization": "Bearer guess-2"})
        assert bearer.status_code == 401
        limited = client.get(f"/?token={TOKEN}")
        assert limited.status_code == 429
        assert "too many failed sign-in attempts" in limited.json()["detail"]
        also = client.get("/api/experiments", headers={"Authorization": f"Bearer {TOKEN}"})
        assert also.status_code == 429
        time.sleep(1.1)  # the window passes
        assert client.get(f"/?token={TOKEN}").status_code == 303


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_the_token_is_not_written_to_the_access_log(app: FastAPI) -> None:
    """Even with uvicorn's access log on (``uvicorn --access-log``), the token is redacted."""
    lines = _Lines()
    access = logging.getLogger("uvicorn.access")
    with served(app, log_level="info", access_log=True) as url:
        access.addHandler(lines)  # after uvicorn configured its logging
        try:
            connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
            connection.request("GET", f"/experiments/X?token={TOKEN}&a=1")
            assert connection.getresponse().status == 303  # no redirect followed
            connection.close()
        finally:
            access.removeHandler(lines)
    logged = "\n".join(lines.lines)
    assert "/experiments/X?token=[redacted]&a=1" in logged
    assert TOKEN not in logged
