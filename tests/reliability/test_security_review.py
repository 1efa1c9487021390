"""Security review: secrets are never logged, shown or echoed; the audit allow-list.

Database passwords (URL, Secrets Manager via moto), RDS IAM tokens and the web token,
password and signing key are put through the code paths that handle them with every
plateseg/SQLAlchemy/server logger at DEBUG; no log record, exception (whole chain),
``repr`` or HTTP response may contain them. The rest of the review: SQL in
``test_security_review_sql.py``, IAM in ``test_security_review_iam.py``, web
authentication, CSRF and size limits on every route in ``tests/web/test_security.py``;
the dependency audit is ``tools/audit.sh`` (``make audit``).
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from plateseg.db import dispose_engines, get_engine
from plateseg.db.aws import aws_engine_key, create_aws_engine, read_credentials
from plateseg.db.engine import translate_errors
from plateseg.errors import DatabaseError, DatabaseUnavailableError
from plateseg.settings import Settings, use_settings
from plateseg.web import WebSettings, create_app

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "pw-Zq8-SECRET-never-logged"
TOKEN = "tok-Zq8-SECRET-never-logged"
WEB_SECRET = "key-Zq8-SECRET-never-logged-0123456789"


# --- secrets never logged --------------------------------------------------------------


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every plateseg, SQLAlchemy and web-server log record, from DEBUG up.

    botocore is left out on purpose: at DEBUG it echoes whole response bodies, secret
    values included (docs/database.md: keep it at INFO or above in production).
    """
    for name in ("plateseg", "sqlalchemy", "uvicorn", "fastapi", "starlette"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _exposed(secret: str, logs: pytest.LogCaptureFixture, *errors: BaseException) -> list[str]:
    """Where ``secret`` shows: log messages, their tracebacks, exception texts and reprs."""
    places = []
    for record in logs.records:
        text = record.getMessage() + (
            logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        )
        if secret in text:
            places.append(f"log {record.name}: {text[:120]}")
    for error in errors:
        for link in _chain(error):
            if secret in str(link) or secret in repr(link):
                places.append(f"{type(link).__name__}: {str(link)[:120]}")
    return places


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _connect_error(engine: Any) -> DatabaseUnavailableError:
    """Connect through :func:`translate_errors`; the transient error it must raise."""
    with (
        pytest.raises(DatabaseUnavailableError) as caught,
        translate_errors(engine),
        engine.connect(),
    ):
        pass
    return caught.value


def test_settings_never_show_the_database_password(logs: pytest.LogCaptureFixture) -> None:
    url = f"postgresql+psycopg://app:{PASSWORD}@db.example:5432/plateseg"
    settings = Settings(database_url=url)
    logging.getLogger("plateseg.review").debug("settings %r / %s", settings, settings)
    assert _exposed(PASSWORD, logs) == []
    assert "postgresql+psycopg://app:***@db.example:5432/plateseg" in repr(settings)
    assert settings.model_dump()["database_url"] == url  # worker processes still get it


def test_a_malformed_database_url_is_hidden_whole(logs: pytest.LogCaptureFixture) -> None:
    settings = Settings(database_url=f"postgresql://app:{PASSWORD}@db:port/x")
    assert PASSWORD not in repr(settings)
    assert "database_url='***'" in repr(settings)


def test_settings_validation_errors_do_not_echo_their_input() -> None:
    with pytest.raises(ValueError) as caught:
        WebSettings(web_max_body=f"{PASSWORD}")  # type: ignore[arg-type]
    assert "web_max_body" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_web_settings_never_show_token_password_or_signing_key() -> None:
    config = WebSettings(web_token=TOKEN, web_password=PASSWORD, web_secret=WEB_SECRET)
    shown = repr(config) + str(config)
    assert [s for s in (TOKEN, PASSWORD, WEB_SECRET) if s in shown] == []


def test_an_unreachable_database_names_the_host_not_the_password(
    settings: Settings, logs: pytest.LogCaptureFixture
) -> None:
    port = _closed_port()
    engine = get_engine(f"postgresql+psycopg://app:{PASSWORD}@127.0.0.1:{port}/plateseg")
    try:
        caught = _connect_error(engine)
    finally:
        dispose_engines()
    assert f"app@127.0.0.1:{port}/plateseg" in str(caught)
    assert _exposed(PASSWORD, logs, caught) == []
    assert PASSWORD not in repr(engine) + str(engine.url)


@pytest.fixture
def aws(fake_aws: Callable[[str], None]) -> Iterator[Any]:
    """moto for every AWS API with fake credentials; yields a Secrets Manager client."""
    fake_aws("us-east-1")
    with mock_aws():
        yield boto3.client("secretsmanager")


def _secret(client: Any, **fields: Any) -> str:
    secret = {"username": "app", "password": PASSWORD, "dbname": "plateseg", **fields}
    return str(client.create_secret(Name="rds", SecretString=json.dumps(secret))["ARN"])


def test_the_secrets_manager_password_never_shows(
    aws: Any, settings: Settings, logs: pytest.LogCaptureFixture
) -> None:
    arn = _secret(aws, host="127.0.0.1", port=_closed_port())
    value = Settings(home=settings.home, database_secret_arn=arn)
    use_settings(value)
    try:
        engine = get_engine()
        caught = _connect_error(engine)
        shown = [repr(engine), str(engine.url), aws_engine_key(value)]
        shown.append(repr(read_credentials(value)))
    finally:
        dispose_engines()
        use_settings(settings)
    assert arn in aws_engine_key(value)
    assert _exposed(PASSWORD, logs, caught) == []
    assert [text for text in shown if PASSWORD in text] == []


def test_a_secret_that_is_not_json_is_not_echoed(
    aws: Any, settings: Settings, logs: pytest.LogCaptureFixture
) -> None:
    arn = str(aws.create_secret(Name="raw", SecretString=f"password={PASSWORD}")["ARN"])
    with pytest.raises(DatabaseError) as caught:
        read_credentials(Settings(home=settings.home, database_secret_arn=arn))
    assert "is not a JSON object" in str(caught.value)
    assert _exposed(PASSWORD, logs, caught.value) == []


class _TokenSpy:
    """The real moto-backed RDS client, remembering the IAM tokens it signs."""

    def __init__(self) -> None:
        self.client = boto3.client("rds")
        self.tokens: list[str] = []

    def generate_db_auth_token(self, **kwargs: Any) -> str:
        token: str = self.client.generate_db_auth_token(**kwargs)
        self.tokens.append(token)
        return token


def test_an_iam_auth_token_never_shows(
    aws: Any, settings: Settings, logs: pytest.LogCaptureFixture
) -> None:
    arn = _secret(aws, host="127.0.0.1", port=_closed_port(), password="")
    value = Settings(home=settings.home, database_secret_arn=arn, database_iam_auth=True)
    spy = _TokenSpy()
    engine = create_aws_engine(value, rds_client=spy)
    try:
        caught = _connect_error(engine)
    finally:
        engine.dispose()
    assert spy.tokens and "X-Amz-Signature" in spy.tokens[0]
    signature = spy.tokens[0].split("X-Amz-Signature=")[1]
    assert _exposed(signature, logs, caught) == []


def test_web_credentials_never_reach_logs_or_responses(
    settings: Settings, logs: pytest.LogCaptureFixture
) -> None:
    config = WebSettings(web_auth="password", web_password=PASSWORD, web_secret=WEB_SECRET)
    app = create_app(settings, config)
    responses = []
    with TestClient(app, follow_redirects=False) as browser:
        responses.append(browser.post("/login", data={"secret": PASSWORD + "x", "next": "/"}))
        responses.append(browser.post("/login", data={"secret": PASSWORD, "next": "/"}))
        responses.append(browser.get("/api/experiments"))
        responses.append(browser.get("/api/experiments/NOPE-1"))
        responses.append(browser.get("/api/runs/no-such-run"))
        responses.append(
            browser.get("/api/experiments", headers={"Authorization": f"Bearer {PASSWORD}x"})
        )
    assert [r.status_code for r in responses[:3]] == [303, 303, 200]
    for secret in (PASSWORD, WEB_SECRET):
        assert _exposed(secret, logs) == []
        for response in responses:
            assert secret not in response.text + str(response.headers)


def test_the_access_token_leaves_the_url_after_sign_in(settings: Settings) -> None:
    app = create_app(settings, WebSettings(web_token=TOKEN))
    with TestClient(app, follow_redirects=False) as browser:
        response = browser.get(f"/api/experiments?token={TOKEN}&x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/api/experiments?x=1"
    assert TOKEN not in response.headers["set-cookie"]


# --- dependency audit ------------------------------------------------------------------


def test_the_audit_allow_list_gives_a_reason_for_every_entry() -> None:
    lines = (REPO / "audit-allowlist.txt").read_text(encoding="utf-8").splitlines()
    entries = [line for line in lines if line.strip() and not line.startswith("#")]
    for line in entries:
        vuln_id, _, reason = line.partition(" ")
        assert re.fullmatch(r"(GHSA-[\w-]+|PYSEC-\d+-\d+|CVE-\d+-\d+|GHSA|\d+)", vuln_id), line
        assert len(reason.strip()) >= 20, f"no reason for {vuln_id}"
    script = (REPO / "tools" / "audit.sh").read_text(encoding="utf-8")
    assert "audit-allowlist.txt" in script and "pip-audit" in script
