"""Database engines, schema migrations and the mapping of driver faults onto plateseg errors.

One :class:`sqlalchemy.Engine` per URL per process (:func:`get_engine`): a warm Lambda
container keeps its pool between invocations, and the local engine's worker processes
each keep their own. Alembic runs programmatically (:func:`upgrade`, :func:`downgrade`)
from the migration scripts shipped inside the package; there is no ``alembic.ini``.

Faults are sorted for the state machine (:func:`translate_errors`): a database that
cannot be reached, drops the connection or is locked becomes
:class:`~plateseg.errors.DatabaseUnavailableError` (a transient error the ASL retries);
anything else becomes :class:`~plateseg.errors.DatabaseError`. Messages name the
backend, host, port and database, never the password.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url

from plateseg.errors import DatabaseError, DatabaseUnavailableError
from plateseg.settings import get_settings

__all__ = [
    "MIGRATIONS_DIR",
    "current_revision",
    "describe_url",
    "dispose_engines",
    "downgrade",
    "get_engine",
    "head_revision",
    "translate_errors",
    "upgrade",
]

#: Folder of the Alembic environment (``env.py``, ``versions/``), resolved from this file.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Key of the PostgreSQL advisory lock that serialises concurrent schema upgrades
#: (several Aggregate Lambdas may start at once with ``auto_migrate``).
_MIGRATION_LOCK_KEY = 0x706C_6174_6573_6567 & 0x7FFF_FFFF_FFFF_FFFF

#: SQLite messages (``sqlite3.OperationalError``) that mean "try again later".
_SQLITE_TRANSIENT = ("database is locked", "unable to open database", "disk i/o error", "busy")

_engines: dict[str, sa.Engine] = {}
_lock = threading.Lock()
#: Alembic loads its scripts as modules, which is not thread-safe: one migration at a time.
_migrate_lock = threading.Lock()


def describe_url(url: str | URL) -> str:
    """A printable name for a database: ``postgresql://user@host:5432/db``, no password.

    >>> describe_url("postgresql+psycopg://app:s3cret@db.example:5432/plateseg")
    'postgresql://app@db.example:5432/plateseg'
    >>> describe_url("sqlite:////tmp/x/plateseg.db")
    'sqlite:////tmp/x/plateseg.db'
    >>> describe_url("postgresql://app:pa:ss@db.example:no-port/plateseg?password=x")
    "'postgresql://db.example:no-port/plateseg'"
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (exc.ArgumentError, ValueError):  # unparsable: scheme, host and path only
        scheme, sep, rest = str(url).partition("://")
        rest = rest.rpartition("@")[2].split("?", 1)[0]  # no user info, no query
        return repr(f"{scheme}{sep}{rest}"[:120])
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return f"sqlite:///{parsed.database or ':memory:'}"
    user = f"{parsed.username}@" if parsed.username else ""
    port = f":{parsed.port}" if parsed.port else ""
    return f"{backend}://{user}{parsed.host or 'localhost'}{port}/{parsed.database or ''}"


def _scrub(text: str, url: URL) -> str:
    """Remove the password from a driver message, should a driver ever echo it."""
    password = url.password
    if password:
        text = text.replace(str(password), "***")
    return text


def _is_transient(error: exc.DBAPIError, backend: str) -> bool:
    if error.connection_invalidated or isinstance(error, exc.InterfaceError):
        return True
    if not isinstance(error, exc.OperationalError):
        return False
    if backend == "sqlite":
        text = str(error.orig).lower()
        return any(marker in text for marker in _SQLITE_TRANSIENT)
    # PostgreSQL: OperationalError covers refused/dropped connections, admin shutdown,
    # serialization failures and deadlocks: all worth a retry.
    return True


def _translated(error: Exception, url: URL) -> Exception:
    where = describe_url(url)
    if isinstance(error, exc.TimeoutError):
        return DatabaseUnavailableError(f"database {where}: no free connection in the pool")
    if isinstance(error, exc.DBAPIError):
        detail = _scrub(str(error.orig).strip().splitlines()[0] if str(error.orig) else "", url)
        if _is_transient(error, url.get_backend_name()):
            return DatabaseUnavailableError(
                f"database {where} is unavailable: {detail or type(error.orig).__name__}"
            )
        return DatabaseError(f"database {where}: {type(error.orig).__name__}: {detail}")
    return DatabaseError(f"database {where}: {_scrub(str(error), url)}")


@contextmanager
def translate_errors(engine: sa.Engine) -> Iterator[None]:
    """Turn SQLAlchemy and driver errors raised inside the block into plateseg errors.

    Raises
    ------
    DatabaseUnavailableError
        The database could not be reached, dropped the connection, or is locked.
    DatabaseError
        Any other database failure (constraint, schema, SQL).
    """
    try:
        yield
    except exc.SQLAlchemyError as error:
        raise _translated(error, engine.url) from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _create(url: URL) -> sa.Engine:
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DatabaseError(
                    f"cannot create the folder of {describe_url(url)}: {error.strerror}"
                ) from error
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "postgresql":
        # One Lambda container handles one event at a time: a small pool suffices, and
        # many warm containers must not exhaust the server's max_connections.
        kwargs.update(pool_size=2, max_overflow=2, pool_recycle=300, pool_timeout=30)
        kwargs["connect_args"] = {"connect_timeout": 10, "application_name": "plateseg"}
    return sa.create_engine(url, **kwargs)


def get_engine(url: str | None = None) -> sa.Engine:
    """The process-wide engine for ``url`` (created on first use, then reused).

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL, e.g. ``sqlite:///…/plateseg.db`` or
        ``postgresql+psycopg://user:pw@host:5432/db``. Defaults to
        ``get_settings().resolved_database_url``; on AWS (no ``database_url`` but a
        ``database_secret_arn``) to RDS through :mod:`plateseg.db.aws`: credentials from
        Secrets Manager, RDS Proxy, TLS required, optional IAM tokens, one small pool
        per warm container.

    Returns
    -------
    sqlalchemy.Engine
        SQLite engines run in WAL mode with a busy timeout and foreign keys on;
        PostgreSQL engines keep a pool of at most 4 connections with pre-ping.

    Raises
    ------
    DatabaseError
        The URL is malformed or names an unknown driver.
    """
    settings = get_settings()
    if url is None and not settings.database_url and settings.database_secret_arn:
        return _aws_engine(settings)
    url = url or settings.resolved_database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            try:
                parsed = make_url(url)
                engine = _create(parsed)
            except (exc.ArgumentError, exc.NoSuchModuleError, ValueError) as error:
                shown = describe_url(url) if "://" in url else repr(url[:60])
                raise DatabaseError(f"invalid database URL {shown}: {error}") from None
            _engines[url] = engine
        return engine


def _aws_engine(settings: Any) -> sa.Engine:
    """The RDS engine built from Secrets Manager (see :mod:`plateseg.db.aws`), cached."""
    from plateseg.db.aws import aws_engine_key, create_aws_engine

    key = aws_engine_key(settings)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = create_aws_engine(settings)
            _engines[key] = engine
        return engine


def dispose_engines(url: str | None = None) -> None:
    """Close the pooled connections of one cached engine (or all) and forget it."""
    with _lock:
        urls = [url] if url is not None else list(_engines)
        for key in urls:
            engine = _engines.pop(key, None)
            if engine is not None:
                engine.dispose()


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _sqlite_migration_lock(engine: sa.Engine) -> Iterator[None]:
    """Serialise schema upgrades of one SQLite file across processes.

    pysqlite runs DDL outside a transaction, so two processes upgrading a fresh file at
    once (three ``plateseg run`` at the same time) would both create the tables and
    one would fail with "table already exists". An exclusive ``flock`` on
    ``<database>.migrate.lock`` makes the second wait and then find the schema at head.
    """
    import fcntl

    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    if database.startswith("file:"):
        yield
        return
    lock_path = (
        Path(database).expanduser().resolve().with_name(Path(database).name + ".migrate.lock")
    )
    try:
        handle = lock_path.open("a+b")
    except OSError as error:
        raise DatabaseError(
            f"cannot open the migration lock {lock_path} of {describe_url(engine.url)}: "
            f"{error.strerror}"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _migration_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    with (
        _sqlite_migration_lock(engine),
        translate_errors(engine),
        engine.begin() as connection,
    ):
        if engine.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
        yield connection


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (default: the latest), in one transaction.

    On PostgreSQL an advisory lock serialises concurrent upgrades, so many Aggregate
    Lambdas starting together migrate once.
    """
    from alembic import command

    with _migrate_lock, _migration_connection(engine) as connection:
        command.upgrade(_alembic_config(connection), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Downgrade the schema to ``revision`` (``"base"`` drops every plateseg table)."""
    from alembic import command

    with _migrate_lock, _migration_connection(engine) as connection:
        command.downgrade(_alembic_config(connection), revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The schema revision the database is at (``None`` for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with translate_errors(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The latest revision shipped with this version of plateseg."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revision 0001
        raise DatabaseError(f"no migration scripts under {MIGRATIONS_DIR}")
    return head


def open_database(url: str | None = None) -> sa.Engine:
    """The engine for ``url`` with its schema at the latest revision when ``auto_migrate``.

    What readers and writers of the embedded default call: a fresh SQLite file gets its
    tables on first use instead of a "no such table" error.
    """
    engine = get_engine(url)
    if get_settings().auto_migrate:
        upgrade(engine)
    return engine
