"""``plateseg serve``: the web UI on this machine, behind a one-time access token."""

from __future__ import annotations

import typer
from rich.text import Text

from plateseg.cli.output import console

__all__ = ["register", "serve"]


def serve(
    host: str = typer.Option(
        "127.0.0.1", help="Interface to bind (127.0.0.1 = this machine only)."
    ),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(0, min=0, help="Worker processes per run (0 = one per core)."),
) -> None:
    """Serve the web UI; prints a URL with a random access token (or uses PLATESEG_WEB_PASSWORD)."""
    from plateseg.settings import get_settings
    from plateseg.web import WebSettings, create_app
    from plateseg.web.server import run

    settings = get_settings()
    if workers:
        settings = settings.model_copy(update={"workers": workers})
    config = WebSettings()
    if config.web_password and config.web_auth == "token":
        config = config.model_copy(update={"web_auth": "password"})
    app = create_app(settings, config)
    shown = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
    if host not in ("127.0.0.1", "::1", "localhost"):
        console.print(
            Text.assemble(
                ("warning:", "yellow"),
                f" serving on {host}: anyone who can reach it may try to sign in",
            )
        )
    if config.web_auth == "token":
        console.print(
            f"plateseg is serving {settings.store_location}\n  open: http://{shown}:{port}/?token={config.web_token}"
        )
    else:
        console.print(
            f"plateseg is serving {settings.store_location} on "
            f"http://{shown}:{port}/ ({config.web_auth} sign-in)"
        )
    run(app, host=host, port=port, header_timeout=config.web_header_timeout)


def register(app: typer.Typer) -> None:
    """Add ``plateseg serve`` to the CLI."""
    app.command("serve")(serve)
