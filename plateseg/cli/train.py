"""``plateseg train``: fine-tune the learned base model, or train a pixel classifier, from
scribbles; saved as an ONNX model.

::

    plateseg train --base nuclei-unet --images img1.tif --images img2.tif \\
                   --labels img1_labels.png --labels img2_labels.png \\
                   --out models/my-nuclei.onnx

Label images: 0 = not labelled, 1 = background, 2 = nucleus (ilastik's convention), and
with ``--base`` also 3 = separator (a stroke between two touching nuclei);
``--from-masks`` reads instance or binary masks instead (> 0 = nucleus). With ``--base
NAME`` the ``nuclei-3class`` model NAME (the shipped ``nuclei-unet``, or an earlier
fine-tune in the store) is fine-tuned (:mod:`plateseg.finetune`; needs PyTorch) and the
result is used with ``{"segmenter": "onnx", "params": {"model": "NAME"}}``; without it a
random-forest pixel classifier is trained from scratch for the ``trainable`` segmenter.
``--images``/``--labels`` may name folders (their image files,
sorted by name). ``--out models/NAME.onnx`` stores the model in the plateseg store,
where the recipe finds it (a fine-tuned model with its card in ``models/NAME.json``);
any other path writes a local file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import typer

from plateseg.cli.output import console
from plateseg.errors import InputError, PlatesegError
from plateseg.store.keys import MODELS_PREFIX

__all__ = ["register", "train"]

_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}
_STORE_OUT = re.compile(rf"^{re.escape(MODELS_PREFIX)}([A-Za-z0-9][A-Za-z0-9._-]{{0,63}})\.onnx$")


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
    base: str | None = typer.Option(
        None, help="Fine-tune this nuclei-3class model (e.g. nuclei-unet) instead of a forest."
    ),
    steps: int = typer.Option(250, min=0, max=100_000, help="Fine-tuning steps (--base)."),
    seconds: float = typer.Option(45.0, min=0, help="Fine-tuning time limit (--base)."),
    diameter: float | None = typer.Option(
        None, min=2, max=1000, help="Nuclear diameter in px (--base; default: estimated)."
    ),
) -> None:
    """Fine-tune the base model (--base) or train a pixel classifier from scribbles."""
    if base is not None:
        _fine_tune(images, labels, out, from_masks, base, steps, seconds, diameter, seed)
        return
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


def _fine_tune(
    images: list[Path],
    labels: list[Path],
    out: str,
    from_masks: bool,
    base: str,
    steps: int,
    seconds: float,
    diameter: float | None,
    seed: int,
) -> None:
    from plateseg.finetune import FineTuneSettings, LabelledField, fine_tune
    from plateseg.finetune.labels import labels_from_masks
    from plateseg.segmentation.onnx_model import model_key, read_model_bytes
    from plateseg.store import open_store

    image_paths = _expand(images, "--images")
    label_paths = _expand(labels, "--labels")
    if len(image_paths) != len(label_paths):
        raise InputError(
            f"--images gives {len(image_paths)} files but --labels gives {len(label_paths)}"
        )
    store = open_store()
    base_data = read_model_bytes(base, store)
    fields = []
    for image_path, label_path in zip(image_paths, label_paths, strict=True):
        label_image = _read(label_path)
        fields.append(
            LabelledField(
                image_path.name,
                _read(image_path),
                labels_from_masks(label_image) if from_masks else label_image,
            )
        )
    settings = FineTuneSettings(steps=steps, seconds=seconds, seed=seed, diameter=diameter)
    tuned = fine_tune(base_data, base, fields, settings)
    match = _STORE_OUT.fullmatch(out)
    if match:
        from plateseg.segmentation.model_store import store_model

        store_model(store, match.group(1), tuned.data, tuned.card, replace=True)
        where = store.uri(model_key(match.group(1)))
    else:
        target = Path(out)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tuned.data)
        except OSError as exc:
            raise PlatesegError(f"cannot write {target}: {exc.strerror}") from None
        where = str(target)
    card = tuned.card
    console.print(
        f"fine-tuned {base} on {len(fields)} images ({card['steps']} steps, "
        f"{card['seconds']} s, loss {card['loss']}) -> {where}",
        soft_wrap=True,
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``plateseg train`` to the CLI."""
    app.command("train")(train)
