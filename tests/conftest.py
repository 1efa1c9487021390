"""Fixtures shared by the whole suite.

Every test gets its own settings (store folder and SQLite database under tmp_path),
installed with :func:`plateseg.settings.use_settings` rather than by patching the
environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plateseg.settings import Settings, use_settings
from plateseg.store import LocalStore

pytest_plugins = ["tests.postgres"]


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings pointing at a fresh home under tmp_path; no sleeping, two workers."""
    value = Settings(home=tmp_path / "home", time_scale=0.0, workers=2)
    use_settings(value)
    yield value
    use_settings(None)


@pytest.fixture
def store(settings: Settings) -> LocalStore:
    """The local store the settings name (an empty folder)."""
    return LocalStore(settings.store_location)
