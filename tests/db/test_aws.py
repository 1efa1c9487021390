"""RDS connections: Secrets Manager (moto), RDS Proxy host, TLS required, IAM tokens."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from moto import mock_aws

from plateseg.db import dispose_engines, get_engine, upgrade
from plateseg.db.aws import create_aws_engine, read_credentials
from plateseg.errors import DatabaseError, DatabaseUnavailableError
from plateseg.settings import Settings, use_settings
from tests.postgres import PostgresServer

PASSWORD = "Sup3r-Secret-Pw"


@pytest.fixture
def aws(fake_aws: Callable[[str], None]) -> Iterator[Any]:
    """moto for every AWS API, with fake credentials; yields a Secrets Manager client."""
    fake_aws("us-east-1")
    with mock_aws():
        yield boto3.client("secretsmanager")


def _secret(client: Any, **fields: Any) -> str:
    secret = {"username": "postgres", "password": PASSWORD, "dbname": "postgres", **fields}
    return str(client.create_secret(Name="rds", SecretString=json.dumps(secret))["ARN"])


@pytest.fixture
def aws_settings(settings: Settings) -> Iterator[Any]:
    """Install settings with AWS fields; engines built from them are disposed afterwards."""

    def install(**fields: Any) -> Settings:
        value = Settings(home=settings.home, **fields)
        use_settings(value)
        return value

    yield install
    dispose_engines()


@pytest.mark.postgres
def test_secret_and_proxy_endpoint_connect_with_tls(
    aws: Any, aws_settings: Any, postgres_server: PostgresServer
) -> None:
    arn = _secret(aws, host="db.internal.example", port=postgres_server.port)
    aws_settings(database_secret_arn=arn, database_proxy_endpoint="127.0.0.1")

    engine = get_engine()

    assert engine is get_engine()  # one engine (and pool) per warm container
    assert engine.url.host == "127.0.0.1"
    assert engine.url.query["sslmode"] == "require"
    assert engine.pool.size() == 1  # type: ignore[attr-defined]
    with engine.connect() as connection:
        ssl = connection.exec_driver_sql(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).scalar()
    assert ssl is True
    assert PASSWORD not in repr(engine)


@pytest.mark.postgres
def test_iam_auth_uses_a_fresh_token_per_connection(
    aws: Any, settings: Settings, postgres_server: PostgresServer
) -> None:
    arn = _secret(aws, host="127.0.0.1", port=postgres_server.port, password="")
    rds = boto3.client("rds")
    tokens: list[str] = []

    class Spy:
        def generate_db_auth_token(self, **kwargs: Any) -> str:
            tokens.append(rds.generate_db_auth_token(**kwargs))
            return tokens[-1]

    value = Settings(home=settings.home, database_secret_arn=arn, database_iam_auth=True)
    engine = create_aws_engine(value, rds_client=Spy())
    try:
        assert engine.url.password is None
        for _ in range(2):
            with engine.connect() as connection:
                assert connection.exec_driver_sql("SELECT 1").scalar() == 1
            engine.dispose()
    finally:
        engine.dispose()
    assert len(tokens) == 2
    assert "X-Amz-Signature" in tokens[0] and tokens[0].startswith("127.0.0.1:")


def test_unreachable_database_is_transient_and_never_shows_the_password(
    aws: Any, aws_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    arn = _secret(aws, host="127.0.0.1", port=port)
    aws_settings(database_secret_arn=arn)
    # plateseg's and SQLAlchemy's own logs (botocore at DEBUG echoes response bodies,
    # secrets included: docs/database.md says to keep it at INFO or above).
    caplog.set_level(logging.DEBUG, logger="plateseg")
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")

    with pytest.raises(DatabaseUnavailableError) as caught:
        upgrade(get_engine())

    assert f"127.0.0.1:{port}/postgres" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(read_credentials(Settings(database_secret_arn=arn)))


def test_a_missing_secret_is_a_clear_error(aws: Any, aws_settings: Any) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    aws_settings(database_secret_arn=arn)
    with pytest.raises(DatabaseError, match=f"database secret {arn}: ResourceNotFoundException"):
        get_engine()


def test_a_secret_without_fields_names_them(aws: Any, aws_settings: Any) -> None:
    arn = str(aws.create_secret(Name="x", SecretString=json.dumps({"password": PASSWORD}))["ARN"])
    aws_settings(database_secret_arn=arn)
    with pytest.raises(DatabaseError, match="lacks username, host .*, dbname") as caught:
        get_engine()
    assert not isinstance(caught.value, DatabaseUnavailableError)
    assert PASSWORD not in str(caught.value)


def test_an_explicit_url_wins_over_the_secret(aws: Any, aws_settings: Any, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    aws_settings(database_url=url, database_secret_arn=_secret(aws, host="h"))
    engine = get_engine()
    assert engine.dialect.name == "sqlite"
    assert isinstance(engine, sa.Engine)
