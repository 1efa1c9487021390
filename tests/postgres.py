"""A real PostgreSQL 15 server for the test session, and a fresh database per test.

Registered as a pytest plugin from ``tests/conftest.py``. The server binaries come from
Debian's ``postgresql-15`` package (``/usr/lib/postgresql/15/bin``); the server refuses
to run as root, so as root ``initdb``/``pg_ctl`` run as the ``postgres`` user through
``runuser``. Under pytest-xdist every worker starts its own server (own folder, own
port). The data folder lives under a fresh ``/tmp/plateseg-pg-*`` folder owned by
``postgres`` (pytest's own tmp folders are private to root and not traversable).

The server also accepts TLS (a self-signed certificate made with ``openssl``), so the
RDS connection path, which requires ``sslmode=require``, is tested against it.

Missing binaries fail the test with instructions; they never skip it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plateseg.db.engine import dispose_engines

BIN_GLOB = "/usr/lib/postgresql/*/bin"


@dataclass(frozen=True)
class PostgresServer:
    """A running server: connect as ``postgres`` (trust auth) on 127.0.0.1:``port``."""

    port: int
    base: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"


def _bin_dir() -> Path:
    found = sorted(glob.glob(BIN_GLOB), reverse=True)
    for folder in found:
        if Path(folder, "initdb").is_file() and Path(folder, "pg_ctl").is_file():
            return Path(folder)
    pytest.fail(
        f"PostgreSQL server binaries not found ({BIN_GLOB}/initdb, pg_ctl). "
        "Install them with `make system-deps` (or `apt-get install -y postgresql-15`).",
        pytrace=False,
    )


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(_as_postgres(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout}{done.stderr}{tail}")


def _certificate(base: Path) -> str:
    """A self-signed server certificate in ``base``; returns the server's ssl options."""
    cert, key = base / "server.crt", base / "server.key"
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"openssl could not make a test certificate:\n{done.stderr}")
    key.chmod(0o600)
    if os.geteuid() == 0:
        for path in (cert, key):
            shutil.chown(path, user="postgres", group="postgres")
    return f" -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"


def start_server() -> PostgresServer:
    """initdb + pg_ctl start on a free port; the caller stops it with :func:`stop_server`."""
    bin_dir = _bin_dir()
    base = Path(tempfile.mkdtemp(prefix="plateseg-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres", group="postgres")
    data, log = base / "data", base / "server.log"
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    _run([*initdb, "--no-locale", "-E", "UTF8", "--no-sync"], "initdb")
    ssl = _certificate(base)
    for attempt in range(3):
        port = _free_port()
        options = (
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off" + ssl
        )
        args = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options]
        done = subprocess.run(
            _as_postgres([*args, "-w", "-t", "60", "start"]),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return PostgresServer(port=port, base=base)
        if attempt == 2:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            shutil.rmtree(base, ignore_errors=True)
            pytest.fail(f"pg_ctl start failed:\n{done.stdout}{done.stderr}{tail}")
    raise AssertionError("unreachable")


def stop_server(server: PostgresServer) -> None:
    """Stop the server immediately and delete its folder."""
    pg_ctl = _bin_dir() / "pg_ctl"
    subprocess.run(
        _as_postgres([str(pg_ctl), "-D", str(server.base / "data"), "-m", "immediate", "stop"]),
        capture_output=True,
        check=False,
    )
    shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server per test session (per xdist worker), stopped at the end."""
    server = start_server()
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of the session server's maintenance database ``postgres``."""
    return postgres_server.url()


def _admin(server: PostgresServer, sql: str) -> None:
    import psycopg

    with psycopg.connect(server.conninfo(), autocommit=True) as connection:
        connection.execute(sql)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database: a SQLite file, or a new PostgreSQL database.

    Parametrized, so every test using it runs on both backends. Cached engines for the
    URL are disposed (and the PostgreSQL database dropped) after the test.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'plateseg.db'}"
        yield url
        dispose_engines(url)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"test_{uuid.uuid4().hex}"
    _admin(server, f'CREATE DATABASE "{name}"')
    url = server.url(name)
    try:
        yield url
    finally:
        dispose_engines(url)
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
