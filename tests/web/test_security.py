"""Authentication, CSRF, size limits and input validation at the edge."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from plateseg.settings import Settings
from plateseg.web import WebSettings, create_app

from .conftest import TOKEN


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X1", path)


PUBLIC = frozenset({"/health", "/login"})


def test_health_needs_no_authentication(anonymous: TestClient) -> None:
    assert anonymous.get("/health").json() == {"status": "ok"}


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """``(path, methods)`` of every route, through included routers and mounts."""
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI >= 0.163 keeps included routers
            inner = route.original_router
            yield from _walk(inner.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            yield prefix + route.path + "/app.css", {"GET"}
        elif isinstance(route, APIRoute | Route):
            yield prefix + route.path, set(route.methods or {"GET"})


@pytest.fixture
def routes(app: FastAPI) -> list[tuple[str, str]]:
    """``(method, concrete path)`` of every route the app serves, HEAD left out."""
    found = sorted(
        (method, _concrete(path))
        for path, methods in _walk(app.routes)
        for method in methods
        if method != "HEAD"
    )
    assert len(found) >= 25
    return found


def test_every_other_route_refuses_anonymous_requests(
    anonymous: TestClient, routes: list[tuple[str, str]]
) -> None:
    checked = 0
    for method, path in routes:
        if path in PUBLIC:
            continue
        response = anonymous.request(method, path)
        if path.startswith("/api/") or path == "/openapi.json" or method != "GET":
            assert response.status_code == 401, (method, path)
            assert response.json() == {"detail": "authentication required"}
        else:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next=")
        checked += 1
    assert checked >= 20


def test_every_state_changing_route_needs_the_csrf_token_with_a_cookie(
    anonymous: TestClient, routes: list[tuple[str, str]]
) -> None:
    anonymous.get(f"/?token={TOKEN}")  # a browser session: the cookie alone
    changing = [(m, p) for m, p in routes if m not in ("GET", "OPTIONS") and p not in PUBLIC]
    assert len(changing) >= 5
    for method, path in changing:
        response = anonymous.request(method, path, json={})
        assert response.status_code == 403, (method, path)
        assert "CSRF" in response.json()["detail"]
        wrong = anonymous.request(method, path, json={}, headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403, (method, path)


def test_every_route_refuses_an_oversized_body_declared_or_streamed(
    settings: Settings, routes: list[tuple[str, str]]
) -> None:
    config = WebSettings(web_token=TOKEN, web_max_body=1000)
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with TestClient(create_app(settings, config)) as small:
        for method, path in routes:
            declared = small.request(method, path, content=b"{" + b" " * 5000 + b"}", headers=auth)
            assert declared.status_code == 413, (method, path)
            assert "web_max_body" in declared.json()["detail"]
            chunks = (b" " * 400 for _ in range(5))  # chunked: no Content-Length
            streamed = small.request(method, path, content=chunks, headers=auth)
            assert streamed.status_code == 413, (method, path)
            assert "larger than 1000 bytes" in streamed.json()["detail"]


def test_every_route_refuses_an_overlong_query_string(
    settings: Settings, routes: list[tuple[str, str]]
) -> None:
    config = WebSettings(web_token=TOKEN, web_max_query=200)
    with TestClient(create_app(settings, config)) as small:
        for method, path in routes:
            response = small.request(
                method, path + "?q=" + "x" * 300, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert response.status_code == 414, (method, path)
            assert "web_max_query" in response.json()["detail"]


def test_a_small_streamed_body_still_reaches_the_route(client: TestClient) -> None:
    chunks = (part for part in (b'{"params": ', b'{"min_diameter": 2}}'))
    response = client.post(
        "/api/recipes/validate", content=chunks, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text


def test_token_in_the_url_sets_a_session_cookie(anonymous: TestClient) -> None:
    response = anonymous.get(f"/?token={TOKEN}")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert "HttpOnly" in response.headers["set-cookie"]
    assert "SameSite=Strict" in response.headers["set-cookie"]
    assert anonymous.get("/api/experiments").status_code == 200


def test_wrong_token_and_wrong_bearer_are_refused(anonymous: TestClient) -> None:
    assert anonymous.get("/?token=nope").status_code == 303
    assert anonymous.get("/?token=nope").headers["location"].startswith("/login")
    response = anonymous.get("/api/experiments", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json() == {"detail": "authentication required"}


def test_cookie_requests_need_the_csrf_token_to_change_state(
    app: FastAPI, anonymous: TestClient
) -> None:
    anonymous.get(f"/?token={TOKEN}")
    body = {"recipe": {"params": {"min_diameter": 2}}}
    refused = anonymous.post("/api/recipes/validate", json=body["recipe"])
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    session = anonymous.cookies["plateseg_session"]
    csrf = app.state.plateseg.guard.csrf_token(session)
    accepted = anonymous.post(
        "/api/recipes/validate", json=body["recipe"], headers={"X-CSRF-Token": csrf}
    )
    assert accepted.status_code == 200
    page = anonymous.get("/")
    assert f'<meta name="csrf-token" content="{csrf}">' in page.text


def test_oversized_bodies_get_413(settings: Settings) -> None:
    config = WebSettings(web_token=TOKEN, web_max_body=1000)
    with TestClient(create_app(settings, config)) as small:
        response = small.post(
            "/api/recipes/validate",
            content=b"{" + b" " * 5000 + b"}",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
    assert response.status_code == 413


def test_password_login_and_safe_redirects(settings: Settings) -> None:
    config = WebSettings(web_auth="password", web_password="correct horse")
    with TestClient(create_app(settings, config), follow_redirects=False) as browser:
        assert browser.get("/?token=" + config.web_token).status_code == 303  # tokens are off
        assert browser.get("/api/experiments").status_code == 401
        bad = browser.post("/login", data={"secret": "wrong", "next": "/"})
        assert bad.headers["location"].startswith("/login?failed=true")
        good = browser.post("/login", data={"secret": "correct horse", "next": "//evil.example/"})
        assert good.status_code == 303
        assert good.headers["location"] == "/"
        assert browser.get("/api/experiments").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/experiments/..%2F..%2Fetc",
        "/api/experiments/.hidden",
        "/api/experiments/a*b",
        "/api/experiments/DEMO-W/fields/..%2Fx/w1.png",
        "/api/runs/..%2Fx",
    ],
)
def test_unsafe_ids_are_refused_without_touching_the_store(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (404, 422)
    assert "Traceback" not in response.text


def test_errors_carry_no_stack_trace(client: TestClient) -> None:
    response = client.get("/api/experiments/NOPE-1")
    assert response.status_code == 404
    assert response.json()["error"] == "NotFoundError"
    assert "NOPE-1" in response.json()["detail"]
    assert "Traceback" not in response.text


def test_every_string_in_a_path_or_query_has_a_length_limit(app: FastAPI) -> None:
    """Bodies are bounded by ``web_max_body`` for every route; URL parts by their schema."""
    unbounded = []
    parameters = 0
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                parameters += 1
                options = schema.get("anyOf", [schema])
                strings = [o for o in options if o.get("type") == "string"]
                if any("maxLength" not in o and "enum" not in o for o in strings):
                    unbounded.append(f"{method.upper()} {path} {parameter['name']}")
    assert parameters >= 20
    assert unbounded == []
