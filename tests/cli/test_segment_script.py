"""``plateseg segment`` through the installed console script, in a real process: image
files, folders and stacks as other labs share them, and the exit codes a shell sees
(fixtures: ``conftest.py``; the home's experiments: :func:`tests.cli.console.make_home`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile

from plateseg.cli.exit_codes import EXIT_SOME_IMAGES_FAILED
from plateseg.settings import Settings
from plateseg.store import LocalStore
from tests.cli.console import BROKEN, PLATE_FOLDER, Script, no_traceback, one_line


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


def test_segment_reads_a_z_stack_file_as_its_projection_with_a_projecting_recipe(
    script: Script, home: Path, tmp_path: Path
) -> None:
    """A one-file Z-stack is refused naming the remedy; with ``"planes": "max"`` it gives
    the label image of the flat field its planes project to."""
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
