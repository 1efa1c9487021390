"""``plateseg serve``: binds 127.0.0.1 and prints a token URL (uvicorn replaced by a probe)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from plateseg.cli import serve as serve_module
from plateseg.settings import Settings


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> tuple[typer.Typer, dict[str, Any]]:
    seen: dict[str, Any] = {}

    def fake_run(app: Any, host: str, port: int, **kwargs: Any) -> None:
        seen.update(app=app, host=host, port=port, **kwargs)

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", fake_run)
    app = typer.Typer()
    serve_module.register(app)
    app.command("noop")(lambda: None)  # keeps "serve" a sub-command
    return app, seen


def test_serve_binds_localhost_and_prints_a_token_url(
    cli: tuple[typer.Typer, dict[str, Any]], settings: Settings
) -> None:
    app, seen = cli
    result = CliRunner().invoke(app, ["serve", "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8765)
    token = seen["app"].state.plateseg.config.web_token
    assert f"http://localhost:8765/?token={token}" in result.output.replace("\n", "")
    assert len(token) >= 24


def test_a_configured_password_replaces_the_token(
    cli: tuple[typer.Typer, dict[str, Any]], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATESEG_WEB_PASSWORD", "correct horse")
    app, seen = cli
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert seen["app"].state.plateseg.config.web_auth == "password"
    assert "token=" not in result.output
    assert "warning" in result.output


def test_serve_closes_connections_whose_headers_arrive_too_slowly(
    cli: tuple[typer.Typer, dict[str, Any]], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATESEG_WEB_HEADER_TIMEOUT", "3.5")
    app, seen = cli
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert seen["http"].header_timeout == 3.5  # the deadline protocol of plateseg.web.server
    assert seen["access_log"] is False
