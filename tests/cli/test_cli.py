"""The command line: clear one-line errors with exit codes, and the demo commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from plateseg.cli import main
from plateseg.settings import Settings
from plateseg.store import LocalStore


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
        raise SystemExit(0)
    code = info.value.code
    return int(code) if code is not None else 0


def test_unsafe_experiment_id_is_one_line_and_exit_2(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["run", "../etc"]) == 2
    err = capsys.readouterr().err
    assert "invalid experiment id" in err
    assert "Traceback" not in err


def test_bad_recipe_json_names_the_option(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["run", "E1", "--recipe", "{not json"]) == 2
    assert "--recipe" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["segment"], ["run"], ["plan"], ["start"]])
def test_recipe_help_names_the_real_default(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from plateseg.contracts import DEFAULT_SEGMENTER, Recipe

    assert run_cli([*command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())  # Rich wraps it
    assert f"(default: segmenter {DEFAULT_SEGMENTER!r})" in text
    assert Recipe().segmenter == DEFAULT_SEGMENTER


def test_missing_recipe_file_is_a_clear_error(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["run", "E1", "--recipe", f"@{tmp_path / 'nope.json'}"]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_results_of_an_experiment_never_run(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(["results", "NEVER-RUN"])
    assert code != 0
    err = capsys.readouterr().err
    assert "NEVER-RUN" in err and "Traceback" not in err


def test_demo_data_writes_images_and_truth(
    settings: Settings, store: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["demo-data", "D1", "--size", "128", "--fields", "1"]) == 0
    keys = [info.key for info in store.list("experiments/D1/")]
    assert len([k for k in keys if k.endswith(".tif")]) == 96 * 2
    assert store.exists("truth/D1/counts.json")
    assert "D1" in capsys.readouterr().out


def test_segment_writes_a_label_image(
    settings: Settings, store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["demo-data", "D2", "--size", "256", "--fields", "1"]) == 0
    image = store.root / "experiments/D2/P1/P1_B03_s1_w1.tif"
    out = tmp_path / "labels.tif"
    assert run_cli(["segment", str(image), "--labels-out", str(out)]) == 0
    labels = tifffile.imread(out)
    assert labels.dtype in (np.uint16, np.uint32)
    assert labels.shape == (256, 256)
    assert labels.max() > 0
    assert "nuclei" in capsys.readouterr().out


def test_segment_of_a_corrupt_file_names_it(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    assert run_cli(["segment", str(bad), "--labels-out", str(tmp_path / "o.tif")]) == 3
    assert "broken.tif" in capsys.readouterr().err
