"""What every request shares: settings, the store, the database, the run backend."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.templating import Jinja2Templates

from plateseg.settings import Settings
from plateseg.store import Store, open_store
from plateseg.web.admission import with_admission
from plateseg.web.backends import Backend, make_backend
from plateseg.web.config import WebSettings
from plateseg.web.queries import ManifestCache
from plateseg.web.security import Guard

__all__ = ["HERE", "AppState"]

HERE = Path(__file__).resolve().parent


@dataclass
class AppState:
    """Long-lived objects of one app instance (``app.state.plateseg``)."""

    settings: Settings
    config: WebSettings
    guard: Guard
    templates: Jinja2Templates
    _store: Store | None = None
    _engine: sa.Engine | None = None
    _backend: Backend | None = None
    _manifests: ManifestCache | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings.store_location)
            return self._store

    @property
    def engine(self) -> sa.Engine:
        """The results database, migrated on first use when ``auto_migrate`` is set."""
        with self._lock:
            if self._engine is None:
                from plateseg.db import get_engine, upgrade

                engine = get_engine(self.settings.resolved_database_url)
                if self.settings.auto_migrate:
                    upgrade(engine)
                self._engine = engine
            return self._engine

    @property
    def backend(self) -> Backend:
        with self._lock:
            if self._backend is None:
                self._backend = with_admission(
                    make_backend(self.settings, self.config, database=lambda: self.engine),
                    self.config,
                )
            return self._backend

    @property
    def manifests(self) -> ManifestCache:
        store = self.store
        with self._lock:
            if self._manifests is None:
                self._manifests = ManifestCache(store)
            return self._manifests
