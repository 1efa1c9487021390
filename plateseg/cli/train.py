"""``plateseg train``: a pixel classifier from scribbles, saved as an ONNX model.

::

    plateseg train --images img1.tif --images img2.tif \\
                   --labels img1_labels.png --labels img2_labels.png \\
                   --out models/my-nuclei.onnx

Label images: 0 = not labelled, 1 = background, 2 = nucleus (ilastik's convention);
``--from-masks`` reads instance or binary masks instead (> 0 = nucleus, background
beyond a 3-pixel ring). ``--images``/``--labels`` may name folders (their image files,
sorted by name). ``--out models/NAME.onnx`` stores the model in the plateseg store,
where ``{"segmenter": "trainable", "params": {"model": "NAME"}}`` finds it; any other
path writes a local file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import typer

from plateseg.cli.output import console
from plateseg.errors import InputError, PlatesegError

__all__ = ["register", "train"]

_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}
_STORE_OUT = re.compile(r"^models/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\.onnx$")


def _expand(paths: list[Path], option: str) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{option}: {path} does not exist")
    if not found:
        raise InputError(f"{option}: no image files in {', '.join(map(str, paths))}")
    return found


def _read(path: Path) -> np.ndarray:
    from plateseg.imaging import read_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    return read_image(data, str(path))


def train(
    images: list[Path] = typer.Option(..., "--images", help="Nuclei images (files or folders)."),
    labels: list[Path] = typer.Option(..., "--labels", help="Label images, one per image."),
    out: str = typer.Option(..., "--out", help="models/NAME.onnx (store) or a file path."),
    from_masks: bool = typer.Option(False, help="Labels are instance masks, not scribbles."),
    trees: int = typer.Option(16, min=1, max=200, help="Trees in the forest."),
    depth: int = typer.Option(8, min=2, max=20, help="Maximum tree depth."),
    scale: int = typer.Option(2, help="Downsampling factor the model works at (1, 2, 4)."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Train a pixel classifier from scribbles and save it as an ONNX model."""
    from plateseg.segmentation.trainable import (
        save_model,
        scribbles_from_mask,
        train_pixel_classifier,
    )

    image_paths = _expand(images, "--images")
    label_paths = _expand(labels, "--labels")
    if len(image_paths) != len(label_paths):
        raise InputError(
            f"--images gives {len(image_paths)} files but --labels gives {len(label_paths)}"
        )
    pixels = [_read(path) for path in image_paths]
    label_images = [_read(path) for path in label_paths]
    if from_masks:
        label_images = [scribbles_from_mask(mask) for mask in label_images]
    match = _STORE_OUT.fullmatch(out)
    name = match.group(1) if match else Path(out).stem
    model = train_pixel_classifier(
        pixels, label_images, trees=trees, max_depth=depth, scale=scale, seed=seed, name=name
    )
    if match:
        from plateseg.store import open_store

        store = open_store()
        key = save_model(store, name, model)
        where = store.uri(key)
    else:
        target = Path(out)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(model)
        except OSError as exc:
            raise PlatesegError(f"cannot write {target}: {exc.strerror}") from None
        where = str(target)
    console.print(
        f"trained on {len(pixels)} images ({trees} trees, depth {depth}, scale {scale}) "
        f"-> {where} ({len(model) / 1024:.0f} KiB)",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``plateseg train`` to the CLI."""
    app.command("train")(train)
