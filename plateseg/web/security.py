"""Authentication, sessions, CSRF protection and request size limits, as one ASGI middleware.

* Every path but ``/health`` and the login page needs a session: a signed cookie set
  after the first visit with ``?token=<access token>`` (printed by ``plateseg serve``)
  or after the login form, or an ``Authorization: Bearer <token>`` header (scripts).
  Unauthenticated API calls get 401, pages a redirect to the login page.
* Sessions expire (``web_session_ttl``: the cookie's ``Max-Age`` and a server-side check
  of the signed issue time); every sign-in mints a new random session id (a session
  fixed before sign-in never becomes valid); ``POST /logout`` revokes it.
* Failed credentials (form, ``?token=``, bearer) are counted per client address: after
  ``web_login_attempts`` in ``web_login_window`` seconds the client gets 429 with
  ``Retry-After`` until the window has passed, right credential or not.
* ``web_auth="proxy"``: the identity is proven by :mod:`plateseg.web.proxy_auth` (the
  ALB's signed token, or API Gateway's authorizer claims in the Lambda event); a bare
  ``x-amzn-oidc-identity`` header proves nothing.
* State-changing requests (anything but GET/HEAD/OPTIONS) that authenticate with an
  ambient credential (the session cookie; the ALB's session cookie) must carry the CSRF
  token (``X-CSRF-Token`` header or ``csrf_token`` form field); it is derived from the
  session or the verified identity and embedded in every page. Bearer requests (and API
  Gateway's, which need an ``Authorization`` header) carry no ambient credentials.
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
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from plateseg.errors import InputError
from plateseg.web.config import WebSettings
from plateseg.web.proxy_auth import AlbVerifier, apigateway_identity

__all__ = ["SESSION_COOKIE", "BodyTooLarge", "Guard", "SecurityMiddleware", "TooManyAttempts"]

SESSION_COOKIE = "plateseg_session"
PUBLIC_PATHS = frozenset({"/health", "/login"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The header of the ALB's signed token (its unsigned sibling x-amzn-oidc-identity is ignored).
ALB_TOKEN_HEADER = b"x-amzn-oidc-data"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Clock = Callable[[], float]


class TooManyAttempts(InputError):
    """A client failed too many credentials recently (HTTP 429)."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many failed sign-in attempts; try again in {self.retry_after} s")


class Throttle:
    """Failed attempts per client in a sliding window."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        now = self.clock()
        with self._lock:
            failures = self._failures.get(client)
            if not failures:
                return 0.0
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) < self.limit:
                return 0.0
            return failures[0] + self.window - now

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > 10_000:  # forget clients whose window has passed
                for key in [k for k, v in self._failures.items() if v[-1] <= now - self.window]:
                    del self._failures[key]
            self._failures.setdefault(client, deque(maxlen=self.limit)).append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


class Guard:
    """Checks credentials; mints, checks and revokes sessions; derives CSRF tokens."""

    def __init__(self, config: WebSettings, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self._key = config.web_secret.encode()
        self.throttle = Throttle(config.web_login_attempts, config.web_login_window, clock)
        self.alb = (
            AlbVerifier(config)
            if config.web_auth == "proxy" and config.web_proxy == "alb"
            else None
        )
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

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

    def check(self, given: str, client: str) -> bool:
        """``credential_ok`` under the per-client limit of failed attempts.

        Raises
        ------
        TooManyAttempts
            ``client`` failed ``web_login_attempts`` times within ``web_login_window``.
        """
        wait = self.throttle.wait(client)
        if wait > 0:
            raise TooManyAttempts(wait)
        if self.credential_ok(given):
            self.throttle.succeeded(client)
            return True
        self.throttle.failed(client)
        return False

    def _session_payload(self, issued: int, sid: str) -> str:
        credential = self.config.web_password or self.config.web_token
        return f"{issued}.{sid}.{hashlib.sha256(credential.encode()).hexdigest()}"

    def new_session(self) -> str:
        """A fresh session: ``<issued>.<random id>.<signature>`` (bound to the credential)."""
        issued, sid = int(self.clock()), secrets.token_urlsafe(18)
        return f"{issued}.{sid}.{self._sign('session', self._session_payload(issued, sid))}"

    def session_ok(self, value: str) -> bool:
        """Signed by this secret for this credential, not expired, not signed out."""
        parts = value.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return False
        issued, sid, signature = int(parts[0]), parts[1], parts[2]
        expected = self._sign("session", self._session_payload(issued, sid))
        if not hmac.compare_digest(signature, expected):
            return False
        age = self.clock() - issued
        with self._lock:
            revoked = sid in self._revoked
        return 0 <= age < self.config.web_session_ttl and not revoked

    def revoke(self, value: str) -> None:
        """Sign ``value`` out (kept until it would have expired anyway)."""
        if not self.session_ok(value):
            return
        issued, sid, _ = value.split(".")
        now = self.clock()
        with self._lock:
            for old in [k for k, until in self._revoked.items() if until <= now]:
                del self._revoked[old]
            self._revoked[sid] = int(issued) + self.config.web_session_ttl

    def csrf_token(self, subject: str) -> str:
        """The CSRF token of a session value (or a proxy-verified identity)."""
        return self._sign("csrf", subject)

    def csrf_ok(self, value: str, subject: str) -> bool:
        return bool(value) and hmac.compare_digest(value, self.csrf_token(subject))

    def _cookie(self, value: str, max_age: int) -> str:
        secure = "; Secure" if self.config.web_secure_cookies else ""
        return (
            f"{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
            f"{secure}"
        )

    def cookie_header(self, session: str) -> bytes:
        """``Set-Cookie`` value carrying ``session`` for ``web_session_ttl`` seconds."""
        return self._cookie(session, self.config.web_session_ttl).encode()

    def clear_cookie_header(self) -> bytes:
        """``Set-Cookie`` value removing the session cookie."""
        return self._cookie("", 0).encode()


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


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


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


async def _too_many(send: Send, exc: TooManyAttempts) -> None:
    await _json(send, 429, str(exc), ((b"retry-after", str(exc.retry_after).encode()),))


def _form_field(headers: dict[bytes, bytes], body: bytes, name: str) -> str:
    kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if kind != b"application/x-www-form-urlencoded":
        return ""
    return (parse_qs(body.decode("latin-1")).get(name) or [""])[0]


class SecurityMiddleware:
    """ASGI middleware enforcing authentication, CSRF and the body size limit.

    Sets ``scope["state"]``: ``csrf_token`` (what pages embed), ``session`` (the cookie
    value, for sign-out) and ``identity`` (proxy mode: the verified ``sub``).
    """

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    def _proxy_identity(self, scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        if self.guard.alb is None:
            return apigateway_identity(scope)
        token = headers.get(ALB_TOKEN_HEADER, b"").decode("latin-1")
        claims = self.guard.alb.claims(token) if token else None
        return str(claims["sub"]) if claims else None

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
            receive, body = await _buffered(receive, limit)
        except BodyTooLarge as exc:
            await _json(send, 413, f"{exc} (web_max_body)")
            return
        state = scope.setdefault("state", {})
        state.update(csrf_token="", session="", identity="")
        if path in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return

        ambient: str | None = None  # the subject of the CSRF token, when one is needed
        if self.guard.config.web_auth == "proxy":
            identity = self._proxy_identity(scope, headers)
            authed = identity is not None
            if identity is not None:
                state["identity"] = identity
                if self.guard.alb is not None:
                    ambient = f"proxy:{identity}"
        else:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            try:
                authed = bool(bearer) and self.guard.check(bearer, _client(scope))
            except TooManyAttempts as exc:
                await _too_many(send, exc)
                return
            session = _cookie(headers)
            if not authed and self.guard.session_ok(session):
                authed, ambient = True, session
                state["session"] = session
            if not authed and method in SAFE_METHODS and self.guard.config.web_auth == "token":
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                token = (query.get("token") or [""])[0]
                try:
                    good = bool(token) and self.guard.check(token, _client(scope))
                except TooManyAttempts as exc:
                    await _too_many(send, exc)
                    return
                if good:
                    rest = {k: v for k, v in query.items() if k != "token"}
                    target = path + (("?" + urlencode(rest, doseq=True)) if rest else "")
                    cookie = self.guard.cookie_header(self.guard.new_session())
                    await _respond(
                        send, 303, b"", [(b"location", target.encode()), (b"set-cookie", cookie)]
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
        if ambient is not None:
            state["csrf_token"] = self.guard.csrf_token(ambient)
            if method not in SAFE_METHODS:
                given = headers.get(b"x-csrf-token", b"").decode("latin-1")
                given = given or _form_field(headers, body, "csrf_token")
                if not self.guard.csrf_ok(given, ambient):
                    await _json(send, 403, "missing or invalid CSRF token (X-CSRF-Token header)")
                    return
        await self.app(scope, receive, send)


async def _buffered(receive: Receive, limit: int) -> tuple[Receive, bytes]:
    """Read the whole request body (at most ``limit`` bytes) to replay it to the app.

    Returns the replaying ``receive`` and the body.

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
    whole = b"".join(chunks)
    replay: list[Message] = [{"type": "http.request", "body": whole, "more_body": False}]
    if first is not None:
        replay = [first]

    async def wrapped() -> Message:
        if replay:
            return replay.pop(0)
        return await receive()

    return wrapped, whole


class BodyTooLarge(InputError):
    """A request body exceeded ``web_max_body`` (HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
