"""Settings: explicit > environment (``PLATESEG_*``) > default.

One :class:`Settings` object, read once by :func:`get_settings`. Tests and the local
runner replace it with :func:`use_settings` rather than patching ``os.environ``; the
local engine hands the same values to its worker processes through
:func:`use_settings` in the pool initializer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "hide_password", "use_settings"]


class Settings(BaseSettings):
    """Where plateseg keeps things and how hard it works.

    Attributes
    ----------
    home : Path
        Working folder of the embedded default (``.plateseg``, made absolute).
    store : str
        ``s3://bucket`` for S3, or a folder path for the local store. Empty means
        ``<home>/store``.
    database_url : str
        SQLAlchemy URL. Empty means ``sqlite:///<home>/plateseg.db``.
    local_bucket : str
        Bucket name the local runner substitutes for ``${BucketName}``; the local
        store answers to it.
    workers : int
        Worker processes of the local engine's process pool (0 = one per core).
    time_scale : float
        Multiplies every wait and retry interval of the local engine (0 = no sleeping).
    max_image_pixels : int
        Largest image (Y*X*C) a reader accepts; guards against decompression bombs.
    auto_migrate : bool
        Upgrade the database schema to the latest revision before writing.
    database_secret_arn : str
        On AWS: Secrets Manager secret holding the RDS credentials (``username``,
        ``password``, ``host``, ``port``, ``dbname``); used when ``database_url`` is empty.
    database_proxy_endpoint : str
        On AWS: RDS Proxy endpoint that replaces the secret's ``host``.
    database_name : str
        Database name overriding the secret's ``dbname``.
    database_iam_auth : bool
        Connect with an RDS IAM authentication token instead of the secret's password.
    """

    model_config = SettingsConfigDict(
        env_prefix="PLATESEG_", extra="ignore", hide_input_in_errors=True
    )

    home: Path = Field(default=Path(".plateseg"))
    store: str = ""
    database_url: str = ""
    local_bucket: str = "plateseg-local"
    workers: int = Field(default=0, ge=0, le=256)
    time_scale: float = Field(default=1.0, ge=0.0)
    max_image_pixels: int = Field(default=64 * 1024 * 1024, gt=0)
    auto_migrate: bool = True
    database_secret_arn: str = ""
    database_proxy_endpoint: str = ""
    database_name: str = ""
    database_iam_auth: bool = False

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """``repr``/``str`` show the database URL without its password."""
        for name, value in super().__repr_args__():
            if name == "database_url" and value:
                value = hide_password(str(value))
            yield name, value

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def store_location(self) -> str:
        """The store actually used: ``s3://bucket`` or an absolute folder path."""
        if self.store.startswith("s3://"):
            return self.store
        if self.store:
            return str(Path(self.store).expanduser().resolve())
        return str(self.home / "store")

    @property
    def resolved_database_url(self) -> str:
        """The database URL actually used."""
        return self.database_url or f"sqlite:///{self.home / 'plateseg.db'}"

    @property
    def worker_count(self) -> int:
        """Number of worker processes for the local engine (at least one)."""
        return self.workers or max(1, os.cpu_count() or 1)


def hide_password(url: str) -> str:
    """A database URL with its password replaced by ``***`` (unparseable: all hidden).

    >>> hide_password("postgresql+psycopg://app:s3cret@db:5432/plateseg")
    'postgresql+psycopg://app:***@db:5432/plateseg'
    """
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL may hold the password anywhere: show none of it
        return "***"


_override: Settings | None = None


@lru_cache(maxsize=1)
def _from_environment() -> Settings:
    return Settings()


def get_settings() -> Settings:
    """Return the settings in force: the explicit override if set, else the environment's."""
    return _override if _override is not None else _from_environment()


def use_settings(settings: Settings | dict[str, Any] | None) -> None:
    """Install explicit settings for this process (``None`` returns to the environment).

    Parameters
    ----------
    settings : Settings or dict or None
        A settings object, or the dict of one (as sent to worker processes).
    """
    global _override
    if isinstance(settings, dict):
        settings = Settings(**settings)
    _override = settings
    _from_environment.cache_clear()
