"""Errors to HTTP: typed plateseg errors become status codes with readable messages.

``NotFoundError`` → 404, ``ResumeError`` → 409, ``BodyTooLarge`` → 413, other
``InputError`` / ``ImageError`` → 422 (with ``fields`` naming each bad recipe
parameter), ``TransientError`` → 503, any other error → 500 without internals. Pages get
the same message in an HTML page. :class:`RunsBusy` is the 429 of admission control
(:mod:`plateseg.web.admission`).
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from plateseg.errors import (
    ImageError,
    InputError,
    NotFoundError,
    PlatesegError,
    ResumeError,
    TransientError,
)
from plateseg.web.security import BodyTooLarge

__all__ = ["RunsBusy", "field_messages", "install_error_handlers", "status_for"]

log = logging.getLogger("plateseg.web")
_FIELD = re.compile(
    r"(?:recipe\.params|recipe|input\.recipe\.params|input\.recipe)\.([\w.]+): ([^;]+)"
)


class RunsBusy(HTTPException):
    """429: the server already runs and queues as many runs as it accepts."""

    def __init__(self, active: int, queued: int, retry_after: int) -> None:
        super().__init__(
            status_code=429,
            detail=(
                f"this server is busy: {active} runs running and {queued} queued "
                "(limits web_max_active_runs / web_max_queued_runs); "
                f"try again in {retry_after} s"
            ),
            headers={"Retry-After": str(retry_after)},
        )


def status_for(exc: PlatesegError) -> int:
    """The HTTP status of a plateseg error."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ResumeError):
        return 409
    if isinstance(exc, BodyTooLarge):
        return 413
    if isinstance(exc, InputError | ImageError):
        return 422
    if isinstance(exc, TransientError):
        return 503
    return 500


def field_messages(message: str) -> dict[str, str]:
    """``{"min_diameter": "Input should be greater than 1"}`` from a recipe error message."""
    return {name: text.strip() for name, text in _FIELD.findall(message)}


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def _html(request: Request, status: int, message: str) -> Response:
    templates = request.app.state.plateseg.templates
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(PlatesegError)
    async def plateseg_error(request: Request, exc: PlatesegError) -> Response:
        status = status_for(exc)
        message = (
            str(exc)
            if status < 500 or isinstance(exc, TransientError)
            else (f"{type(exc).__name__}: {exc}")
        )
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, message)
        if _wants_html(request):
            return _html(request, status, message)
        body: dict[str, object] = {"detail": message, "error": type(exc).__name__}
        fields = field_messages(message)
        if fields:
            body["fields"] = fields
        headers = {"Retry-After": "5"} if status == 503 else None
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        message = "internal error: the server log has the details"
        if _wants_html(request):
            return _html(request, 500, message)
        return JSONResponse({"detail": message, "error": "InternalError"}, status_code=500)
