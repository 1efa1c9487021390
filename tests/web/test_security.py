"""Authentication, CSRF, size limits and input validation at the edge."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from plateseg.settings import Settings
from plateseg.web import WebSettings, create_app

from .conftest import TOKEN


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X1", path)


def test_health_needs_no_authentication(anonymous: TestClient) -> None:
    assert anonymous.get("/health").json() == {"status": "ok"}


def _routes() -> list[APIRoute]:
    from plateseg.web.routers import experiments, health, pages, preview, results, runs

    modules = (experiments, health, pages, preview, results, runs)
    return [r for m in modules for r in m.router.routes if isinstance(r, APIRoute)]


def test_every_other_route_refuses_anonymous_requests(anonymous: TestClient) -> None:
    checked = 0
    for route in _routes():
        if route.path in ("/health", "/login"):
            continue
        for method in route.methods:
            response = anonymous.request(method, _concrete(route.path))
            if route.path.startswith("/api/") or method != "GET":
                assert response.status_code == 401, (method, route.path)
            else:
                assert response.status_code == 303, (method, route.path)
                assert response.headers["location"].startswith("/login?next=")
            checked += 1
    for path in ("/openapi.json", "/static/app.css", "/api/docs"):
        assert anonymous.get(path).status_code in (401, 303), path
    assert checked >= 15


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
    csrf = app.state.plateseg.guard.csrf_token()
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


def test_proxy_mode_requires_the_identity_of_the_fronting_provider(settings: Settings) -> None:
    config = WebSettings(web_auth="proxy")
    with TestClient(create_app(settings, config)) as behind:
        assert behind.get("/api/experiments").status_code == 401
        ok = behind.get("/api/experiments", headers={"x-amzn-oidc-identity": "scientist-1"})
        assert ok.status_code == 200


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
