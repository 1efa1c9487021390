"""A tiny generated demo experiment for the planning tests that segment for real."""

from __future__ import annotations

import pytest

from plateseg.demo import write_demo_experiment
from plateseg.store import LocalStore

#: Four wells, one 128 px field each: real segmentation, seconds not minutes.
WELLS = ["A01", "B02", "C03", "D04"]


@pytest.fixture
def demo(store: LocalStore) -> str:
    """The experiment id of a 4-field demo experiment in the test's store."""
    write_demo_experiment(store, "PLAN-1", fields=1, size=128, seed=3, wells=WELLS)
    return "PLAN-1"
