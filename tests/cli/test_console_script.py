"""Exit codes of the installed ``plateseg`` console script, in a real process.

``CliRunner`` calls the command object and :func:`plateseg.cli.main` is what the
script calls; only the script shows what a shell sees (a code Typer hands back but
``main`` dropped read as exit 0 there). Every case runs ``.venv/bin/plateseg`` with
``PLATESEG_HOME`` set to a home holding tiny experiments (two 64 px fields each).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
import typer.main

from plateseg.cli import app
from plateseg.cli.exit_codes import EXIT_CODES, EXIT_SOME_IMAGES_FAILED, exit_code_table
from plateseg.demo import write_demo_experiment
from plateseg.imaging import write_tiff
from plateseg.settings import Settings
from plateseg.store import LocalStore
from tests.reliability.conftest import CliOutcome

#: The console script of this environment (what ``pip install`` put beside python).
PLATESEG = Path(sys.executable).with_name("plateseg")
ONE_WORKER = ["--workers", "1", "--time-scale", "0"]
BROKEN = b"II*\x00 not a TIFF any more"
#: A plate folder and a layout well that are Rich markup (a style tag, a closing tag).
PLATE_FOLDER = "Plate [old]"
MARKUP_WELL = "[/b]"


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


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with experiments OK (2 good fields), SOME (1 of 2 corrupt), ALL (2 of 2
    corrupt), WELL-MARKUP (layout well ``[/b]``), PLATE-MARKUP (a duplicate field
    under the folder ``Plate [old]``), OPERETTA (OK's images under Operetta names,
    channels ``ch1``/``ch2``), ZSTACK (the same as two planes each: plane 1 the left
    half of the field, plane 2 the right; their maximum is OK's image) and ZFILE (OK's
    names, each file an ImageJ Z-stack of those two planes, as confocal software saves
    one)."""
    folder = tmp_path_factory.mktemp("console-script") / "home"
    store = LocalStore(Settings(home=folder).store_location)
    for experiment in ("OK", "SOME", "ALL", "WELL-MARKUP", "PLATE-MARKUP"):
        write_demo_experiment(store, experiment, size=64, fields=1, wells=["A01", "A12"])
    store.put_bytes("experiments/SOME/P1/P1_A01_s1_w1.tif", BROKEN)
    for well in ("A01", "A12"):
        store.put_bytes(f"experiments/ALL/P1/P1_{well}_s1_w1.tif", BROKEN)
    store.put_bytes(
        "experiments/WELL-MARKUP/layout.csv",
        f"well,control\nA01,neg\n{MARKUP_WELL},pos\n".encode(),
    )
    good = store.get_bytes("experiments/PLATE-MARKUP/P1/P1_A01_s1_w1.tif")
    store.put_bytes(f"experiments/PLATE-MARKUP/{PLATE_FOLDER}/P1_A01_s1_w1.tif", good)
    store.put_bytes(f"experiments/PLATE-MARKUP/{PLATE_FOLDER}/rescan/P1_A1_s1_w1.tif", good)
    for well, column in (("A01", 1), ("A12", 12)):
        for channel in (1, 2):
            image = store.get_bytes(f"experiments/OK/P1/P1_{well}_s1_w{channel}.tif")
            name = f"r01c{column:02d}f01p01-ch{channel}sk1fk1fl1.tiff"
            store.put_bytes(f"experiments/OPERETTA/P1/{name}", image)
            pixels = tifffile.imread(io.BytesIO(image))
            for plane, half in ((1, slice(None, pixels.shape[1] // 2)), (2, slice(None))):
                part = np.full_like(pixels, pixels.min())
                part[:, half] = pixels[:, half]
                if plane == 2:
                    part[:, : pixels.shape[1] // 2] = pixels.min()
                    part[:, pixels.shape[1] // 2 :] = pixels[:, pixels.shape[1] // 2 :]
                name = f"r01c{column:02d}f01p0{plane}-ch{channel}sk1fk1fl1.tiff"
                store.put_bytes(f"experiments/ZSTACK/P1/{name}", write_tiff(part))
            store.put_bytes(
                f"experiments/ZFILE/P1/P1_{well}_s1_w{channel}.tif", z_stack_tiff(pixels)
            )
    return folder


def z_stack_tiff(pixels: np.ndarray) -> bytes:
    """An ImageJ ``ZYX`` stack of two planes, the left and the right half of ``pixels``
    (their maximum is ``pixels``)."""
    left, right = np.full_like(pixels, pixels.min()), np.full_like(pixels, pixels.min())
    middle = pixels.shape[1] // 2
    left[:, :middle], right[:, middle:] = pixels[:, :middle], pixels[:, middle:]
    data = io.BytesIO()
    tifffile.imwrite(data, np.stack([left, right]), imagej=True, metadata={"axes": "ZYX"})
    return data.getvalue()


#: What a shell sees of one ``plateseg`` process (exit code, stdout, stderr).
Outcome = CliOutcome


Script = Callable[[list[str]], Outcome]


@pytest.fixture
def script(home: Path) -> Script:
    """``script(args)``: run the installed ``plateseg ARGS`` in a new process on
    :func:`home` (``PLATESEG_*`` of the test environment dropped, no retry waits)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATESEG_")}
    env.update({"PLATESEG_HOME": str(home), "PLATESEG_TIME_SCALE": "0", "COLUMNS": "200"})

    def run(args: list[str]) -> Outcome:
        done = subprocess.run(
            [str(PLATESEG), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    return run


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


def no_traceback(outcome: Outcome) -> None:
    assert "Traceback" not in outcome.out + outcome.err, outcome.err


def one_line(outcome: Outcome, code: int, prefix: str, *words: str) -> str:
    """Assert the exit code and ONE stderr line starting with ``prefix``, holding ``words``."""
    assert outcome.code == code, (outcome.code, outcome.out, outcome.err)
    assert len(outcome.error_lines) == 1, outcome.err
    line = outcome.error_lines[0]
    assert line.startswith(prefix), line
    for word in words:
        assert word in line, (word, line)
    no_traceback(outcome)
    return line


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


def test_z_stack_files_fail_naming_the_remedy_or_run_as_their_max_projection(
    script: Script, home: Path, tmp_path: Path
) -> None:
    """A plate of one-file Z-stacks: the default recipe refuses each file (a plane cannot
    be chosen silently), and says how to project; ``"planes": "max"`` segments the
    projection, which is OK's image. ``plateseg segment`` reads a stack file the same way."""
    whole = script(["run", "OK", "--run-id", "zf-ok", *ONE_WORKER])
    refused = script(["run", "ZFILE", "--run-id", "zf-first", *ONE_WORKER])
    assert refused.code == 1 and "all 2 images failed" in refused.err, refused.err
    projected = script(
        ["run", "ZFILE", "--run-id", "zf-max", "--recipe", '{"planes": "max"}', *ONE_WORKER]
    )
    count = re.compile(r"SUCCEEDED: 2 fields segmented, 0 failed, (\d+) nuclei")
    assert projected.code == 0, projected.err
    assert count.findall(projected.out) == count.findall(whole.out) != []

    stack = tmp_path / "stack.tif"
    store = LocalStore(Settings(home=home).store_location)
    stack.write_bytes(store.get_bytes("experiments/ZFILE/P1/P1_A01_s1_w1.tif"))
    one_line(
        script(["segment", str(stack), "--labels-out", str(tmp_path / "no.tif")]),
        3,
        f"error: {stack}: a multi-plane stack",
        '"planes": "max"',
    )
    flat = tmp_path / "flat.tif"
    flat.write_bytes(store.get_bytes("experiments/OK/P1/P1_A01_s1_w1.tif"))
    max_recipe = ["--recipe", '{"planes": "max"}']
    stacked = script(["segment", str(stack), "--labels-out", str(tmp_path / "z.tif"), *max_recipe])
    assert (stacked.code, stacked.err) == (0, "")
    assert script(["segment", str(flat), "--labels-out", str(tmp_path / "f.tif")]).code == 0
    assert (tmp_path / "z.tif").read_bytes() == (tmp_path / "f.tif").read_bytes()


def test_segment_reads_one_channel_of_a_channel_stack_file(
    script: Script, home: Path, tmp_path: Path
) -> None:
    """An OME-TIFF holding a field's two channels (``CYX``), nuclei second:
    ``--channel 2`` segments them as the flat nuclei file; without it, the file is
    refused naming the option; a channel the file does not have, or 0, is refused."""
    store = LocalStore(Settings(home=home).store_location)
    nuclei = tifffile.imread(io.BytesIO(store.get_bytes("experiments/OK/P1/P1_A01_s1_w1.tif")))
    cells = tifffile.imread(io.BytesIO(store.get_bytes("experiments/OK/P1/P1_A01_s1_w2.tif")))
    both, flat = tmp_path / "both.ome.tif", tmp_path / "flat.tif"
    tifffile.imwrite(both, np.stack([cells, nuclei]), ome=True, metadata={"axes": "CYX"})
    tifffile.imwrite(flat, nuclei)

    picked = script(
        ["segment", str(both), "--labels-out", str(tmp_path / "c.tif"), "--channel", "2"]
    )
    assert (picked.code, picked.err) == (0, "")
    assert script(["segment", str(flat), "--labels-out", str(tmp_path / "f.tif")]).code == 0
    assert (tmp_path / "c.tif").read_bytes() == (tmp_path / "f.tif").read_bytes()
    one_line(
        script(["segment", str(both), "--labels-out", str(tmp_path / "x.tif")]),
        3,
        f"error: {both}: a multi-plane stack",
        "--channel N reads channel N",
    )
    one_line(
        script(["segment", str(both), "--labels-out", str(tmp_path / "x.tif"), "--channel", "3"]),
        3,
        f"error: {both}: has 2 channels; --channel 3",
    )
    zero = script(["segment", str(both), "--labels-out", str(tmp_path / "x.tif"), "--channel", "0"])
    assert zero.code == 2 and "--channel" in zero.err
    projecting = ["--channel", "2", "--recipe", '{"planes": "max"}']
    one_line(
        script(["segment", str(both), "--labels-out", str(tmp_path / "x.tif"), *projecting]),
        2,
        'error: --channel with the recipe\'s "planes": "max"',
    )
    assert not (tmp_path / "x.tif").exists()


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


def test_markup_in_a_file_path_is_printed_as_written(
    script: Script, home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / PLATE_FOLDER
    folder.mkdir()
    image = folder / "P1_A01_s1_w1.tif"
    store = LocalStore(Settings(home=home).store_location)
    image.write_bytes(store.get_bytes("experiments/OK/P1/P1_A01_s1_w1.tif"))
    labels = folder / "labels [/b].tif"
    done = script(["segment", str(image), "--labels-out", str(labels)])
    assert done.code == 0, done.err
    assert f"nuclei in {image} -> {labels}" in done.out
    broken = folder / "broken.tif"
    broken.write_bytes(BROKEN)
    one_line(
        script(["segment", str(broken), "--labels-out", str(labels)]), 3, "error: ", str(broken)
    )


@pytest.fixture
def images(home: Path, tmp_path: Path) -> Path:
    """A folder of image files as another lab shares them: two good fields (named
    freely, not as a plate) and one broken file."""
    folder = tmp_path / "images"
    folder.mkdir()
    store = LocalStore(Settings(home=home).store_location)
    for well in ("A01", "A12"):
        image = store.get_bytes(f"experiments/OK/P1/P1_{well}_s1_w1.tif")
        (folder / f"nuclei {well}.tif").write_bytes(image)
    (folder / "zz-broken.tif").write_bytes(BROKEN)
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    return folder


def test_segment_a_folder_writes_each_label_image_and_skips_a_broken_one(
    script: Script, images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "labels"
    outcome = script(["segment", str(images), "--labels-out", str(out)])
    assert outcome.code == EXIT_SOME_IMAGES_FAILED, outcome.err
    assert sorted(p.name for p in out.iterdir()) == ["nuclei A01.tif", "nuclei A12.tif"]
    assert "2 of 3 images segmented" in outcome.out
    assert outcome.error_lines[0].startswith(f"error: {images / 'zz-broken.tif'}: ")
    assert outcome.error_lines[-1].startswith("warning: 1 of 3 images failed (zz-broken.tif")
    no_traceback(outcome)
    # the same labels as segmenting the one file alone
    single = tmp_path / "single.tif"
    assert (
        script(["segment", str(images / "nuclei A01.tif"), "--labels-out", str(single)]).code == 0
    )
    assert single.read_bytes() == (out / "nuclei A01.tif").read_bytes()


def test_segment_several_files_exits_0_and_all_broken_exits_1(
    script: Script, images: Path, tmp_path: Path
) -> None:
    good = [str(images / "nuclei A01.tif"), str(images / "nuclei A12.tif")]
    outcome = script(["segment", *good, "--labels-out", str(tmp_path / "a")])
    assert (outcome.code, outcome.err) == (0, "")
    assert "2 of 2 images segmented" in outcome.out
    (images / "also-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    broken = [str(images / "zz-broken.tif"), str(images / "also-broken.png")]
    outcome = script(["segment", *broken, "--labels-out", str(tmp_path / "b")])
    assert outcome.code == 1
    assert outcome.error_lines[-1].startswith("error: all 2 images failed")


def test_segment_refuses_to_write_labels_over_its_inputs(script: Script, images: Path) -> None:
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    one_line(
        script(["segment", str(images), "--labels-out", str(images)]),
        2,
        "error: the label image of",
        "would overwrite the input",
    )
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before


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
