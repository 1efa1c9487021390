"""Lookup: validate the execution input, list the experiment, write the run manifest.

The manifest (``runs/<run_id>/manifest.json``) is the JSON array of
:class:`~plateseg.contracts.ManifestItem` the Distributed Map's ItemReader reads; one
item per field of view with all its channels. Beside it Lookup stores the validated
recipe (``recipe.json``) and what it skipped (``lookup-report.json``).
"""

from __future__ import annotations

from plateseg.contracts import ExecutionInput, LookupRequest, LookupResult, ManifestItem, Recipe
from plateseg.errors import ExecutionInputError, InputError, RecipeError
from plateseg.metadata import build_manifest, naming_pattern
from plateseg.segmentation import validate_recipe
from plateseg.store import Store, put_json

__all__ = ["experiment_prefix", "lookup", "run_prefix"]


def experiment_prefix(experiment_id: str) -> str:
    """Store prefix of an experiment's input images: ``experiments/<id>/``."""
    return f"experiments/{experiment_id}/"


def run_prefix(run_id: str) -> str:
    """Store prefix of everything a run writes: ``runs/<run_id>/``."""
    return f"runs/{run_id}/"


def _check_channels(recipe: Recipe, items: list[ManifestItem], experiment_id: str) -> None:
    """The recipe's nuclei channel must exist in the experiment, or every field would fail."""
    if not items:
        return
    found = sorted({channel for item in items for channel in item.channels})
    nuclei = recipe.channels["nuclei"]
    if nuclei not in found:
        raise RecipeError(
            f"recipe.channels.nuclei: channel {nuclei!r} is in no field of experiment "
            f"{experiment_id!r}; its channels are {', '.join(found)} "
            f'(e.g. "channels": {{"nuclei": "{found[0]}"}})'
        )


def lookup(request: LookupRequest, store: Store) -> LookupResult:
    """List an experiment's images, group them into fields, write the manifest.

    Parameters
    ----------
    request : LookupRequest
        The raw execution input, the execution name (default run id) and the bucket.
    store : Store
        Where the experiment lives and the run is written.

    Returns
    -------
    LookupResult
        ``item_count == 0`` means no images: the state machine then fails with
        ``NoImagesFound`` and ``message`` as its cause.

    Raises
    ------
    ExecutionInputError, ExperimentIdError, RecipeError
        The input is invalid; the message names the field.
    """
    execution_input = ExecutionInput.parse(request.input)
    recipe = validate_recipe(execution_input.recipe)
    try:
        pattern = naming_pattern(execution_input.naming)
    except InputError as exc:
        raise ExecutionInputError(f"input.naming: {exc}") from None
    experiment_id = execution_input.experiment_id
    run_id = execution_input.run_id or request.execution_name
    prefix = experiment_prefix(experiment_id)

    keys = [info.key for info in store.list(prefix)]
    items, report = build_manifest(keys, experiment_id, pattern)
    _check_channels(recipe, items, experiment_id)

    out = run_prefix(run_id)
    manifest_key = f"{out}manifest.json"
    put_json(store, manifest_key, [item.model_dump(mode="json") for item in items])
    put_json(store, f"{out}recipe.json", recipe.model_dump(mode="json"))
    put_json(
        store,
        f"{out}lookup-report.json",
        {
            "experiment_id": experiment_id,
            "naming": execution_input.naming or "imagexpress",
            "objects_listed": len(keys),
            "fields": len(items),
            "ignored": list(report.ignored),
            "unmatched": list(report.unmatched),
            "duplicates": list(report.duplicates),
        },
    )

    if items:
        message = f"{len(items)} fields of view in {store.uri(prefix)}"
        extra = report.summary()
        if extra:
            message += f"; {extra}"
    elif keys:
        message = (
            f"no usable images for experiment {experiment_id!r} in {store.uri(prefix)}: "
            f"{report.summary()}; file names read as "
            f"{execution_input.naming or 'imagexpress'!r} (set the input's 'naming' to a "
            "preset — imagexpress, operetta, opera-phenix, cellomics, incell — or a regex)"
        )
    else:
        message = f"no images found for experiment {experiment_id!r}: {store.uri(prefix)} is empty"
    return LookupResult(
        run_id=run_id,
        experiment_id=experiment_id,
        bucket=request.bucket,
        manifest_key=manifest_key,
        result_prefix=f"{out}map",
        item_count=len(items),
        recipe=recipe.model_dump(mode="json"),
        message=message,
    )
