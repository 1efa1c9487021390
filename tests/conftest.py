"""Fixtures shared by the whole suite.

Every test gets its own settings (store folder and SQLite database under tmp_path),
installed with :func:`plateseg.settings.use_settings` rather than by patching the
environment.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
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


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Call with a region: fake credentials and that region in the environment, no
    profile, so boto3 under moto's ``mock_aws`` can never reach a real account."""

    def install(region: str) -> None:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)

    return install


#: Three BBBC039 validation images with expert labels (CC0; see tests/data/bbbc039).
BBBC039 = Path(__file__).resolve().parents[0] / "data" / "bbbc039"


@pytest.fixture(scope="session")
def bbbc039() -> list[tuple[np.ndarray, np.ndarray]]:
    """``(image uint16, labels)`` of the three committed BBBC039 images."""
    import tifffile

    return [
        (tifffile.imread(path), tifffile.imread(BBBC039 / "labels" / path.name))
        for path in sorted((BBBC039 / "images").glob("*.tif"))
    ]


@pytest.fixture(scope="session")
def nuclei_data() -> ModuleType:
    """``tools/nuclei_data.py`` (the benchmarks' stress transforms), imported by path."""
    path = Path(__file__).resolve().parents[1] / "tools" / "nuclei_data.py"
    spec = importlib.util.spec_from_file_location("nuclei_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
