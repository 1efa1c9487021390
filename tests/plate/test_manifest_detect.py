"""The file-name convention is detected when the run does not name it (issue 15, item 2)."""

from __future__ import annotations

import json
import re

import pytest

from plateseg.demo import write_demo_experiment
from plateseg.errors import InputError
from plateseg.plate.manifest import choose_naming
from plateseg.runs.embedded import run_local
from plateseg.settings import Settings
from plateseg.store import LocalStore

OPERETTA = [
    "experiments/E/P1/r01c01f01p01-ch1sk1fk1fl1.tiff",
    "experiments/E/P1/r01c01f01p01-ch2sk1fk1fl1.tiff",
    "experiments/E/P1/r02c03f02p01-ch1sk1fk1fl1.tiff",
]


def as_operetta(store: LocalStore, experiment_id: str) -> None:
    """Rename a demo experiment's ImageXpress files the way Harmony exports them."""
    pattern = re.compile(r"(?P<plate>[^/]+)_(?P<row>[A-H])(?P<col>\d\d)_s(?P<site>\d)_w(?P<ch>\d)")
    for info in list(store.list(f"experiments/{experiment_id}/")):
        found = pattern.search(info.key)
        if found is None:
            continue
        row = ord(found["row"]) - ord("A") + 1
        name = (
            f"r{row:02d}c{found['col']}f{int(found['site']):02d}p01-ch{found['ch']}sk1fk1fl1.tiff"
        )
        folder = info.key.rsplit("/", 1)[0]
        store.put_bytes(f"{folder}/{name}", store.get_bytes(info.key))
        store.delete_prefix(info.key)


def test_one_preset_that_reads_every_file_is_detected() -> None:
    choice = choose_naming(
        [*OPERETTA, "experiments/E/layout.csv", "experiments/E/notes.txt"], "E", None
    )
    assert (choice.name, choice.detected) == ("operetta", True)
    assert choice.reason == "detected: all 3 image files read as operetta"


def test_when_no_preset_reads_every_file_imagexpress_is_used_and_the_reason_counts_them() -> None:
    choice = choose_naming([*OPERETTA, "experiments/E/P1/P1_B03_s1_w1.tif"], "E", None)
    assert (choice.name, choice.pattern) == ("imagexpress", None)
    assert "no preset reads all 4 image files" in choice.reason
    assert "imagexpress 1, operetta 3" in choice.reason


def test_a_given_naming_wins_and_a_bad_one_is_refused() -> None:
    choice = choose_naming(OPERETTA, "E", "cellomics")
    assert (choice.name, choice.detected) == ("cellomics", False)
    with pytest.raises(InputError, match="neither a preset"):
        choose_naming(OPERETTA, "E", "nonsense")


def test_an_operetta_experiment_runs_without_naming_the_convention(
    settings: Settings, store: LocalStore
) -> None:
    write_demo_experiment(store, "OP", size=128, wells=["A01", "B03"])
    as_operetta(store, "OP")
    recipe = {"channels": {"nuclei": "ch1"}}  # Harmony's channel names; no 'naming' given
    run = run_local("OP", run_id="op", settings=settings, recipe=recipe)
    assert run.result.images_ok == 4 and run.result.images_failed == 0
    report = json.loads(store.get_bytes("runs/op/lookup-report.json"))
    assert (report["naming"], report["naming_detected"]) == ("operetta", True)
