"""The FastAPI app factory: JSON API, server-rendered pages, static files, security.

>>> from plateseg.web import create_app  # doctest: +SKIP
>>> app = create_app()  # doctest: +SKIP
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from plateseg.settings import Settings, get_settings
from plateseg.web.config import WebSettings
from plateseg.web.errors import install_error_handlers
from plateseg.web.headers import SecurityHeadersMiddleware, redact_token_in_logs
from plateseg.web.routers import (
    biology,
    compare,
    experiments,
    finetune,
    health,
    layouts,
    models,
    pages,
    preview,
    results,
    runs,
)
from plateseg.web.security import Guard, SecurityMiddleware
from plateseg.web.state import HERE, AppState

__all__ = ["create_app"]


def _fmt(value: object, digits: int = 3) -> str:
    """Readable numbers in templates: 3 significant digits, thousands separators."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "\u2013"
        return f"{value:,.{digits}g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def create_app(settings: Settings | None = None, config: WebSettings | None = None) -> FastAPI:
    """Build the web app.

    Parameters
    ----------
    settings : Settings, optional
        Store, database and engine settings (the ones in force by default).
    config : WebSettings, optional
        Authentication and backend choice (``PLATESEG_*`` environment by default).

    Returns
    -------
    FastAPI
        ``app.state.plateseg`` holds the :class:`AppState`; the access token is
        ``app.state.plateseg.config.web_token``. The token is redacted from the
        uvicorn and app logs once the app exists (it is shown once, by ``plateseg serve``).
    """
    settings = settings or get_settings()
    config = config or WebSettings()
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["fmt"] = _fmt
    guard = Guard(config)
    app = FastAPI(
        title="plateseg",
        summary="Segment microscopy experiments: experiments, previews, runs and results.",
        version="1",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.plateseg = AppState(
        settings=settings, config=config, guard=guard, templates=templates
    )
    install_error_handlers(app)
    for module in (
        health,
        experiments,
        layouts,
        preview,
        runs,
        results,
        biology,
        compare,
        models,
        finetune,
        pages,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(SecurityMiddleware, guard=guard)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: 401/413 answers get them too
    if config.web_auth == "token":
        redact_token_in_logs(config.web_token)
    return app
