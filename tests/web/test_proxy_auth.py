"""``web_auth="proxy"``: identity proven by the ALB's signed token or API Gateway's
authorizer claims, never by a header a client can send.

The ALB's key pair is generated here (EC P-256, as AWS uses); tokens are signed with it
the way the ALB signs ``x-amzn-oidc-data`` (ES256, ``kid`` and ``signer`` in the header).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi.testclient import TestClient
from mangum import Mangum
from pydantic import ValidationError

from plateseg.settings import Settings
from plateseg.web import WebSettings, create_app
from plateseg.web.proxy_auth import AlbVerifier

ALB_ARN = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/plateseg/50dc6c495c0c9188"
)
KID = "7e3e2b5c-1a3b-4f0e-9a51-0c6f1d3f2a10"
Sign = Callable[..., str]


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def alb_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def key_dir(tmp_path: Path, alb_key: ec.EllipticCurvePrivateKey) -> Path:
    """The ALB's public keys as AWS serves them: one PEM per key id."""
    folder = tmp_path / "alb-keys"
    folder.mkdir()
    (folder / KID).write_bytes(_pem(alb_key))
    return folder


@pytest.fixture
def sign(alb_key: ec.EllipticCurvePrivateKey) -> Sign:
    """``sign(**claims, key=, kid=, signer=)``: an ALB-style token, valid unless overridden."""

    def make(
        key: ec.EllipticCurvePrivateKey | None = None,
        kid: str = KID,
        signer: str = ALB_ARN,
        exp: float | None = None,
        **claims: Any,
    ) -> str:
        payload = {
            "sub": "scientist-1",
            "email": "a@lab.example",
            "iss": "https://cognito-idp.eu-west-1.amazonaws.com/pool",
            "exp": int(exp if exp is not None else time.time() + 120),
            **claims,
        }
        headers = {"kid": kid, "signer": signer, "client": "app-client", "typ": "JWT"}
        return jwt.encode(payload, key or alb_key, algorithm="ES256", headers=headers)

    return make


@pytest.fixture
def alb_config(key_dir: Path) -> WebSettings:
    return WebSettings(
        web_auth="proxy", web_alb_arn=ALB_ARN, web_alb_keys=str(key_dir), web_secret="s" * 32
    )


@pytest.fixture
def behind_alb(settings: Settings, alb_config: WebSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, alb_config), follow_redirects=False) as client:
        yield client


def _data(token: str) -> dict[str, str]:
    return {"x-amzn-oidc-data": token}


def test_a_token_signed_by_the_alb_is_accepted(behind_alb: TestClient, sign: Sign) -> None:
    assert behind_alb.get("/api/experiments", headers=_data(sign())).status_code == 200
    page = behind_alb.get("/", headers=_data(sign()))
    assert page.status_code == 200
    assert "Experiments" in page.text


def test_a_bare_identity_header_is_refused(behind_alb: TestClient) -> None:
    """Before: any client sending x-amzn-oidc-identity got 200 on every route."""
    spoof = {"x-amzn-oidc-identity": "scientist-1", "x-amzn-oidc-accesstoken": "x"}
    assert behind_alb.get("/api/experiments", headers=spoof).status_code == 401
    assert behind_alb.post("/api/recipes/validate", json={}, headers=spoof).status_code == 401
    assert behind_alb.get("/", headers=spoof).status_code == 303  # to the sign-in page


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda sign: sign(signer=ALB_ARN.replace("50dc", "0000")), id="other-signer"),
        pytest.param(lambda sign: sign(exp=time.time() - 5), id="expired"),
        pytest.param(
            lambda sign: sign(key=ec.generate_private_key(ec.SECP256R1())), id="wrong-key"
        ),
        pytest.param(lambda sign: sign(kid="0000aaaa-unknown"), id="unknown-kid"),
        pytest.param(lambda sign: sign(kid="../../etc/passwd"), id="path-as-kid"),
        pytest.param(lambda sign: sign(sub=""), id="no-subject"),
        pytest.param(
            lambda sign: jwt.encode(
                {"sub": "x", "exp": int(time.time()) + 60},
                None,
                algorithm="none",
                headers={"kid": KID, "signer": ALB_ARN},
            ),
            id="alg-none",
        ),
        pytest.param(
            lambda sign: jwt.encode(
                {"sub": "x", "exp": int(time.time()) + 60},
                "s" * 32,
                algorithm="HS256",
                headers={"kid": KID, "signer": ALB_ARN},
            ),
            id="hs256",
        ),
        pytest.param(lambda sign: sign()[:-4] + "AAAA", id="tampered-signature"),
        pytest.param(lambda sign: "not.a.token", id="garbage"),
    ],
)
def test_forged_tokens_are_refused(
    behind_alb: TestClient, sign: Sign, forge: Callable[[Sign], str]
) -> None:
    response = behind_alb.get("/api/experiments", headers=_data(forge(sign)))
    assert response.status_code == 401
    assert response.json() == {"detail": "authentication required"}


def test_the_identity_comes_from_the_verified_claims(alb_config: WebSettings, sign: Sign) -> None:
    claims = AlbVerifier(alb_config).claims(sign(sub="verified-sub"))
    assert claims is not None
    assert (claims["sub"], claims["email"]) == ("verified-sub", "a@lab.example")


def test_alb_tokens_with_base64_padding_verify(
    alb_config: WebSettings, alb_key: ec.EllipticCurvePrivateKey
) -> None:
    """The ALB pads its base64url segments with ``=`` (unlike most JWT libraries)."""

    def segment(data: bytes) -> bytes:
        while len(data) % 3 == 0:  # JSON allows trailing spaces; make padding certain
            data += b" "
        return base64.urlsafe_b64encode(data)  # keeps the "="

    header = {"alg": "ES256", "kid": KID, "signer": ALB_ARN, "typ": "JWT"}
    payload = {"sub": "padded", "exp": int(time.time()) + 60}
    signing_input = (
        segment(json.dumps(header).encode()) + b"." + segment(json.dumps(payload).encode())
    )
    der = alb_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big") + b"  "  # not a JSON part: no padding
    token = (signing_input + b"." + base64.urlsafe_b64encode(raw[:64])).decode()
    assert "=" in token
    claims = AlbVerifier(alb_config).claims(token)
    assert claims is not None and claims["sub"] == "padded"


def test_state_changes_still_need_the_csrf_token(behind_alb: TestClient, sign: Sign) -> None:
    """The ALB's session cookie is an ambient credential, so a verified token is not enough."""
    recipe = {"params": {"min_diameter": 2}}
    refused = behind_alb.post("/api/recipes/validate", json=recipe, headers=_data(sign()))
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    page = behind_alb.get("/", headers=_data(sign())).text
    csrf = page.split('<meta name="csrf-token" content="')[1].split('"')[0]
    assert len(csrf) == 64
    accepted = behind_alb.post(
        "/api/recipes/validate", json=recipe, headers={**_data(sign()), "X-CSRF-Token": csrf}
    )
    assert accepted.status_code == 200, accepted.text
    other = behind_alb.post(  # another user's token does not carry over
        "/api/recipes/validate",
        json=recipe,
        headers={**_data(sign(sub="someone-else")), "X-CSRF-Token": csrf},
    )
    assert other.status_code == 403


class _KeyServer(BaseHTTPRequestHandler):
    pem: bytes = b""
    asked: list[str] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        known = self.path == f"/{KID}"
        self.send_response(200 if known else 404)
        self.end_headers()
        self.wfile.write(self.pem if known else b"")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def key_url(alb_key: ec.EllipticCurvePrivateKey) -> Iterator[tuple[str, list[str]]]:
    """A key service on loopback in place of public-keys.auth.elb.<region>.amazonaws.com."""
    handler = type("Handler", (_KeyServer,), {"pem": _pem(alb_key), "asked": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{{kid}}", handler.asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_keys_are_fetched_from_the_url_template_once_per_kid(
    key_url: tuple[str, list[str]], sign: Sign
) -> None:
    template, asked = key_url
    config = WebSettings(web_auth="proxy", web_alb_arn=ALB_ARN, web_alb_keys=template)
    verifier = AlbVerifier(config)
    for _ in range(3):
        assert verifier.claims(sign()) is not None
    assert verifier.claims(sign(kid="0000aaaa-unknown")) is None
    assert asked == [f"/{KID}", "/0000aaaa-unknown"]


def test_the_default_key_source_is_the_regional_aws_endpoint(alb_config: WebSettings) -> None:
    config = alb_config.model_copy(update={"web_alb_keys": ""})
    seen: list[str] = []

    def fetch(url: str) -> bytes:
        seen.append(url)
        raise OSError("offline")

    assert AlbVerifier(config, fetch=fetch).claims(jwt_like(KID)) is None
    assert seen == [f"https://public-keys.auth.elb.eu-west-1.amazonaws.com/{KID}"]


def test_made_up_kids_cannot_keep_the_server_fetching_keys(
    key_url: tuple[str, list[str]], sign: Sign
) -> None:
    """Each unknown kid may cost a fetch of up to 5 s: a minute's budget bounds them, and
    a known key keeps verifying from the cache."""
    template, asked = key_url
    config = WebSettings(web_auth="proxy", web_alb_arn=ALB_ARN, web_alb_keys=template)
    verifier = AlbVerifier(config)
    assert verifier.claims(sign()) is not None
    for n in range(40):
        assert verifier.claims(jwt_like(f"0000aaaa-{n:04d}")) is None
    assert len(asked) == 8  # the first key and seven made-up ones, then no more fetches
    assert verifier.claims(sign()) is not None


def jwt_like(kid: str) -> str:
    header = {"alg": "ES256", "kid": kid, "signer": ALB_ARN}
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
    return f"{encoded}.e30.AAAA"


def test_proxy_mode_without_the_alb_arn_refuses_to_start() -> None:
    with pytest.raises(ValidationError, match="PLATESEG_WEB_ALB_ARN"):
        WebSettings(web_auth="proxy")


# --- API Gateway: the authorizer's claims arrive in the Lambda event -------------------


def _event(path: str, claims: dict[str, str] | None, headers: dict[str, str]) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event as API Gateway sends it to the Lambda."""
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api",
        "domainName": "api.execute-api.eu-west-1.amazonaws.com",
        "http": {
            "method": "GET",
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "192.0.2.1",
            "userAgent": "pytest",
        },
        "requestId": "r1",
        "routeKey": "ANY /{proxy+}",
        "stage": "$default",
        "timeEpoch": 0,
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.execute-api.eu-west-1.amazonaws.com", **headers},
        "requestContext": context,
        "isBase64Encoded": False,
    }


@pytest.fixture
def lambda_handler(settings: Settings) -> Mangum:
    config = WebSettings(web_auth="proxy", web_proxy="apigateway")
    return Mangum(create_app(settings, config), lifespan="off")


def test_api_gateway_requests_need_the_authorizer_claims(lambda_handler: Mangum) -> None:
    passed = lambda_handler(_event("/api/experiments", {"sub": "u-1"}, {}), None)
    assert passed["statusCode"] == 200
    page = lambda_handler(_event("/", {"sub": "u-1"}, {}), None)
    assert page["statusCode"] == 200


def test_api_gateway_requests_without_them_are_refused(lambda_handler: Mangum) -> None:
    spoof = {"x-amzn-oidc-identity": "u-1", "x-amzn-oidc-data": "a.b.c"}
    for path in ("/api/experiments", "/"):
        response = lambda_handler(_event(path, None, spoof), None)
        assert response["statusCode"] in (401, 303), path
    assert lambda_handler(_event("/api/experiments", {}, {}), None)["statusCode"] == 401
