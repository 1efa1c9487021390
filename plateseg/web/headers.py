"""Response headers every answer carries, and redaction of the access token in logs.

* ``Content-Security-Policy``: scripts and styles only from this origin (no inline
  script at all; the login page's one inline stylesheet carries the request's nonce),
  images also from ``data:``/``blob:`` (overlays, the scribble canvas), no plugins, no
  ``<base>``, forms post only here, and no framing (``frame-ancestors 'none'``, with
  ``X-Frame-Options: DENY`` for older browsers). The API docs page (Swagger UI from
  jsDelivr with an inline bootstrap script) gets its own, looser policy.
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (a ``?token=``
  URL never leaks through ``Referer``), ``Cross-Origin-Opener-Policy: same-origin``.
* ``Cache-Control: no-store`` on everything but static assets, unless the route chose
  its own (thumbnails: ``private, max-age=300``).
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from plateseg.web.security import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "SecurityHeadersMiddleware", "TokenRedactor", "redact_token_in_logs"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATH = "/api/docs"

_FIXED = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP response; sets ``scope["state"]["csp_nonce"]``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        path: str = scope.get("path", "")
        policy = DOCS_CSP if path == DOCS_PATH else CSP.format(nonce=nonce)
        cacheable = path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(b"content-security-policy", policy.encode()), *_FIXED]
                if not cacheable:
                    extra.append((b"cache-control", b"no-store"))
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TokenRedactor(logging.Filter):
    """Replaces the access token, and any ``token=`` query value, in log records."""

    _QUERY = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)

    def __init__(self, token: str) -> None:
        super().__init__("plateseg-token-redactor")
        self.token = token

    def _clean(self, text: str) -> str:
        text = self._QUERY.sub(r"\1[redacted]", text)
        return text.replace(self.token, "[redacted]") if self.token else text

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place: the message and each string argument (formatters such as
        uvicorn's access formatter unpack the arguments, so their number is kept)."""
        if isinstance(record.msg, str):
            record.msg = self._clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: self._clean(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


#: Loggers that may see request lines: uvicorn's access and error logs, the app's own.
REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "plateseg.web")


def redact_token_in_logs(token: str, loggers: Any = REDACTED_LOGGERS) -> None:
    """Install a :class:`TokenRedactor` on ``loggers`` (replacing an earlier one)."""
    for name in loggers:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, TokenRedactor)]:
            logger.removeFilter(old)
        logger.addFilter(TokenRedactor(token))
