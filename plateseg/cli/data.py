"""``plateseg demo-data`` and ``plateseg segment``: data in, label images out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from plateseg.cli.exit_codes import EXIT_SOME_IMAGES_FAILED
from plateseg.cli.output import RECIPE_HELP, console, err_console, load_json_argument
from plateseg.errors import (
    AllImagesFailedError,
    ImageError,
    ImageReadError,
    ImageShapeError,
    InputError,
    PlatesegError,
)
from plateseg.store.keys import experiment_prefix, truth_prefix

if TYPE_CHECKING:
    import numpy as np

    from plateseg.contracts import Recipe


def demo_data(
    experiment_id: str = typer.Argument("DEMO-001", help="Experiment id to create."),
    plates: int = typer.Option(1, min=1, max=8, help="Number of 96-well plates."),
    fields: int = typer.Option(2, min=1, max=9, help="Fields of view per well."),
    size: int = typer.Option(512, min=128, max=4096, help="Image width and height in pixels."),
    seed: int = typer.Option(0, help="Random seed (the same seed gives the same images)."),
) -> None:
    """Write a synthetic HCS experiment, with ground truth, to the local store."""
    from plateseg.contracts import validate_experiment_id
    from plateseg.demo import write_demo_experiment
    from plateseg.store import open_store

    validate_experiment_id(experiment_id)
    store = open_store()
    truth = write_demo_experiment(
        store, experiment_id, plates=plates, fields=fields, size=size, seed=seed
    )
    wells = len(truth.well_counts)
    console.print(
        Text.assemble(
            "wrote experiment ",
            (experiment_id, "bold"),
            f": {wells} wells x {fields} fields x 2 channels to "
            f"{store.uri(experiment_prefix(experiment_id))}",
        ),
        soft_wrap=True,
    )
    console.print(f"ground truth: {store.uri(truth_prefix(experiment_id))}", soft_wrap=True)


#: Failed images named in the summary of a many-image ``segment``.
_NAMED_FAILURES = 3


def segment(
    images: list[Path] = typer.Argument(
        ...,
        help="Image files (TIFF, PNG or JPEG) of the nuclei channel, or folders of them.",
    ),
    labels_out: Path = typer.Option(
        ...,
        "--labels-out",
        help="The label TIFF of one image; for several images or a folder, the folder "
        "that gets one <name>.tif per image.",
    ),
    recipe: str = typer.Option("", help=RECIPE_HELP),
    channel: int | None = typer.Option(
        None,
        min=1,
        help="For files holding several channels (multi-page or OME-TIFF, CYX): the "
        "nuclei channel's position, 1 = the first (as Fiji counts).",
    ),
) -> None:
    """Segment images with a recipe and write their label images (0 = background).

    One image file: ``--labels-out`` is its label TIFF, and an unusable image is an
    error (exit 3). Several images or a folder (its image files, not its subfolders):
    the model is loaded once, each label image is written as it is done, an unusable
    image is reported and skipped; exit 10 when some failed, 1 when all did.
    """
    parsed = _segment_recipe(recipe)
    if channel is not None and parsed.planes == "max":
        raise InputError(
            '--channel with the recipe\'s "planes": "max": a file holding both channels and '
            "Z planes is not read; save a projection per channel"
        )
    if len(images) == 1 and not images[0].is_dir():
        _segment_one(images[0], labels_out, parsed, channel)
        return
    files = _image_files(images)
    targets = _label_targets(files, labels_out)
    failed: list[tuple[Path, PlatesegError]] = []
    for source, target in zip(files, targets, strict=True):
        try:
            _segment_one(source, target, parsed, channel)
        except ImageError as exc:  # this image is unusable; the others go on
            err_console.print(Text.assemble(("error:", "bold red"), " ", str(exc)))
            failed.append((source, exc))
    done = len(files) - len(failed)
    summary = f"{done} of {len(files)} images segmented; label images in {labels_out}"
    console.print(summary, soft_wrap=True, markup=False)
    if not failed:
        return
    named = ", ".join(f"{path.name} {type(exc).__name__}" for path, exc in failed[:_NAMED_FAILURES])
    more = len(failed) - _NAMED_FAILURES
    listing = f" ({named}{f' and {more} more' if more > 0 else ''})"
    if done == 0:
        raise AllImagesFailedError(f"all {len(files)} images failed{listing}")
    err_console.print(
        Text.assemble(
            ("warning:", "yellow"), f" {len(failed)} of {len(files)} images failed{listing}"
        )
    )
    raise typer.Exit(EXIT_SOME_IMAGES_FAILED)


def _segment_recipe(recipe: str) -> Recipe:
    """The ``--recipe`` argument, validated (the default recipe when empty)."""
    from pydantic import ValidationError

    from plateseg.contracts import Recipe
    from plateseg.errors import RecipeError, format_validation_error
    from plateseg.segmentation import validate_recipe

    try:
        parsed = Recipe.model_validate(load_json_argument(recipe, "--recipe") if recipe else {})
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, "recipe")) from None
    return validate_recipe(parsed)


def _image_files(paths: list[Path]) -> list[Path]:
    """The image files named or in the folders named (sorted, not recursive), each once.

    Raises
    ------
    InputError
        A path that does not exist, or a folder without image files.
    """
    from plateseg.plate.naming import IMAGE_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                kinds = ", ".join(IMAGE_SUFFIXES)
                raise InputError(f"folder {path} holds no image files ({kinds})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"cannot read image {path}: no such file or folder")
    return list(dict.fromkeys(files))


def _label_targets(files: list[Path], folder: Path) -> list[Path]:
    """``folder/<name>.tif`` for each image, checked before anything is written.

    Raises
    ------
    InputError
        ``folder`` is a file, two images would write one label file, or a label file
        would overwrite an input image.
    """
    if folder.exists() and not folder.is_dir():
        raise InputError(
            f"--labels-out {folder} is a file; with several images it must be a folder"
        )
    targets = [folder / f"{path.stem}.tif" for path in files]
    seen: dict[Path, Path] = {}
    inputs = {path.resolve() for path in files}
    for source, target in zip(files, targets, strict=True):
        if target in seen:
            raise InputError(
                f"{seen[target]} and {source} would both write {target}; "
                "segment them into different folders"
            )
        if target.resolve() in inputs:
            raise InputError(
                f"the label image of {source} would overwrite the input {target}; "
                "choose another --labels-out folder"
            )
        seen[target] = source
    return targets


def _segment_one(image: Path, labels_out: Path, recipe: Recipe, channel: int | None) -> None:
    """Segment one image file (its ``channel``-th channel when given, 1-based) and write
    its label TIFF; print one line."""
    from plateseg.imaging import STACK, check_field_size, read_image, write_tiff
    from plateseg.segmentation import segment_field

    if not image.is_file():
        raise InputError(f"cannot read image {image}: no such file")
    try:
        data = image.read_bytes()
    except OSError as exc:  # e.g. no permission: this image, not the command, is unusable
        raise ImageReadError(str(image), f"cannot be read ({exc.strerror})") from None
    if channel is None:
        try:
            pixels = read_image(data, str(image), project=recipe.planes == "max")
        except ImageShapeError as exc:
            if not exc.problem.startswith(STACK):
                raise
            hint = "; --channel N reads channel N of a file holding channels"
            raise ImageShapeError(exc.key, exc.problem + hint) from None
    else:
        pixels = _channel_of(data, str(image), channel)
    pixels = check_field_size(pixels, str(image))
    result = segment_field({recipe.channels["nuclei"]: pixels}, recipe)
    try:
        labels_out.parent.mkdir(parents=True, exist_ok=True)
        labels_out.write_bytes(write_tiff(result.labels))
    except OSError as exc:
        raise PlatesegError(f"cannot write {labels_out}: {exc.strerror}") from None
    console.print(
        f"{result.object_count} nuclei in {image} -> {labels_out} "
        f"({result.labels.dtype}, {result.labels.shape[1]}x{result.labels.shape[0]})",
        soft_wrap=True,
        markup=False,
    )


def _channel_of(data: bytes, name: str, channel: int) -> np.ndarray:
    """Channel ``channel`` (1-based) of a file holding a field's channels
    (:func:`plateseg.imaging.stack.read_stack`; a single plane is channel 1).

    Raises
    ------
    ImageShapeError
        The file has fewer channels.
    """
    from plateseg.imaging.stack import read_stack

    stack = read_stack(data, name)
    if channel > stack.shape[0]:
        count = stack.shape[0]
        raise ImageShapeError(
            name,
            f"has {count} channel{'s' if count != 1 else ''}; --channel {channel} asks for "
            f"channel {channel}",
        )
    return stack[channel - 1]


def register(app: typer.Typer) -> None:
    app.command("demo-data")(demo_data)
    app.command("segment")(segment)
