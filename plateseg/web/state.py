"""What every request shares: settings, the store, the database, the runner (behind
admission control), and the bound on concurrent previews."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.templating import Jinja2Templates

from plateseg.errors import TransientError
from plateseg.runs.base import Runner
from plateseg.runs.factory import make_runner
from plateseg.settings import Settings
from plateseg.store import Store, open_store
from plateseg.web.admission import AdmittedBackend, with_admission
from plateseg.web.config import WebSettings
from plateseg.web.pictures import PictureCache
from plateseg.web.queries import ManifestCache
from plateseg.web.security import Guard

__all__ = ["HERE", "AppState", "Slots"]

HERE = Path(__file__).resolve().parent


class Slots:
    """At most ``limit`` jobs of one kind at once; one more is refused at once with
    :class:`~plateseg.errors.TransientError` (HTTP 503 with ``Retry-After``).

    Parameters
    ----------
    limit : int
        Jobs at once (>= 1).
    what : str
        What a job is, plural, for the refusal ("previews").
    setting : str
        The setting that raises the limit, named in the refusal.
    """

    def __init__(self, limit: int, what: str, setting: str) -> None:
        if limit < 1:
            raise ValueError(f"{setting} must be at least 1, not {limit}")
        self.limit = limit
        self.what = what
        self.setting = setting
        self._free = threading.BoundedSemaphore(limit)

    @contextmanager
    def take(self) -> Iterator[None]:
        """Hold a slot for the ``with`` block, or raise :class:`TransientError` at once."""
        if not self._free.acquire(blocking=False):
            raise TransientError(
                f"this server is busy: {self.limit} {self.what} are running (limit "
                f"{self.setting}); try again in a few seconds"
            )
        try:
            yield
        finally:
            self._free.release()


@dataclass
class AppState:
    """Long-lived objects of one app instance (``app.state.plateseg``)."""

    settings: Settings
    config: WebSettings
    guard: Guard
    templates: Jinja2Templates
    _store: Store | None = None
    _engine: sa.Engine | None = None
    _backend: Runner | None = None
    _manifests: ManifestCache | None = None
    _previews: Slots | None = None
    pictures: PictureCache = field(default_factory=PictureCache)
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
    def backend(self) -> Runner:
        """The runner (:func:`plateseg.runs.make_runner`, as the CLI's); on the local
        engine behind admission control, with accepted runs recorded in the store
        (:mod:`plateseg.web.accepted`)."""
        store = self.store if self.config.engine == "local" else None
        with self._lock:
            if self._backend is None:
                runner = make_runner(
                    self.settings,
                    engine=self.config.engine,
                    state_machine=self.config,
                    database=lambda: self.engine,
                )
                self._backend = with_admission(runner, self.config, store=store)
            return self._backend

    @property
    def previews(self) -> Slots:
        """The bound on previews segmenting at once (``web_max_previews``): a preview
        holds a whole field and its labels in memory (36 Mpx: about 0.9 GB)."""
        with self._lock:
            if self._previews is None:
                limit = self.config.web_max_previews
                self._previews = Slots(limit, "previews", "web_max_previews")
            return self._previews

    def recover_runs(self) -> None:
        """At server start: take back the runs accepted before it stopped (local engine)."""
        if self.config.engine != "local":
            return  # Step Functions keeps its executions; nothing is queued here
        backend = self.backend
        if isinstance(backend, AdmittedBackend):
            backend.recover()

    def stop_runs(self) -> None:
        """At server shutdown: start no more queued runs (they stay recorded)."""
        backend = self._backend
        if isinstance(backend, AdmittedBackend):
            backend.close()

    @property
    def manifests(self) -> ManifestCache:
        store = self.store
        with self._lock:
            if self._manifests is None:
                self._manifests = ManifestCache(store)
            return self._manifests
