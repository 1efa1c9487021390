"""Exit codes of the installed ``plateseg`` console script, in a real process.

``CliRunner`` calls the command object and :func:`plateseg.cli.main` is what the
script calls; only the script shows what a shell sees (a code Typer hands back but
``main`` dropped read as exit 0 there). Every case runs ``.venv/bin/plateseg`` with
``PLATESEG_HOME`` set to a home holding tiny experiments (two 64 px fields each;
:mod:`tests.cli.console`). ``plateseg segment`` has its own module,
``test_segment_script.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import typer.main

from plateseg.cli import app
from plateseg.cli.exit_codes import EXIT_CODES, EXIT_SOME_IMAGES_FAILED, exit_code_table
from plateseg.demo import write_demo_experiment
from plateseg.settings import Settings
from plateseg.store import LocalStore
from tests.cli.console import (
    MARKUP_WELL,
    ONE_WORKER,
    PLATE_FOLDER,
    PLATESEG,
    Outcome,
    Script,
    no_traceback,
    one_line,
)


def _commands() -> list[list[str]]:
    """Every leaf command of the app, as the words that name it (``["asl", "run"]``)."""
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children is None:
            found.append(path)
            return
        for name, child in sorted(children.items()):
            walk(child, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


@pytest.fixture
def definitions(tmp_path: Path) -> dict[str, Path]:
    """ASL files: ``invalid`` (a state with neither Next nor End), ``fails`` (a Fail
    state), ``passes`` (a Pass state)."""
    documents = {
        "invalid": {"StartAt": "X", "States": {"X": {"Type": "Pass"}}},
        "fails": {
            "StartAt": "F",
            "States": {"F": {"Type": "Fail", "Error": "Boom", "Cause": "it broke"}},
        },
        "passes": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    }
    paths = {}
    for name, document in documents.items():
        paths[name] = tmp_path / f"{name}.asl.json"
        paths[name].write_text(json.dumps(document), encoding="utf-8")
    return paths


# --- usage ------------------------------------------------------------------------------


def test_help_exits_0_and_no_arguments_exits_2(script: Script) -> None:
    shown = script(["--help"])
    assert shown.code == 0 and "Usage: plateseg" in shown.out, shown.err
    bare = script([])
    assert bare.code == 2 and "Usage: plateseg" in bare.out + bare.err
    no_traceback(bare)


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_every_command_refuses_a_bad_option_with_exit_2(script: Script, command: list[str]) -> None:
    outcome = script([*command, "--no-such-option"])
    assert outcome.code == 2, (outcome.code, outcome.err)
    assert "No such option: --no-such-option" in outcome.err
    no_traceback(outcome)


def test_run_help_lists_every_exit_code(script: Script) -> None:
    outcome = script(["run", "--help"])
    assert outcome.code == 0, outcome.err
    for code, meaning in EXIT_CODES:
        assert f"{code:<4} {meaning}" in outcome.out, (code, outcome.out)


def test_the_module_docstring_shows_the_exit_code_table() -> None:
    import plateseg.cli

    documented = plateseg.cli.__doc__ or ""
    for row in exit_code_table().splitlines():
        assert f"  {row}\n" in documented, row


# --- plateseg asl -----------------------------------------------------------------------


def test_asl_validate_exit_codes(script: Script, definitions: dict[str, Path]) -> None:
    invalid = script(["asl", "validate", str(definitions["invalid"])])
    line = one_line(invalid, 2, "/States/X", "needs exactly one of Next or End")
    assert "X" in line
    valid = script(["asl", "validate", str(definitions["passes"])])
    assert valid.code == 0 and "valid (1 top-level states)" in valid.out, valid.err


def test_asl_run_exit_codes(script: Script, definitions: dict[str, Path]) -> None:
    failed = script(["asl", "run", str(definitions["fails"])])
    assert failed.code == 1, (failed.out, failed.err)
    assert json.loads(failed.out) == {"Error": "Boom", "Cause": "it broke"}
    no_traceback(failed)
    passed = script(["asl", "run", str(definitions["passes"]), "--input", '{"a": 1}'])
    assert passed.code == 0 and json.loads(passed.out) == {"a": 1}, passed.err
    invalid = script(["asl", "run", str(definitions["invalid"])])
    assert invalid.code == 2 and "needs exactly one of Next or End" in invalid.err


# --- plateseg run -------------------------------------------------------------------------


def test_a_run_where_every_image_succeeded_exits_0(script: Script) -> None:
    outcome = script(["run", "OK", "--run-id", "ok-1", *ONE_WORKER])
    assert outcome.code == 0, outcome.err
    assert "run ok-1 SUCCEEDED: 2 fields segmented, 0 failed" in outcome.out
    assert outcome.err == ""


def test_an_operetta_plate_runs_with_the_default_recipe(script: Script) -> None:
    """No naming and no channels given: the convention is detected and, as the plate has
    no ``w1``, its first channel ``ch1`` is the nuclei (said in the output)."""
    outcome = script(["run", "OPERETTA", "--run-id", "op-1", *ONE_WORKER])
    assert outcome.code == 0, outcome.err
    assert "run op-1 SUCCEEDED: 2 fields segmented, 0 failed" in outcome.out
    assert "nuclei channel ch1: the first" in " ".join(outcome.out.split())
    assert outcome.err == ""


def test_a_z_stack_plate_runs_on_its_first_plane_or_its_max_projection(script: Script) -> None:
    """Two planes per channel: the default recipe segments plane 1 (half the field) and
    says so; ``"planes": "max"`` segments their projection, which is OK's image."""

    def nuclei(outcome: Outcome) -> int:
        assert outcome.code == 0, outcome.err
        match = re.search(r"SUCCEEDED: 2 fields segmented, 0 failed, (\d+) nuclei", outcome.out)
        assert match is not None, outcome.out
        return int(match.group(1))

    whole = nuclei(script(["run", "OK", "--run-id", "z-ok", *ONE_WORKER]))
    first = script(["run", "ZSTACK", "--run-id", "z-first", *ONE_WORKER])
    assert 'first plane used; recipe "planes": "max" projects' in " ".join(first.out.split())
    projected = script(
        ["run", "ZSTACK", "--run-id", "z-max", "--recipe", '{"planes": "max"}', *ONE_WORKER]
    )
    assert "4 extra planes (max-projected)" in " ".join(projected.out.split())
    assert nuclei(projected) == whole
    assert nuclei(first) < whole


def test_z_stack_files_fail_or_run_as_their_max_projection(script: Script) -> None:
    """A plate of one-file Z-stacks: the default recipe refuses each file (a plane cannot
    be chosen silently); ``"planes": "max"`` segments the projection, which is OK's image."""
    whole = script(["run", "OK", "--run-id", "zf-ok", *ONE_WORKER])
    refused = script(["run", "ZFILE", "--run-id", "zf-first", *ONE_WORKER])
    assert refused.code == 1 and "all 2 images failed" in refused.err, refused.err
    projected = script(
        ["run", "ZFILE", "--run-id", "zf-max", "--recipe", '{"planes": "max"}', *ONE_WORKER]
    )
    count = re.compile(r"SUCCEEDED: 2 fields segmented, 0 failed, (\d+) nuclei")
    assert projected.code == 0, projected.err
    assert count.findall(projected.out) == count.findall(whole.out) != []


def test_a_run_where_some_images_failed_exits_10_and_says_how_many(script: Script) -> None:
    outcome = script(["run", "SOME", "--run-id", "some-1", *ONE_WORKER])
    line = one_line(
        outcome,
        EXIT_SOME_IMAGES_FAILED,
        "warning: run some-1: 1 of 2 images failed",
        "(P1_A01_1 ImageReadError)",
        "list them with: plateseg results SOME --run-id some-1 --export images.csv",
    )
    assert line
    assert "run some-1 SUCCEEDED_WITH_FAILURES: 1 fields segmented, 1 failed" in outcome.out


def test_a_run_where_every_image_failed_exits_1(script: Script) -> None:
    outcome = script(["run", "ALL", "--run-id", "all-1", *ONE_WORKER])
    one_line(
        outcome,
        1,
        "error: run all-1: all 2 images failed",
        "(P1_A01_1 ImageReadError, P1_A12_1 ImageReadError)",
        "list them with: plateseg results ALL --run-id all-1 --export images.csv",
    )


def test_compare_truth_exits_0_when_counts_match_and_1_naming_the_wells_that_do_not(
    script: Script, home: Path
) -> None:
    """``plateseg results --compare-truth``, the last step of ``make run``."""
    store = LocalStore(Settings(home=home).store_location)
    write_demo_experiment(store, "TRUTH", size=64, fields=1, wells=["A01", "A12"])
    assert script(["run", "TRUTH", "--run-id", "truth-1", *ONE_WORKER]).code == 0
    outcome = script(["results", "TRUTH", "--run-id", "truth-1", "--compare-truth"])
    assert outcome.code == 0, outcome.err
    assert "0 wells over the limit" in outcome.out
    key = "truth/TRUTH/counts.json"
    truth = json.loads(store.get_bytes(key))
    truth["wells"]["P1_A01"] += 10
    store.put_bytes(key, json.dumps(truth).encode())
    outcome = script(["results", "TRUTH", "--run-id", "truth-1", "--compare-truth"])
    assert outcome.code == 1, (outcome.out, outcome.err)
    assert "counts differ from ground truth by more than 5% (or 3 nuclei)" in outcome.err
    assert "P1_A01:" in outcome.err and "P1_A12:" not in outcome.err
    no_traceback(outcome)


def test_markup_in_a_layout_well_is_printed_as_written(script: Script) -> None:
    outcome = script(["run", "WELL-MARKUP", "--run-id", "well-1", *ONE_WORKER])
    one_line(
        outcome,
        2,
        "error: ",
        "WELL-MARKUP/layout.csv: line 3, column 'well'",
        f"'{MARKUP_WELL}' is not a well name",
    )


def test_markup_in_a_plate_folder_is_printed_as_written(script: Script) -> None:
    outcome = script(["run", "PLATE-MARKUP", "--run-id", "plate-1", *ONE_WORKER])
    one_line(
        outcome,
        2,
        "error: ",
        "1 duplicate image",
        f"'experiments/PLATE-MARKUP/{PLATE_FOLDER}/P1_A01_s1_w1.tif'",
        f"'experiments/PLATE-MARKUP/{PLATE_FOLDER}/rescan/P1_A1_s1_w1.tif'",
    )


def _ctrl_c_as_at_a_terminal() -> None:
    """In the child before exec: SIGINT handled and unblocked, as in a shell at a
    terminal. A process inherits an ignored SIGINT, and in the full suite some library
    leaves this pytest worker with SIGINT ignored (seen on a clean clone: the child's
    ``signal.getsignal(SIGINT)`` was ``SIG_IGN``, so Ctrl-C never reached it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_during_a_run_exits_130(home: Path) -> None:
    store = LocalStore(Settings(home=home).store_location)
    write_demo_experiment(store, "LONG", size=128, fields=1)  # 96 fields: seconds of work
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATESEG_")}
    env.update({"PLATESEG_HOME": str(home), "PLATESEG_TIME_SCALE": "0"})
    process = subprocess.Popen(
        [str(PLATESEG), "run", "LONG", *ONE_WORKER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_ctrl_c_as_at_a_terminal,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("lookup")  # the run has started
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, (out, err)
    assert err.splitlines() == ["interrupted"]
    assert "SUCCEEDED" not in out
