"""``plateseg demo-data`` and ``plateseg segment``: data in, one image out."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from plateseg.cli.output import RECIPE_HELP, console, load_json_argument
from plateseg.errors import InputError, PlatesegError
from plateseg.store.keys import experiment_prefix, truth_prefix


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


def segment(
    image: Path = typer.Argument(..., help="Image file (TIFF, PNG or JPEG), nuclei channel."),
    labels_out: Path = typer.Option(..., "--labels-out", help="Where to write the label TIFF."),
    recipe: str = typer.Option("", help=RECIPE_HELP),
) -> None:
    """Segment one image with a recipe and write its label image (0 = background)."""
    from plateseg.contracts import Recipe
    from plateseg.errors import format_validation_error
    from plateseg.imaging import check_field_size, read_image, write_tiff
    from plateseg.segmentation import segment_field, validate_recipe

    try:
        data = image.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image {image}: {exc.strerror}") from None
    parsed = Recipe()
    if recipe:
        from pydantic import ValidationError

        from plateseg.errors import RecipeError

        try:
            parsed = Recipe.model_validate(load_json_argument(recipe, "--recipe"))
        except ValidationError as exc:
            raise RecipeError(format_validation_error(exc, "recipe")) from None
    parsed = validate_recipe(parsed)
    pixels = check_field_size(read_image(data, str(image)), str(image))
    result = segment_field({parsed.channels["nuclei"]: pixels}, parsed)
    try:
        labels_out.parent.mkdir(parents=True, exist_ok=True)
        labels_out.write_bytes(write_tiff(result.labels))
    except OSError as exc:
        raise PlatesegError(f"cannot write {labels_out}: {exc.strerror}") from None
    console.print(
        f"{result.object_count} nuclei in {image} -> {labels_out} "
        f"({result.labels.dtype}, {result.labels.shape[1]}x{result.labels.shape[0]})",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("demo-data")(demo_data)
    app.command("segment")(segment)
