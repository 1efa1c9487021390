"""Aggregate: read a Distributed Map's ResultWriter output, summarise it, write the run.

Three steps, one module each:

1. :mod:`plateseg.pipeline.aggregate_collect` reads the ResultWriter manifest and
   result files into a :class:`CollectedRun`;
2. :mod:`plateseg.results.summaries` computes well/experiment statistics, image QC flags and
   plate QC (Z') from the layout (:mod:`plateseg.plate.layout`, ``experiments/<id>/layout.csv``);
3. :func:`plateseg.db.write_run` writes the whole run in one transaction
   (PostgreSQL ``COPY``), replacing what the run wrote before.

Timestamps come from the data, not the clock, so that aggregating the same run twice
writes identical rows: ``started_at`` is the execution's start time and
``finished_at`` the latest ``StopDate`` of the Map's child executions. Channel keys
come from the Lookup manifest ``runs/<run_id>/manifest.json`` when it is present.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from plateseg.contracts import AggregateRequest, AggregateResult, ImageSummary, Recipe
from plateseg.contracts.params import canonical_recipe_json
from plateseg.db.engine import get_engine, upgrade
from plateseg.db.writer import RunRows, write_run
from plateseg.errors import InputError, ModelError, ObjectNotFoundError, PlatesegError
from plateseg.pipeline.aggregate_collect import (
    CollectedRun,
    collect_results,
    load_json,
    parse_time,
)
from plateseg.planning.costs import run_cost_usd
from plateseg.plate.layout import (
    PlateLayout,
    WellLayout,
    parse_layout,
    plate_format_for,
    read_layout_text,
    split_well,
)
from plateseg.results.summaries import finite, image_qc_flags, plate_qc, summarise
from plateseg.segmentation.onnx_model import model_digest
from plateseg.settings import get_settings
from plateseg.store import LocalStore, Store
from plateseg.store.keys import (
    layout_key,
    lookup_report_key,
    masks_prefix,
    objects_prefix,
    run_layout_key,
    run_prefix,
)
from plateseg.store.keys import manifest_key as lookup_manifest_key

logger = logging.getLogger(__name__)

__all__ = [
    "CollectedRun",
    "aggregate_run",
    "build_rows",
    "canonical_recipe",
    "collect_results",
    "summarise",
]


def canonical_recipe(recipe: Recipe | dict[str, Any]) -> tuple[str, str]:
    """Canonical JSON text of a recipe (sorted keys, no spaces) and its SHA-256 hex digest.

    >>> canonical_recipe({"segmenter": "classical", "params": {}})[0]
    '{"params":{},"segmenter":"classical"}'
    """
    text = canonical_recipe_json(recipe)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_request(request: AggregateRequest) -> str:
    key = request.result_writer.get("Key")
    if not key:
        raise InputError(
            f"aggregate request for run {request.run_id!r}: result_writer has no 'Key' "
            f"(got {sorted(request.result_writer)})"
        )
    if not key.startswith(run_prefix(request.run_id)):
        raise InputError(
            f"aggregate request for run {request.run_id!r}: result manifest {key!r} "
            f"is not under {run_prefix(request.run_id)}"
        )
    return key


def _channels(store: Store, run_id: str) -> tuple[dict[str, dict[str, str]], int | None]:
    """Channel keys per image id from the Lookup manifest, and its item count."""
    key = lookup_manifest_key(run_id)
    try:
        items = load_json(store, key)
    except ObjectNotFoundError:
        return {}, None
    if not isinstance(items, list):
        raise InputError(f"{store.uri(key)}: expected a JSON array of items")
    out: dict[str, dict[str, str]] = {}
    for index, entry in enumerate(items):
        try:
            out[f"{entry['plate']}_{entry['well']}_{entry['field']}"] = dict(entry["channels"])
        except (KeyError, TypeError):
            raise InputError(
                f"{store.uri(key)}[{index}]: an item needs plate, well, field, channels"
            ) from None
    return out, len(items)


#: What Lookup's report says of the run's start, recorded with the run's parameters.
PROVENANCE_FIELDS = (
    "naming",
    "naming_detected",
    "channels_detected",
    "started_by",
    "code_version",
)


def _provenance(store: Store, run_id: str) -> dict[str, Any]:
    """The file-name convention Lookup read the experiment with (and whether it was
    detected), whether Lookup chose the channels, who started the run and the plateseg
    version, from ``runs/<id>/lookup-report.json``; empty for a run aggregated without
    Lookup."""
    try:
        report = load_json(store, lookup_report_key(run_id))
    except ObjectNotFoundError:
        return {}
    if not isinstance(report, dict):
        return {}
    return {name: report[name] for name in PROVENANCE_FIELDS if report.get(name) is not None}


def _model_hash(store: Store, recipe: Recipe) -> str | None:
    """SHA-256 of the recipe's model: the hash Lookup pinned the run to, else (a run
    aggregated without Lookup) of the model ``params.model`` names, if it exists."""
    params = recipe.params
    pinned, model = params.get("model_sha256"), params.get("model")
    if isinstance(pinned, str) and pinned:
        return pinned
    if not isinstance(model, str) or not model:
        return None
    try:
        return model_digest(model, store)
    except ModelError:
        return None


def _plates_and_wells(
    images: list[ImageSummary], layout: PlateLayout | None, where: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``plates`` and ``wells`` rows: every imaged well plus every layout well of a plate."""
    imaged: dict[str, set[str]] = {}
    for image in images:
        imaged.setdefault(image.plate, set()).add(image.well)
    index = layout.index() if layout is not None else {}
    plates: list[dict[str, Any]] = []
    wells: list[dict[str, Any]] = []
    for plate in sorted(imaged):
        names = set(imaged[plate]) | {w for (p, w) in index if p is None or p == plate}
        entries: list[WellLayout] = []
        for name in sorted(names):
            entry = index.get((plate, name)) or index.get((None, name))
            if entry is None:
                row, column = split_well(name, f"{where}: well of plate {plate!r}")
                entry = WellLayout(well=name, row=row, column=column)
            entries.append(entry)
        size = plate_format_for([(e.row, e.column) for e in entries])
        plates.append({"plate": plate, "n_wells": len(imaged[plate]), "plate_format": size})
        wells.extend(
            {
                "plate": plate,
                "well": e.well,
                "row": e.row,
                "column": e.column,
                "condition": e.condition,
                "compound": e.compound,
                "concentration": e.concentration,
                "control": e.control,
            }
            for e in entries
        )
    return plates, wells


def _image_row(image: ImageSummary, channels: dict[str, str] | None) -> dict[str, Any]:
    metadata = {"Plate": image.plate, "Well": image.well, "Site": image.field}
    return {
        "image_id": image.image_id,
        "plate": image.plate,
        "well": image.well,
        "field": image.field,
        "status": image.status,
        "error": image.error[:256] if image.error else None,
        "cause": image.cause,
        "object_count": image.object_count,
        "mask_key": image.mask_key,
        "channels_json": json.dumps(channels, sort_keys=True) if channels else None,
        "metadata_json": json.dumps(metadata, sort_keys=True),
        "qc_flags": image_qc_flags(image),
    }


def _parameters(
    request: AggregateRequest, collected: CollectedRun, given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Run parameters: the Map settings the definition passed (``run_settings``, the
    fields :meth:`~plateseg.map_settings.MapSettings.run_settings` names), then the caller's."""
    params: dict[str, Any] = {}
    settings = request.run_settings
    if settings is not None:
        params.update(settings.run_settings())
        params["batch_size"] = settings.items_per_batch
    params.update(given or {})
    params.setdefault("batch_size", collected.batch_size or None)
    params["parquet_parts"] = len(collected.parquet_keys)
    params["child_seconds"] = round(collected.child_seconds, 3)
    return params


def _cost_estimate(request: AggregateRequest, collected: CollectedRun, images: int) -> float | None:
    """What the run's work costs on AWS at its settings (``None`` without settings).

    Priced by :func:`plateseg.planning.run_cost_usd` on the child executions' summed
    durations; a local run is priced as if each child had been a Lambda of the
    definition's ``segment_memory_mb`` taking as long as it took here.
    """
    settings = request.run_settings
    if settings is None:
        return None
    return round(
        run_cost_usd(
            images,
            collected.batches,
            collected.child_seconds,
            settings.segment_memory_mb,
            settings.child_execution_type,
        ),
        9,
    )


def _run_layout(store: Store, request: AggregateRequest) -> tuple[str | None, PlateLayout | None]:
    """The layout the run was started with: Lookup's snapshot (``runs/<id>/layout.csv``),
    else (a run from before snapshots) the experiment's current ``layout.csv``."""
    for key in (run_layout_key(request.run_id), layout_key(request.experiment_id)):
        text = read_layout_text(store, key)
        if text is not None:
            return text, parse_layout(text, source=store.uri(key))
    return None, None


def build_rows(
    request: AggregateRequest,
    store: Store,
    *,
    engine_name: Literal["local", "aws"] | None = None,
    parameters: Mapping[str, Any] | None = None,
    cost_estimate_usd: float | None = None,
) -> RunRows:
    """Everything :func:`aggregate_run` writes for ``request``, without touching the database.

    Raises
    ------
    InputError, ObjectNotFoundError
        See :func:`aggregate_run`.
    """
    manifest_key = _check_request(request)
    collected = collect_results(store, manifest_key, request.run_id)
    images = sorted(collected.images.values(), key=lambda image: image.image_id)
    layout_text, layout = _run_layout(store, request)
    wells, experiment = summarise(images)
    plates, well_rows = _plates_and_wells(images, layout, store.uri(manifest_key))
    controls = {(w["plate"], w["well"]): w["control"] for w in well_rows if w["control"]}
    channels, items_total = _channels(store, request.run_id)
    ok = [image for image in images if image.status == "ok"]
    status: Literal["SUCCEEDED", "SUCCEEDED_WITH_FAILURES"] = (
        "SUCCEEDED_WITH_FAILURES" if collected.failures else "SUCCEEDED"
    )
    recipe_json, recipe_hash = canonical_recipe(request.recipe)
    started = parse_time(request.started_at, "aggregate request started_at")
    params = {**_provenance(store, request.run_id), **_parameters(request, collected, parameters)}
    if cost_estimate_usd is None:
        cost_estimate_usd = _cost_estimate(request, collected, len(images))
    run: dict[str, Any] = {
        "run_id": request.run_id,
        "experiment_id": request.experiment_id,
        "execution_id": request.execution_id,
        "engine": engine_name or ("local" if isinstance(store, LocalStore) else "aws"),
        "status": status,
        "recipe_json": recipe_json,
        "recipe_hash": recipe_hash,
        "map_run_arn": request.map_run_arn,
        "result_manifest_key": manifest_key,
        "objects_prefix": objects_prefix(request.run_id),
        "started_at": started,
        "finished_at": collected.finished_at or started or datetime.now(UTC),
        "images_ok": len(ok),
        "images_failed": len(images) - len(ok),
        "batches_failed": collected.batches_failed,
        "objects": sum(image.object_count for image in ok),
        "model_hash": _model_hash(store, request.recipe),
        "parameters_json": json.dumps(params, sort_keys=True, separators=(",", ":")),
        "max_concurrency": params.get("max_concurrency"),
        "batch_size": params.get("batch_size"),
        "items_total": items_total if items_total is not None else len(images),
        "batches": collected.batches,
        "cost_estimate_usd": cost_estimate_usd,
        "object_parts_json": json.dumps(collected.parquet_keys),
        "layout_csv": layout_text,
    }
    return RunRows(
        run=run,
        images=[_image_row(image, channels.get(image.image_id)) for image in images],
        image_metrics=[
            {"image_id": image.image_id, "metric": name, "value": finite(value)}
            for image in ok
            for name, value in sorted(image.metrics.items())
        ],
        well_metrics=wells,
        experiment_metrics=experiment,
        failures=collected.failures,
        plate_qc=plate_qc(wells, controls),
        plates=plates,
        wells=well_rows,
    )


#: Suffixes of the files Segment writes per image under ``runs/<run_id>/masks/``.
_MASK_SUFFIXES = (".cells.tif", ".overlay.png", ".thumb.png", ".tif")


def prune_superseded(store: Store, rows: RunRows) -> int:
    """Delete what earlier attempts of the run left that the committed run does not use.

    Called once the run's rows are committed: Parquet parts under ``objects/`` that the
    run did not record (another batching wrote other parts), and masks, overlays and
    thumbnails of images that are not ``ok`` in this attempt. Exports never read those
    (they read the recorded parts), so a crash part-way through leaves only litter.
    Returns the number of files deleted.
    """
    run_id = rows.run["run_id"]
    keep = set(json.loads(rows.run["object_parts_json"]))
    ok = {image["image_id"] for image in rows.images if image["status"] == "ok"}
    stale = [
        info.key
        for info in store.list(objects_prefix(run_id))
        if info.key.endswith(".parquet") and info.key not in keep
    ]
    masks = masks_prefix(run_id)
    for info in store.list(masks):
        name = info.key[len(masks) :]
        image_id = next((name[: -len(s)] for s in _MASK_SUFFIXES if name.endswith(s)), None)
        if image_id is not None and image_id not in ok:
            stale.append(info.key)
    return store.delete_keys(stale)


def aggregate_run(
    request: AggregateRequest,
    store: Store,
    engine: sa.Engine | None = None,
    *,
    engine_name: Literal["local", "aws"] | None = None,
    parameters: Mapping[str, Any] | None = None,
    cost_estimate_usd: float | None = None,
) -> AggregateResult:
    """Summarise one run from its ResultWriter output and write it in one transaction.

    Parameters
    ----------
    request : AggregateRequest
        The Aggregate Lambda's event.
    store : Store
        Store holding ``request.result_writer["Key"]`` and the files it lists, the
        Lookup manifest and the experiment's ``layout.csv`` (both optional).
    engine : sqlalchemy.Engine, optional
        Target database; defaults to :func:`plateseg.db.get_engine` (the configured URL).
    engine_name : {"local", "aws"}, optional
        Which engine ran the state machine; by default ``"local"`` for a
        :class:`~plateseg.store.LocalStore`, else ``"aws"``.
    parameters : mapping, optional
        Run parameters to record (``max_concurrency``, ``batch_size``, ...); the batch
        size defaults to the largest batch seen in the results.
    cost_estimate_usd : float, optional
        Estimated cost of the run, if the caller computed one.

    Returns
    -------
    AggregateResult
        ``SUCCEEDED``, or ``SUCCEEDED_WITH_FAILURES`` if any image or batch failed.

    Raises
    ------
    InputError
        The request, a ResultWriter file or the layout is malformed (naming the file
        and record or line).
    ObjectNotFoundError
        A ResultWriter file is missing.
    DatabaseUnavailableError
        The database is unreachable (transient: the state machine retries).
    DatabaseError
        Any other database failure. Nothing is written unless everything is.
    """
    rows = build_rows(
        request,
        store,
        engine_name=engine_name,
        parameters=parameters,
        cost_estimate_usd=cost_estimate_usd,
    )
    engine = engine if engine is not None else get_engine()
    if get_settings().auto_migrate:
        upgrade(engine)
    write_run(engine, rows)
    try:  # best effort: exports read only the recorded parts, leftovers are litter
        prune_superseded(store, rows)
    except PlatesegError as exc:
        logger.warning("run %s: superseded outputs not deleted: %s", request.run_id, exc)
    run = rows.run
    return AggregateResult(
        run_id=request.run_id,
        experiment_id=request.experiment_id,
        status=run["status"],
        images_ok=run["images_ok"],
        images_failed=run["images_failed"],
        batches_failed=run["batches_failed"],
        wells=len({(image["plate"], image["well"]) for image in rows.images}),
        objects=run["objects"],
    )
