"""The examples in the planning docstrings are checked, not decoration."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "plateseg.planning.costs",
    "plateseg.planning.estimate",
    "plateseg.planning.fleet",
    "plateseg.planning.model",
    "plateseg.planning.recommend",
    "plateseg.planning.workload",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
