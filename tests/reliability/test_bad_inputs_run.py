"""Bad input that stops a whole run, through ``plateseg`` as a user types it.

Each case must end with the error tree's exit code (2 bad input; 3 no images; a failed
execution exits with the code of the error its failing state names) and ONE line on
stderr naming what is wrong and where, never a traceback. Problems the edge can see
(experiment id, execution input, recipe) are refused before any worker process starts;
problems only the experiment's files show (duplicates, a broken layout, a missing model,
no images) fail the run in Lookup, before any field is segmented.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from plateseg.demo import write_demo_experiment
from plateseg.settings import Settings
from plateseg.store import LocalStore, get_json
from tests.reliability.conftest import CliOutcome

pytestmark = pytest.mark.xdist_group("bad_inputs")

EXPERIMENT = "BAD-RUN"
Cli = Callable[[list[str]], CliOutcome]
#: Runs that fail in Lookup need no parallelism: one worker process starts faster.
ONE_WORKER = ("--workers", "1", "--time-scale", "0")


@pytest.fixture
def experiment(store: LocalStore) -> LocalStore:
    """BAD-RUN: two good fields (A01, A12; 64 px, w1 and w2) and the demo layout."""
    write_demo_experiment(store, EXPERIMENT, size=64, fields=1, wells=["A01", "A12"])
    return store


def one_line_error(outcome: CliOutcome, code: int, *words: str) -> str:
    """Assert the exit code and a single ``error: ...`` line holding ``words``; return it."""
    assert outcome.code == code, (outcome.code, outcome.err)
    assert len(outcome.error_lines) == 1, outcome.err
    line = outcome.error_lines[0]
    assert line.startswith("error: "), line
    for word in words:
        assert word in line, (word, line)
    assert "Traceback" not in outcome.out + outcome.err
    return line


def nothing_segmented(store: LocalStore, run_id: str) -> bool:
    return not list(store.list(f"runs/{run_id}/masks/")) and not list(
        store.list(f"runs/{run_id}/objects/")
    )


# --- refused at the edge (exit 2, no process started) ---------------------------------


@pytest.mark.parametrize(
    ("experiment_id", "rule"),
    [
        ("../etc", "it contains a path separator"),
        ("EXP*", "it contains a wildcard"),
        ("a%2Fb", "it contains '%'"),
        ("x" * 300, "it is 300 characters long (at most 128)"),
    ],
    ids=["dot-dot-slash", "wildcard", "url-encoded-slash", "300-characters"],
)
@pytest.mark.parametrize("command", ["run", "results", "demo-data"])
def test_unsafe_experiment_id(
    settings: Settings, cli: Cli, command: str, experiment_id: str, rule: str
) -> None:
    line = one_line_error(cli([command, experiment_id]), 2, "invalid experiment id", rule)
    assert len(line) < 400  # a 300-character id is shortened in the message
    assert not (settings.home / "runs").exists()


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ('{"experiment_id": "E1",', ("input: inline JSON is not valid JSON", "line 1")),
        ('["E1"]', ("execution input must be a JSON object, got list",)),
        ('{"experimentid": "E1"}', ("input.experiment_id: Field required",)),
        ('{"experiment_id": "E1", "run_id": "../x"}', ("input.run_id", "invalid run id")),
        ('{"experiment_id": "E1", "recipe": [1]}', ("input.recipe: Input should be a valid",)),
        ('{"experiment_id": "E1", "naming": "(unclosed"}', ("input.naming", "(unclosed")),
        ('{"experiment_id": 7}', ("input.experiment_id: Input should be a valid string",)),
    ],
    ids=["not-json", "not-an-object", "unknown-field", "run-id", "recipe", "naming", "id-type"],
)
def test_malformed_execution_input(
    settings: Settings, cli: Cli, document: str, words: tuple[str, ...]
) -> None:
    one_line_error(cli(["validate-input", document]), 2, *words)


def test_malformed_run_options(experiment: LocalStore, cli: Cli) -> None:
    one_line_error(cli(["run", EXPERIMENT, "--run-id", "../x"]), 2, "input.run_id")
    one_line_error(cli(["run", EXPERIMENT, "--recipe", "{oops"]), 2, "--recipe", "not valid JSON")
    one_line_error(cli(["run", EXPERIMENT, "--naming", "no-groups"]), 2, "input.naming")
    assert not list(experiment.list("runs/"))


@pytest.mark.parametrize(
    ("recipe", "words"),
    [
        ({"segmenter": "magic"}, ("input.recipe.segmenter: unknown segmenter 'magic'",)),
        (
            {"params": {"min_diameter": 0.5}},
            ("input.recipe.params.min_diameter: Input should be greater than 1",),
        ),
        (
            {"params": {"min_diameter": 40, "max_diameter": 20}},
            ("input.recipe.params", "max_diameter (20.0) must be >= min_diameter (40.0)"),
        ),
        ({"params": {"min_diametre": 8}}, ("input.recipe.params.min_diametre", "Extra inputs")),
        ({"channels": {"cells": "w2"}}, ("input.recipe.channels", "'nuclei' channel role")),
    ],
    ids=["unknown-segmenter", "below-range", "max-below-min", "misspelt", "no-nuclei-role"],
)
def test_bad_recipe_is_refused_before_the_run_starts(
    experiment: LocalStore, cli: Cli, recipe: dict[str, object], words: tuple[str, ...]
) -> None:
    one_line_error(cli(["run", EXPERIMENT, "--recipe", json.dumps(recipe)]), 2, *words)
    assert not list(experiment.list("runs/"))


# --- refused by Lookup, before any field is segmented (exit code of the error named) -----


def test_duplicate_field_is_refused_naming_both_files(experiment: LocalStore, cli: Cli) -> None:
    first = f"experiments/{EXPERIMENT}/P1/P1_A01_s1_w1.tif"
    again = f"experiments/{EXPERIMENT}/P1/rescan/P1_A1_s1_w1.tif"
    experiment.put_bytes(again, experiment.get_bytes(first))
    line = one_line_error(
        cli(["run", EXPERIMENT, "--run-id", "dup", *ONE_WORKER]),
        2,
        "InputError",
        f"experiment '{EXPERIMENT}' has 1 duplicate image (same plate, well, field and channel)",
        f"'{first}' and '{again}'",
    )
    assert "lookup-report.json" in line
    assert get_json(experiment, "runs/dup/lookup-report.json")["duplicate_pairs"] == [
        [first, again]
    ]
    assert nothing_segmented(experiment, "dup")


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({}, ("NoImagesFound", "no images found for experiment 'BAD-EMPTY'", "is empty")),
        (
            {"notes.txt": b"x", "P1/scan 001.tif": b"II*\x00"},
            ("NoImagesFound", "no usable images", "1 ignored (not images), 1 unmatched name"),
        ),
    ],
    ids=["empty-prefix", "no-image-names"],
)
def test_experiment_with_no_images(
    store: LocalStore, cli: Cli, files: dict[str, bytes], words: tuple[str, ...]
) -> None:
    for name, data in files.items():
        store.put_bytes(f"experiments/BAD-EMPTY/{name}", data)
    one_line_error(cli(["run", "BAD-EMPTY", "--run-id", "empty", *ONE_WORKER]), 3, *words)


def test_layout_with_a_well_off_any_plate_fails_before_segmenting(
    experiment: LocalStore, cli: Cli
) -> None:
    experiment.put_bytes(
        f"experiments/{EXPERIMENT}/layout.csv", b"well,control\nA01,neg\nZZ99,pos\n"
    )
    one_line_error(
        cli(["run", EXPERIMENT, "--run-id", "layout", *ONE_WORKER]),
        2,
        "InputError",
        f"{EXPERIMENT}/layout.csv: line 3, column 'well': 'ZZ99' is not on a 1536-well plate",
    )
    assert nothing_segmented(experiment, "layout")


def test_layout_wells_without_images_are_reported_and_the_run_succeeds(
    experiment: LocalStore, cli: Cli
) -> None:
    experiment.put_bytes(
        f"experiments/{EXPERIMENT}/layout.csv",
        b"plate,well,control\n,A01,neg\n,A12,pos\nP1,H12,\nP7,B02,\n",
    )
    outcome = cli(["run", EXPERIMENT, "--run-id", "unknown-wells", *ONE_WORKER])
    assert outcome.code == 0, outcome.err
    assert "SUCCEEDED: 2 fields segmented, 0 failed" in outcome.out
    report = get_json(experiment, "runs/unknown-wells/lookup-report.json")
    assert report["layout_wells_without_images"] == ["P1 H12", "P7 B02"]


def test_missing_segmentation_model_fails_in_lookup_naming_the_model(
    experiment: LocalStore, cli: Cli
) -> None:
    recipe = json.dumps({"segmenter": "onnx", "params": {"model": "no-such-model"}})
    one_line_error(
        cli(["run", EXPERIMENT, "--run-id", "model", "--recipe", recipe, *ONE_WORKER]),
        2,
        "ModelError: model 'no-such-model' not found at",
        "models/no-such-model.onnx",
    )
    assert nothing_segmented(experiment, "model")


# --- the console script itself -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["run", "../etc"], 2, "invalid experiment id '../etc'"),
        (["run", "BAD-EMPTY", "--workers", "1"], 3, "NoImagesFound"),
    ],
    ids=["unsafe-id", "no-images"],
)
def test_console_script_prints_one_line_and_no_traceback(
    tmp_path: Path,
    console_script: Callable[[list[str], Path], CliOutcome],
    args: list[str],
    code: int,
    words: str,
) -> None:
    one_line_error(console_script(args, tmp_path / "home"), code, words)
