"""Connections to RDS PostgreSQL from Lambda: Secrets Manager, RDS Proxy, TLS, IAM tokens.

Used by :func:`plateseg.db.get_engine` when ``Settings.database_url`` is empty and
``Settings.database_secret_arn`` is set:

* credentials (``username``, ``password``, ``host``, ``port``, ``dbname``) come from the
  Secrets Manager secret, read once per warm container;
* ``database_proxy_endpoint`` replaces the secret's host (connect through RDS Proxy),
  ``database_name`` its ``dbname``;
* TLS is required (``sslmode=require``);
* with ``database_iam_auth`` the password is a fresh RDS IAM authentication token
  (``generate_db_auth_token``, valid 15 minutes) for every new connection, not the
  secret's password;
* the pool is sized for Lambda: one container handles one event at a time, so one
  pooled connection (plus one overflow) per container, recycled every 5 minutes.

Passwords and tokens never appear in messages: errors name the secret ARN, host,
port and database only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL

from plateseg.errors import DatabaseError, DatabaseUnavailableError
from plateseg.settings import Settings

__all__ = ["RdsCredentials", "aws_engine_key", "create_aws_engine", "read_credentials"]

#: Secrets Manager / STS error codes worth a retry (the state machine's Retry applies).
_TRANSIENT_CODES = {
    "ThrottlingException",
    "InternalServiceError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
}


@dataclass(frozen=True)
class RdsCredentials:
    """Where and as whom to connect; ``password`` is hidden from ``repr``."""

    host: str
    port: int
    database: str
    username: str
    password: str = field(repr=False, default="")

    def url(self, iam_auth: bool) -> URL:
        """``postgresql+psycopg://user[:password]@host:port/db?sslmode=require``."""
        return URL.create(
            "postgresql+psycopg",
            username=self.username,
            password=None if iam_auth else (self.password or None),
            host=self.host,
            port=self.port,
            database=self.database,
            query={"sslmode": "require"},
        )


def aws_engine_key(settings: Settings) -> str:
    """Cache key of the AWS engine (no secret material in it)."""
    return (
        f"aws-secret:{settings.database_secret_arn}|{settings.database_proxy_endpoint}"
        f"|{settings.database_name}|iam={settings.database_iam_auth}"
    )


def _client_error(error: Exception, what: str) -> Exception:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _TRANSIENT_CODES:
            return DatabaseUnavailableError(f"{what}: {code} (try again)")
        return DatabaseError(f"{what}: {code}")
    if isinstance(error, BotoCoreError):
        return DatabaseUnavailableError(f"{what}: {type(error).__name__}")
    return DatabaseError(f"{what}: {type(error).__name__}")


def read_credentials(settings: Settings, client: Any = None) -> RdsCredentials:
    """Credentials from the secret, with the proxy endpoint and database name applied.

    Raises
    ------
    DatabaseUnavailableError
        Secrets Manager throttled or could not be reached.
    DatabaseError
        The secret does not exist, is not readable, or lacks a field (named).
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    arn = settings.database_secret_arn
    what = f"database secret {arn}"
    try:
        client = client or boto3.client("secretsmanager")
        value = client.get_secret_value(SecretId=arn)
    except (ClientError, BotoCoreError) as error:
        raise _client_error(error, what) from None
    try:
        secret = json.loads(value.get("SecretString") or "")
    except json.JSONDecodeError:
        raise DatabaseError(f"{what} is not a JSON object") from None
    if not isinstance(secret, dict):
        raise DatabaseError(f"{what} is not a JSON object")
    host = settings.database_proxy_endpoint or secret.get("host")
    database = settings.database_name or secret.get("dbname")
    missing = [
        name
        for name, present in (
            ("username", secret.get("username")),
            ("host (or database_proxy_endpoint)", host),
            ("dbname (or database_name)", database),
            ("password", secret.get("password") or settings.database_iam_auth),
        )
        if not present
    ]
    if missing:
        raise DatabaseError(f"{what} lacks {', '.join(missing)}")
    try:
        port = int(secret.get("port") or 5432)
    except (TypeError, ValueError):
        raise DatabaseError(f"{what}: port {secret.get('port')!r} is not a number") from None
    return RdsCredentials(
        host=str(host),
        port=port,
        database=str(database),
        username=str(secret["username"]),
        password=str(secret.get("password") or ""),
    )


def _iam_token(credentials: RdsCredentials, client: Any = None) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"IAM token for {credentials.username}@{credentials.host}:{credentials.port}"
    try:
        client = client or boto3.client("rds")
        token: str = client.generate_db_auth_token(
            DBHostname=credentials.host, Port=credentials.port, DBUsername=credentials.username
        )
    except (ClientError, BotoCoreError) as error:
        raise _client_error(error, where) from None
    return token


def create_aws_engine(
    settings: Settings, *, secrets_client: Any = None, rds_client: Any = None
) -> sa.Engine:
    """A PostgreSQL engine for RDS (through RDS Proxy), sized for one Lambda container.

    Parameters
    ----------
    settings : Settings
        ``database_secret_arn`` (required), ``database_proxy_endpoint``,
        ``database_name``, ``database_iam_auth``.
    secrets_client, rds_client : boto3 clients, optional
        Injected in tests; created from the environment otherwise.

    Raises
    ------
    DatabaseUnavailableError, DatabaseError
        See :func:`read_credentials`.
    """
    credentials = read_credentials(settings, secrets_client)
    engine = sa.create_engine(
        credentials.url(settings.database_iam_auth),
        pool_size=1,
        max_overflow=1,
        pool_recycle=300,
        pool_timeout=30,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 10, "application_name": "plateseg"},
    )
    if settings.database_iam_auth:

        def _token(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
            cparams["password"] = _iam_token(credentials, rds_client)

        event.listen(engine, "do_connect", _token)
    return engine
