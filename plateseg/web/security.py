"""Authentication, CSRF protection and request size limits, as one ASGI middleware.

* Every path but ``/health`` and the login page needs a session: a signed cookie set
  after the first visit with ``?token=<access token>`` (printed by ``plateseg serve``)
  or after the login form, or an ``Authorization: Bearer <token>`` header (scripts).
  Unauthenticated API calls get 401, pages a redirect to the login page.
* State-changing requests (anything but GET/HEAD/OPTIONS) that authenticate with the
  cookie must carry the CSRF token (``X-CSRF-Token`` header or ``csrf_token`` form
  field); it is derived from the session, embedded in every page. Bearer requests
  carry no ambient credentials and need none.
* Size limits, for every route (present and future) alike: a request body larger than
  ``web_max_body`` gets 413, whether it declares its ``Content-Length`` or streams
  chunks (the body is read, up to the limit, before any route sees it); a query string
  longer than ``web_max_query`` gets 414. Both answer with a JSON ``detail`` naming the
  limit, before authentication, so an anonymous client cannot make the server buffer
  more than the limit either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from plateseg.errors import InputError
from plateseg.web.config import WebSettings

__all__ = ["SESSION_COOKIE", "BodyTooLarge", "Guard", "SecurityMiddleware"]

SESSION_COOKIE = "plateseg_session"
PUBLIC_PATHS = frozenset({"/health", "/login"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PROXY_IDENTITY_HEADERS = (b"x-amzn-oidc-identity", b"x-amzn-oidc-data")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Guard:
    """Checks credentials and mints the session cookie and the CSRF token."""

    def __init__(self, config: WebSettings) -> None:
        self.config = config
        self._key = config.web_secret.encode()

    def _sign(self, purpose: str, value: str = "") -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def credential_ok(self, given: str) -> bool:
        """Whether ``given`` is the access token (token mode) or the password."""
        expected = (
            self.config.web_password
            if self.config.web_auth == "password"
            else self.config.web_token
        )
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())

    def session_value(self) -> str:
        """The cookie value proving a successful login (bound to the secret and credential)."""
        credential = self.config.web_password or self.config.web_token
        return self._sign("session", hashlib.sha256(credential.encode()).hexdigest())

    def session_ok(self, value: str) -> bool:
        return bool(value) and hmac.compare_digest(value, self.session_value())

    def csrf_token(self) -> str:
        """The CSRF token pages embed and state-changing cookie requests must send."""
        return self._sign("csrf", self.session_value())

    def csrf_ok(self, value: str) -> bool:
        return bool(value) and hmac.compare_digest(value, self.csrf_token())

    def cookie_header(self) -> bytes:
        secure = "; Secure" if self.config.web_secure_cookies else ""
        return (
            f"{SESSION_COOKIE}={self.session_value()}; Path=/; HttpOnly; SameSite=Strict{secure}"
        ).encode()


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


def _cookie(headers: dict[bytes, bytes]) -> str:
    raw = headers.get(b"cookie", b"").decode("latin-1")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed cookie header is simply no session
        return ""
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else ""


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(
    send: Send, status: int, detail: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await _respond(send, status, body, [(b"content-type", b"application/json"), *extra])


class SecurityMiddleware:
    """ASGI middleware enforcing authentication, CSRF and the body size limit."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    def _proxy_ok(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        if any(headers.get(name) for name in PROXY_IDENTITY_HEADERS):
            return True
        event = scope.get("aws.event") or {}
        context = event.get("requestContext") if isinstance(event, dict) else None
        return bool(isinstance(context, dict) and context.get("authorizer"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET").upper()
        headers = _headers(scope)
        limit = self.guard.config.web_max_body
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > limit:
            await _json(send, 413, f"request body larger than {limit} bytes (web_max_body)")
            return
        query_limit = self.guard.config.web_max_query
        if len(scope.get("query_string", b"")) > query_limit:
            await _json(send, 414, f"query string longer than {query_limit} bytes (web_max_query)")
            return
        try:
            receive = await _buffered(receive, limit)
        except BodyTooLarge as exc:
            await _json(send, 413, f"{exc} (web_max_body)")
            return
        if path in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return

        via_cookie = False
        if self.guard.config.web_auth == "proxy":
            authed = self._proxy_ok(scope, headers)
        else:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            authed = bool(bearer) and self.guard.credential_ok(bearer)
            if not authed:
                authed = via_cookie = self.guard.session_ok(_cookie(headers))
            if not authed and method in SAFE_METHODS and self.guard.config.web_auth == "token":
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                token = (query.get("token") or [""])[0]
                if token and self.guard.credential_ok(token):
                    rest = {k: v for k, v in query.items() if k != "token"}
                    target = path + (("?" + urlencode(rest, doseq=True)) if rest else "")
                    await _respond(
                        send,
                        303,
                        b"",
                        [
                            (b"location", target.encode()),
                            (b"set-cookie", self.guard.cookie_header()),
                        ],
                    )
                    return
        if not authed:
            if path.startswith("/api/") or path == "/openapi.json" or method not in SAFE_METHODS:
                await _json(
                    send, 401, "authentication required", ((b"www-authenticate", b"Bearer"),)
                )
            else:
                query = scope.get("query_string", b"").decode("latin-1")
                target = path + (f"?{query}" if query else "")
                location = f"/login?next={quote(target, safe='')}"
                await _respond(send, 303, b"", [(b"location", location.encode())])
            return
        if via_cookie and method not in SAFE_METHODS:
            token = headers.get(b"x-csrf-token", b"").decode("latin-1")
            if not self.guard.csrf_ok(token):
                await _json(send, 403, "missing or invalid CSRF token (X-CSRF-Token header)")
                return
        await self.app(scope, receive, send)


async def _buffered(receive: Receive, limit: int) -> Receive:
    """Read the whole request body (at most ``limit`` bytes) and replay it to the app.

    Raises
    ------
    BodyTooLarge
        The chunks add up to more than ``limit`` bytes (a chunked upload declares no
        ``Content-Length``, or declares a false one).
    """
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message.get("type") != "http.request":  # disconnect: hand it on as it came
            first: Message | None = message
            break
        body = message.get("body", b"")
        seen += len(body)
        if seen > limit:
            raise BodyTooLarge(limit)
        chunks.append(body)
        if not message.get("more_body", False):
            first = None
            break
    replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
    if first is not None:
        replay = [first]

    async def wrapped() -> Message:
        if replay:
            return replay.pop(0)
        return await receive()

    return wrapped


class BodyTooLarge(InputError):
    """A request body exceeded ``web_max_body`` (HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
