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
