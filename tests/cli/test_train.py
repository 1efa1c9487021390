"""``plateseg train``: label files in, an ONNX model in the store or a file out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from plateseg.cli import train
from plateseg.demo import render_field
from plateseg.errors import InputError
from plateseg.imaging import write_tiff
from plateseg.segmentation.onnx_model import load_model
from plateseg.settings import Settings
from plateseg.store import LocalStore


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    train.register(app)
    app.command("noop")(lambda: None)  # keep "train" a subcommand
    return app


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    field = render_field(np.random.default_rng(3), 8, 160)
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    (images / "a.tif").write_bytes(write_tiff(field.w1))
    (masks / "a.tif").write_bytes(write_tiff(field.labels))
    return images, masks


def test_train_from_masks_into_the_store(
    cli: typer.Typer, files: tuple[Path, Path], settings: Settings, store: LocalStore
) -> None:
    images, masks = files
    args = ["train", "--images", str(images), "--labels", str(masks), "--from-masks"]
    args += ["--out", "models/cli-model.onnx", "--trees", "3", "--depth", "5"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "models/cli-model.onnx" in result.output
    assert load_model("cli-model", store).kind == "pixel-features"


def test_train_to_a_file_and_mismatched_counts(
    cli: typer.Typer, files: tuple[Path, Path], tmp_path: Path
) -> None:
    images, masks = files
    out = tmp_path / "out" / "m.onnx"
    args = ["train", "--images", str(images / "a.tif"), "--labels", str(masks / "a.tif")]
    result = CliRunner().invoke(cli, [*args, "--from-masks", "--trees", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:2] == b"\x08\x08"  # an ONNX protobuf (ir_version field)
    bad = CliRunner().invoke(cli, [*args, "--labels", str(masks / "a.tif"), "--out", str(out)])
    assert isinstance(bad.exception, InputError)
    assert "--images gives 1 files but --labels gives 2" in str(bad.exception)


def test_fine_tune_the_base_model_through_the_console_script(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    import json

    from tests.reliability.conftest import run_console_script

    images, masks = files
    home = tmp_path / "home"
    args = ["train", "--base", "nuclei-unet", "--images", str(images), "--labels", str(masks)]
    args += ["--from-masks", "--steps", "5", "--out", "models/tuned.onnx"]
    outcome = run_console_script(args, home)
    assert outcome.code == 0, outcome.err
    assert "fine-tuned nuclei-unet on 1 images (5 steps" in outcome.out
    store = LocalStore(home / "store")
    assert load_model("tuned", store).kind == "nuclei-3class"
    card = json.loads(store.get_bytes("models/tuned.json"))
    assert card["origin"] == "fine-tuned" and card["base"]["name"] == "nuclei-unet"


def test_fine_tuning_a_forest_is_refused_by_name(files: tuple[Path, Path], tmp_path: Path) -> None:
    from tests.reliability.conftest import run_console_script

    images, masks = files
    args = ["train", "--base", "nuclei-rf", "--images", str(images), "--labels", str(masks)]
    args += ["--out", str(tmp_path / "x.onnx")]
    outcome = run_console_script([*args, "--from-masks"], tmp_path / "home")
    assert outcome.code == 2, outcome.err
    assert "model 'nuclei-rf': only nuclei-3class models can be fine-tuned" in outcome.err
    # instance masks are not correction labels (values 0-3) unless --from-masks says so
    outcome = run_console_script(args, tmp_path / "home")
    assert outcome.code == 2
    assert outcome.err.startswith("error: field 'a.tif': label values must be 0 (unlabelled)")
    assert "Traceback" not in outcome.err
