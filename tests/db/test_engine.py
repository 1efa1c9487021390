"""Engines: caching, SQLite pragmas, and how driver faults map onto plateseg errors."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from plateseg.db import describe_url, dispose_engines, get_engine, translate_errors, upgrade
from plateseg.errors import DatabaseError, DatabaseUnavailableError, TransientError
from plateseg.settings import Settings


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_engine_is_cached_per_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    try:
        assert get_engine(url) is get_engine(url)
        assert get_engine(url) is not get_engine(f"sqlite:///{tmp_path / 'b.db'}")
    finally:
        dispose_engines(url)
        dispose_engines(f"sqlite:///{tmp_path / 'b.db'}")


def test_default_url_comes_from_settings_and_folder_is_created(settings: Settings) -> None:
    url = settings.resolved_database_url
    try:
        engine = get_engine()
        assert engine is get_engine(url)
        upgrade(engine)
        assert (settings.home / "plateseg.db").is_file()
    finally:
        dispose_engines(url)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'p.db'}"
    try:
        with get_engine(url).connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        dispose_engines(url)


def test_unreachable_postgres_is_transient_and_hides_the_password(closed_port: int) -> None:
    url = f"postgresql+psycopg://plateseg:Sup3rSecretPw@127.0.0.1:{closed_port}/results"
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            upgrade(get_engine(url))
    finally:
        dispose_engines(url)
    message = str(caught.value)
    assert "Sup3rSecretPw" not in message
    assert f"127.0.0.1:{closed_port}/results" in message
    assert isinstance(caught.value, TransientError)
    assert caught.value.exit_code == 75


def test_unreachable_database_in_a_read_is_transient(closed_port: int) -> None:
    url = f"postgresql+psycopg://u:pw@127.0.0.1:{closed_port}/db"
    engine = get_engine(url)
    try:
        with (
            pytest.raises(DatabaseUnavailableError, match="is unavailable"),
            translate_errors(engine),
            engine.connect() as connection,
        ):
            connection.execute(sa.text("SELECT 1"))
    finally:
        dispose_engines(url)


def test_sql_errors_are_not_transient(db_url: str) -> None:
    engine = get_engine(db_url)
    with (
        pytest.raises(DatabaseError) as caught,
        translate_errors(engine),
        engine.connect() as connection,
    ):
        connection.execute(sa.text("SELECT * FROM no_such_table"))
    assert not isinstance(caught.value, DatabaseUnavailableError)
    assert "no_such_table" in str(caught.value)


def test_constraint_violation_is_a_database_error(db_url: str) -> None:
    engine = get_engine(db_url)
    upgrade(engine)
    row = {"experiment_id": "E", "created_at": sa.func.now(), "updated_at": sa.func.now()}
    table = sa.table("experiments", *(sa.column(name) for name in row))
    with (
        pytest.raises(DatabaseError) as caught,
        translate_errors(engine),
        engine.begin() as connection,
    ):
        connection.execute(sa.insert(table).values(**row))
        connection.execute(sa.insert(table).values(**row))
    assert not isinstance(caught.value, DatabaseUnavailableError)


def test_a_locked_sqlite_database_is_transient(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'x.db'}")
    locked = exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
    try:
        with (
            pytest.raises(DatabaseUnavailableError, match="database is locked"),
            translate_errors(engine),
        ):
            raise locked
    finally:
        dispose_engines(str(engine.url))


def test_password_is_scrubbed_from_driver_messages() -> None:
    url = "postgresql+psycopg://app:hunter2pw@db.internal:5432/plateseg"
    engine = sa.create_engine(url)
    leaky = exc.OperationalError("SELECT 1", {}, Exception("auth failed for app:hunter2pw"))
    with pytest.raises(DatabaseUnavailableError) as caught, translate_errors(engine):
        raise leaky
    assert "hunter2pw" not in str(caught.value)
    assert "postgresql://app@db.internal:5432/plateseg" in str(caught.value)


def test_describe_url_never_shows_the_password() -> None:
    assert describe_url("postgresql+psycopg://a:pw@h:1/d") == "postgresql://a@h:1/d"


def test_invalid_url_is_a_clear_database_error() -> None:
    with pytest.raises(DatabaseError, match="invalid database URL"):
        get_engine("nosuchdialect://x/y")


def test_a_url_with_a_bad_port_is_a_typed_error_without_the_password() -> None:
    with pytest.raises(DatabaseError, match="invalid database URL") as caught:
        get_engine("postgresql+psycopg://app:s3:cret-pw@db.example:no-port/plateseg?password=q1")
    assert "cret-pw" not in str(caught.value) and "q1" not in str(caught.value)
    assert "db.example:no-port/plateseg" in str(caught.value)
