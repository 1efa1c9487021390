"""Lookup: validate the execution input, list the experiment, write the run manifest.

The manifest (``runs/<run_id>/manifest.json``) is the JSON array of
:class:`~plateseg.contracts.ManifestItem` the Distributed Map's ItemReader reads; one
item per field of view with all its channels. Beside it Lookup stores the validated
recipe (``recipe.json``, pinned to the model's SHA-256), what it skipped
(``lookup-report.json``), the owner (``owner.json``) and the pinned inputs: the model's
bytes and the layout (:mod:`plateseg.pipeline.pinning`).

Lookup refuses, before any image is segmented, what would otherwise waste a whole run
or give results nobody can trust (each an :class:`~plateseg.errors.InputError` naming
the files):

- two files for the same plate, well, field and channel (which one is real is the
  scientist's call); the report lists every pair;
- a recipe whose segmentation model (``params.model`` of the ``onnx`` and
  ``trainable`` segmenters) is missing or not a valid ONNX model — otherwise every
  batch would fail alike and the run would end with only "tolerated failure threshold
  exceeded";
- a field whose well lies on no standard plate (``Z99``), naming its file — Aggregate
  would otherwise fail only after every field was segmented;
- a run id that belongs to another experiment (:mod:`plateseg.pipeline.ownership`;
  checked, and the owner recorded, before anything is written);
- a ``layout.csv`` that does not parse (a malformed or off-plate well, a bad
  concentration or control value), named by line and column — Aggregate reads the
  same file at the end of the run, so a bad layout would otherwise fail the run only
  after every field was segmented.

Layout wells that have no images are fine (a plate map describes the whole plate); the
report lists them under ``layout_wells_without_images``.

A symbolic link in a local store that leads outside it (a plate folder linked in from
another disk), or is broken, is not followed (:class:`~plateseg.store.LocalStore`
refuses it); the report lists each under ``refused_links`` and the message counts them,
so a linked plate never vanishes without a word.
"""

from __future__ import annotations

from plateseg import __version__
from plateseg.contracts import (
    DEFAULT_CHANNELS,
    ExecutionInput,
    LookupRequest,
    LookupResult,
    ManifestItem,
)
from plateseg.errors import ExecutionInputError, InputError
from plateseg.pipeline.ownership import claim_run
from plateseg.pipeline.pinning import pin_model, snapshot_layout
from plateseg.plate.channels import resolve_channels
from plateseg.plate.layout import (
    PlateLayout,
    parse_layout,
    plate_format_for,
    read_layout_text,
    split_well,
)
from plateseg.plate.manifest import ManifestReport, build_manifest, choose_naming
from plateseg.runs.ids import check_run_id
from plateseg.segmentation import validate_recipe
from plateseg.store import LocalStore, Store, put_json
from plateseg.store.keys import (
    experiment_prefix,
    layout_key,
    lookup_report_key,
    manifest_key,
    recipe_key,
    result_prefix,
)

__all__ = ["lookup"]

#: Problems (duplicate pairs, off-plate wells) named in an error message; the report
#: file lists them all.
_SHOWN = 3


def _first_few(problems: list[str]) -> str:
    """The first :data:`_SHOWN` problems, then how many more."""
    more = len(problems) - _SHOWN
    return "; ".join(problems[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")


def _check_duplicates(
    report: ManifestReport, experiment_id: str, store: Store, report_key: str
) -> None:
    """Refuse an experiment with two files for one plate/well/field/channel, naming both."""
    if not report.duplicates:
        return
    pairs = [f"{report.duplicate_of[key]!r} and {key!r}" for key in report.duplicates]
    raise InputError(
        f"experiment {experiment_id!r} has {len(pairs)} duplicate image"
        f"{'s' if len(pairs) != 1 else ''} (same plate, well, field and channel): "
        f"{_first_few(pairs)}; remove or rename one of each pair, or set the input's 'naming' "
        f"(full list: {store.uri(report_key)})"
    )


def _off_plate(items: list[ManifestItem]) -> list[str]:
    """``"<well> (<file>)"`` for every field whose well is not on a 1536-well plate."""
    found = []
    for item in items:
        try:
            plate_format_for([split_well(item.well)])
        except InputError:
            first = sorted(item.channels.values())[0]
            found.append(f"{item.well} ({first})")
    return found


def _check_off_plate(off_plate: list[str], store: Store, report_key: str) -> None:
    """Refuse fields whose well lies on no standard plate, naming their files."""
    if not off_plate:
        return
    raise InputError(
        f"{len(off_plate)} field(s) name a well that is on no 96-, 384- or 1536-well plate: "
        f"{_first_few(off_plate)}; rename or remove those files "
        f"(full list: {store.uri(report_key)})"
    )


def _layout_wells_without_images(
    layout: PlateLayout | None, items: list[ManifestItem]
) -> list[str]:
    """``"<plate> <well>"`` of every layout well no field was imaged in, sorted."""
    if layout is None or not items:
        return []
    imaged = {(item.plate, item.well) for item in items}
    plates = sorted({item.plate for item in items})
    missing = set()
    for entry in layout.wells:
        for plate in [entry.plate] if entry.plate is not None else plates:
            if (plate, entry.well) not in imaged:
                missing.add((plate, entry.well))
    return [f"{plate} {well}" for plate, well in sorted(missing)]


def _refused_links(store: Store, prefix: str) -> list[dict[str, str]]:
    """The links under ``prefix`` a local store did not follow (S3 has no links)."""
    if not isinstance(store, LocalStore):
        return []
    return [
        {"key": link.key, "target": link.target, "reason": link.reason}
        for link in store.refused_links(prefix)
    ]


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
    ModelError
        The recipe's model is missing or invalid.
    InputError
        The experiment has duplicate images (both keys named; the full list is in
        ``runs/<run_id>/lookup-report.json``), or its ``layout.csv`` is invalid (file,
        line and column named).
    """
    execution_input = ExecutionInput.parse(request.input)
    recipe = validate_recipe(execution_input.recipe)
    experiment_id = execution_input.experiment_id
    # no run id in the input: the execution's name is the run id, under the same rule
    run_id = execution_input.run_id or check_run_id(request.execution_name)
    claim_run(store, run_id, experiment_id)  # before anything else is written under the run
    prefix = experiment_prefix(experiment_id)

    keys = [info.key for info in store.list(prefix)]
    refused = _refused_links(store, prefix)
    try:
        naming = choose_naming(keys, experiment_id, execution_input.naming)
    except InputError as exc:
        raise ExecutionInputError(f"input.naming: {exc}") from None
    project = recipe.planes == "max"
    items, report = build_manifest(keys, experiment_id, naming.pattern, project=project)
    found = (channel for item in items for channel in item.channels)
    recipe, channel_choice = resolve_channels(recipe, found, experiment_id)
    if items:
        # the model is loaded once, so a missing or invalid one fails the run here by name,
        # and the bytes checked are the bytes pinned
        recipe = pin_model(recipe, store, run_id)
    layout_text = read_layout_text(store, layout_key(experiment_id)) if items else None
    layout = (  # InputError if malformed; the text checked is the text snapshotted
        parse_layout(layout_text, source=store.uri(layout_key(experiment_id)))
        if layout_text is not None
        else None
    )
    unimaged = _layout_wells_without_images(layout, items)
    off_plate = _off_plate(items)

    report_key = lookup_report_key(run_id)
    put_json(
        store,
        report_key,
        {
            "experiment_id": experiment_id,
            "naming": naming.name,
            "naming_detected": naming.detected,
            "naming_reason": naming.reason,
            "channels": recipe.channels,
            "channels_detected": channel_choice is not None,
            "channels_reason": channel_choice.reason if channel_choice else "",
            "started_by": execution_input.started_by,
            "code_version": __version__,
            "objects_listed": len(keys),
            "fields": len(items),
            "ignored": list(report.ignored),
            "unmatched": list(report.unmatched),
            "duplicates": list(report.duplicates),
            "duplicate_pairs": [[report.duplicate_of[k], k] for k in report.duplicates],
            "extra_planes": list(report.extra_planes),
            "layout_wells_without_images": unimaged,
            "off_plate": off_plate,
            "refused_links": refused,
        },
    )
    _check_duplicates(report, experiment_id, store, report_key)
    _check_off_plate(off_plate, store, report_key)
    snapshot_layout(store, run_id, layout_text)
    manifest = manifest_key(run_id)
    put_json(store, manifest, [item.model_dump(mode="json", exclude_none=True) for item in items])
    put_json(store, recipe_key(run_id), recipe.model_dump(mode="json"))

    if items:
        message = f"{len(items)} fields of view in {store.uri(prefix)}"
        if report.has_findings:
            message += f"; {report.summary()}"
        if unimaged:
            message += f"; {len(unimaged)} layout well(s) without images"
        if naming.detected and naming.name != "imagexpress":
            message += f"; file names read as {naming.name} (detected)"
        if channel_choice is not None:
            message += (
                f"; no channel {DEFAULT_CHANNELS['nuclei']} for the default recipe, so "
                f"{channel_choice.reason} "
                '(set "channels" in the recipe to choose)'
            )
    elif keys:
        message = (
            f"no usable images for experiment {experiment_id!r} in {store.uri(prefix)}: "
            f"{report.summary()}; file names read as "
            f"{naming.name!r} ({naming.reason}; set the input's 'naming' to a "
            "preset — imagexpress, operetta, opera-phenix, cellomics, incell — or a regex)"
        )
    else:
        message = f"no images found for experiment {experiment_id!r}: {store.uri(prefix)} is empty"
    if refused:
        shown = ", ".join(f"{link['key']} ({link['reason']})" for link in refused[:3])
        more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
        message += (
            f"; {len(refused)} symbolic link(s) not followed: {shown}{more} "
            f"(links must stay inside the store; see {store.uri(report_key)})"
        )
    return LookupResult(
        run_id=run_id,
        experiment_id=experiment_id,
        bucket=request.bucket,
        manifest_key=manifest,
        result_prefix=result_prefix(run_id),
        item_count=len(items),
        recipe=recipe,
        message=message,
    )
