"""Fixtures of the console-script tests (:mod:`tests.cli.console`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.console import Script, make_home, script_on


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home of tiny experiments (:func:`tests.cli.console.make_home`)."""
    return make_home(tmp_path_factory.mktemp("console-script") / "home")


@pytest.fixture
def script(home: Path) -> Script:
    """``script(args)``: the installed ``plateseg ARGS`` in a new process on :func:`home`."""
    return script_on(home)
