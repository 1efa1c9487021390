"""Who a fronting identity provider signed in: proven, never read from a bare header.

Two deployments put sign-in in front of the app (``web_auth="proxy"``):

* **ALB with OIDC** (``web_proxy="alb"``). The load balancer adds ``x-amzn-oidc-data``, an
  ES256 JWT whose header names the key (``kid``) and the load balancer (``signer``). It
  is verified here against the ALB's public key (fetched once per ``kid`` from
  ``https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`` or a configured source):
  signature, algorithm ES256 only, ``signer`` equal to ``web_alb_arn``, ``exp`` in the
  future. The identity is the verified ``sub`` claim; ``x-amzn-oidc-identity`` (an
  unsigned copy any client can send) is ignored.
* **API Gateway HTTP API with a JWT authorizer on every route** (``web_proxy="apigateway"``).
  API Gateway verifies the Cognito token and hands the Lambda an event whose
  ``requestContext.authorizer.jwt.claims`` hold the verified claims; Mangum passes that
  event as ``scope["aws.event"]``. No HTTP client can write into it (only a principal
  allowed to invoke the function could), so a request is accepted only when it is there.
"""

from __future__ import annotations

import collections
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from plateseg.web.config import WebSettings

__all__ = ["AWS_KEY_URL", "AlbVerifier", "apigateway_identity"]

#: Where AWS publishes the public keys of ALB-signed tokens.
AWS_KEY_URL = "https://public-keys.auth.elb.{region}.amazonaws.com/{kid}"
#: Key ids are UUIDs; anything else (a path, a URL) is refused before any fetch.
_KID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
#: Keys kept per verifier (ALB keys rotate rarely; a flood of made-up kids cannot grow it).
_MAX_KEYS = 16
#: Key fetches per verifier per minute: an ALB uses a handful of keys, so tokens with
#: made-up kids cannot make the server wait on the key service again and again (each
#: fetch may block up to its 5 s timeout); beyond the budget an unknown kid is refused.
_FETCHES_PER_MINUTE = 8

KeyFetcher = Callable[[str], bytes]


def _fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read(16_384)
    return body


class AlbVerifier:
    """Verifies ALB-signed ``x-amzn-oidc-data`` tokens; returns the verified claims.

    Parameters
    ----------
    config : WebSettings
        ``web_alb_arn`` (the only accepted signer, and the region) and ``web_alb_keys``.
    fetch : callable, optional
        ``url -> PEM bytes`` for URL key sources (``urllib`` by default).
    """

    def __init__(self, config: WebSettings, fetch: KeyFetcher = _fetch_url) -> None:
        self.signer = config.web_alb_arn
        self.region = config.alb_region
        self.source = config.web_alb_keys or AWS_KEY_URL
        self._fetch = fetch
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._fetched: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def _may_fetch(self) -> bool:
        """Spend one of the minute's key fetches (caller holds no lock)."""
        now = time.monotonic()
        with self._lock:
            while self._fetched and now - self._fetched[0] > 60.0:
                self._fetched.popleft()
            if len(self._fetched) >= _FETCHES_PER_MINUTE:
                return False
            self._fetched.append(now)
            return True

    def _load(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        with self._lock:
            cached = self._keys.get(kid)
        if cached is not None:
            return cached
        if "{kid}" in self.source and not self._may_fetch():
            return None
        try:
            if "{kid}" in self.source:
                pem = self._fetch(self.source.format(kid=kid, region=self.region))
            else:
                pem = (Path(self.source) / kid).read_bytes()
            key = load_pem_public_key(pem)
        except Exception:  # unknown kid, unreachable key service, not a PEM: no identity
            return None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return None
        with self._lock:
            if len(self._keys) >= _MAX_KEYS:
                self._keys.pop(next(iter(self._keys)))
            self._keys[kid] = key
        return key

    def claims(self, token: str) -> dict[str, Any] | None:
        """The verified claims of ``token``, or None when any check fails."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        kid = header.get("kid")
        if header.get("alg") != "ES256" or header.get("signer") != self.signer:
            return None
        if not isinstance(kid, str) or not _KID.fullmatch(kid):
            return None
        key = self._load(kid)
        if key is None:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=["ES256"], options={"require": ["exp", "sub"]}
            )
        except jwt.PyJWTError:
            return None
        return claims if isinstance(claims.get("sub"), str) and claims["sub"] else None


def apigateway_identity(scope: Mapping[str, Any]) -> str | None:
    """``sub`` of the claims API Gateway's JWT authorizer verified, or None.

    Only the Lambda event (``scope["aws.event"]``, set by Mangum) is read; headers never.
    """
    event = scope.get("aws.event")
    if not isinstance(event, dict):
        return None
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    jwt_part = authorizer.get("jwt") if isinstance(authorizer, dict) else None
    claims = jwt_part.get("claims") if isinstance(jwt_part, dict) else None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and sub else None
