"""Aggregate: read a Distributed Map's ResultWriter output, summarise it, write the run.

Aggregate never reads the Map's state output (it would exceed the 256 KiB payload
limit); it reads what the ResultWriter stored (AWS's layout; the local engine writes
the same)::

    runs/<run_id>/map/<map-run-id>/manifest.json
        {"DestinationBucket": B, "MapRunArn": ARN,
         "ResultFiles": {"SUCCEEDED": [{"Key": k, "Size": n}], "FAILED": [...],
                         "PENDING": [...]}}
    SUCCEEDED_n.json / FAILED_n.json / PENDING_n.json
        JSON array of child-execution records {"Name", "Status", "Input", "Output",
        "Error", "Cause", "StartDate", "StopDate", ...}; "Input" and "Output" are JSON
        *strings* (a Batch and a SegmentResult).

Summaries
---------
Per well, over its OK fields and for every metric: mean, median and **population**
standard deviation (ddof=0, so one field gives 0) of the finite per-field values;
``n_fields`` counts those values and ``n_objects`` sums the fields' object counts.
Per experiment, the same three statistics over the wells' means (``n_wells``).
Non-finite values (NaN, ±inf) are stored as NULL and left out of every statistic.

Timestamps come from the data, not the clock, so that aggregating the same run twice
writes identical rows: ``started_at`` is the execution's start time and
``finished_at`` the latest ``StopDate`` of the Map's child executions.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import ValidationError

from plateseg.contracts import (
    AggregateRequest,
    AggregateResult,
    ImageSummary,
    ManifestItem,
    SegmentResult,
    format_validation_error,
)
from plateseg.db.engine import get_engine, upgrade
from plateseg.db.writer import RunRows, write_run
from plateseg.errors import InputError
from plateseg.settings import get_settings
from plateseg.store import LocalStore, Store, get_json

__all__ = ["CollectedRun", "aggregate_run", "canonical_recipe", "collect_results", "summarise"]


@dataclass
class CollectedRun:
    """What the ResultWriter files say about one run, before any summarising.

    Attributes
    ----------
    images : dict of str to ImageSummary
        Every image with a final outcome, keyed by image id (failed batches included,
        as ``status="error"`` summaries carrying the batch's Error and Cause).
    failures : list of dict
        ``run_failures`` rows: per-image errors and the images of failed batches.
    batches_failed : int
        Child executions listed as FAILED (or still PENDING) in the manifest.
    finished_at : datetime or None
        Latest ``StopDate`` among the child executions.
    batch_failed_ids : set of str
        Image ids whose outcome is their batch's failure.
    """

    images: dict[str, ImageSummary] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    batches_failed: int = 0
    finished_at: datetime | None = None
    batch_failed_ids: set[str] = field(default_factory=set)


def canonical_recipe(recipe: dict[str, Any]) -> tuple[str, str]:
    """Canonical JSON text of a recipe (sorted keys, no spaces) and its SHA-256 hex digest.

    >>> canonical_recipe({"segmenter": "classical", "params": {}})[0]
    '{"params":{},"segmenter":"classical"}'
    """
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def _parse_time(value: Any, what: str) -> datetime | None:
    """Parse an ISO-8601 time (``Z`` allowed, as AWS writes them) to an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip().removesuffix(" UTC").replace(" ", "T", 1)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(f"{what}: {value!r} is not an ISO-8601 time") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise InputError(f"{what}: expected a time, got {type(value).__name__}")


def _load_json(store: Store, key: str) -> Any:
    try:
        return get_json(store, key)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{store.uri(key)} is not valid JSON: {exc}") from None


def _result_keys(manifest: Any, where: str) -> dict[str, list[str]]:
    files = manifest.get("ResultFiles") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise InputError(f"{where}: no 'ResultFiles' object")
    keys: dict[str, list[str]] = {}
    for status in ("SUCCEEDED", "FAILED", "PENDING"):
        entries = files.get(status, [])
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("Key"), str) for e in entries
        ):
            raise InputError(f"{where}: ResultFiles.{status} must list {{'Key': ...}}")
        keys[status] = [e["Key"] for e in entries]
    return keys


def _batch_items(record: dict[str, Any], where: str) -> list[ManifestItem] | None:
    """The Items of a child execution's input, or ``None`` if the input was not kept."""
    if not isinstance(record.get("Input"), str):
        return None
    try:
        data = json.loads(record["Input"])
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: Input is not JSON: {exc}") from None
    items = data.get("Items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise InputError(f"{where}: Input has no 'Items' array")
    try:
        return [ManifestItem.model_validate(item) for item in items]
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, f"{where}: Input")) from None


def _add_succeeded(run: CollectedRun, record: dict[str, Any], run_id: str, where: str) -> None:
    try:
        result = SegmentResult.model_validate_json(record.get("Output") or "")
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, f"{where}: Output")) from None
    if result.run_id != run_id:
        raise InputError(f"{where}: output belongs to run {result.run_id!r}, not {run_id!r}")
    for summary in result.images:
        if summary.image_id in run.images:
            raise InputError(f"{where}: image {summary.image_id!r} was reported twice")
        run.images[summary.image_id] = summary


def _failure(
    item_id: str, kind: str, batch: str | None, error: str, cause: str | None
) -> dict[str, Any]:
    """One ``run_failures`` row (``attempts`` is unknown from ResultWriter records)."""
    return {
        "item_id": item_id,
        "kind": kind,
        "batch": batch,
        "error": error[:256],
        "cause": cause or "",
        "attempts": None,
    }


def _add_failed(run: CollectedRun, record: dict[str, Any], status: str, where: str) -> None:
    run.batches_failed += 1
    name = str(record.get("Name") or record.get("ExecutionArn") or where)[:128]
    if status == "PENDING":
        error, cause = "States.Pending", "the child execution had not finished"
    else:
        error = str(record.get("Error") or "States.Failed")[:256]
        cause = str(record.get("Cause") or "")
    items = _batch_items(record, where)
    if items is None:
        run.failures.append(_failure(name, "batch", name, error, cause))
        return
    for item in items:
        if item.image_id in run.images:  # already has an outcome (e.g. a redriven batch)
            continue
        run.batch_failed_ids.add(item.image_id)
        run.images[item.image_id] = ImageSummary(
            image_id=item.image_id,
            plate=item.plate,
            well=item.well,
            field=item.field,
            status="error",
            error=error,
            cause=cause,
        )
        run.failures.append(_failure(item.image_id, "batch", name, error, cause))


def collect_results(store: Store, manifest_key: str, run_id: str) -> CollectedRun:
    """Read a ResultWriter manifest and every result file it lists.

    Parameters
    ----------
    store : Store
        Store holding the ResultWriter output.
    manifest_key : str
        Key of ``manifest.json``.
    run_id : str
        The run the files must belong to.

    Raises
    ------
    ObjectNotFoundError
        The manifest or a result file is missing.
    InputError
        A file is malformed, naming the file and the child execution.
    """
    keys = _result_keys(_load_json(store, manifest_key), store.uri(manifest_key))
    run = CollectedRun()
    # Successes first, so an image that succeeded on a redriven batch is not a failure.
    for status in ("SUCCEEDED", "FAILED", "PENDING"):
        for key in keys[status]:
            records, uri = _load_json(store, key), store.uri(key)
            if not isinstance(records, list):
                raise InputError(f"{uri}: expected a JSON array of executions")
            for index, record in enumerate(records):
                where = f"{uri}[{index}]"
                if not isinstance(record, dict):
                    raise InputError(f"{where}: expected an object")
                stop = _parse_time(record.get("StopDate"), f"{where}.StopDate")
                if stop is not None and (run.finished_at is None or stop > run.finished_at):
                    run.finished_at = stop
                if status == "SUCCEEDED":
                    _add_succeeded(run, record, run_id, where)
                else:
                    _add_failed(run, record, status, where)
    for summary in run.images.values():
        if summary.status == "error" and summary.image_id not in run.batch_failed_ids:
            error = summary.error or "ImageError"
            run.failures.append(_failure(summary.image_id, "image", None, error, summary.cause))
    run.failures.sort(key=lambda row: row["item_id"])
    return run


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _stats(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """Mean, median and population std (ddof=0); ``math.fsum`` makes them order-independent."""
    if not values:
        return None, None, None
    n = len(values)
    mean = math.fsum(values) / n
    ordered = sorted(values)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / n)
    return mean, median, std


def summarise(
    images: list[ImageSummary],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-well and per-experiment summaries of the OK images (see the module docstring).

    Parameters
    ----------
    images : list of ImageSummary
        Every image of the run; only ``status == "ok"`` ones count.

    Returns
    -------
    wells : list of dict
        ``well_metrics`` rows: plate, well, metric, mean, median, std, n_fields, n_objects.
    experiment : list of dict
        ``experiment_metrics`` rows: metric, mean, median, std, n_wells.
    """
    by_well: dict[tuple[str, str], list[ImageSummary]] = defaultdict(list)
    for image in images:
        if image.status == "ok":
            by_well[(image.plate, image.well)].append(image)
    wells: list[dict[str, Any]] = []
    well_means: dict[str, list[float]] = defaultdict(list)
    for (plate, well), fields in sorted(by_well.items()):
        n_objects = sum(image.object_count for image in fields)
        metrics = sorted({name for image in fields for name in image.metrics})
        for metric in metrics:
            values = [
                v for image in fields if (v := _finite(image.metrics.get(metric))) is not None
            ]
            mean, median, std = _stats(values)
            wells.append(
                {
                    "plate": plate,
                    "well": well,
                    "metric": metric,
                    "mean": mean,
                    "median": median,
                    "std": std,
                    "n_fields": len(values),
                    "n_objects": n_objects,
                }
            )
            if mean is not None:
                well_means[metric].append(mean)
    experiment = []
    for metric in sorted({row["metric"] for row in wells}):
        mean, median, std = _stats(well_means.get(metric, []))
        experiment.append(
            {
                "metric": metric,
                "mean": mean,
                "median": median,
                "std": std,
                "n_wells": len(well_means.get(metric, [])),
            }
        )
    return wells, experiment


def _check_request(request: AggregateRequest) -> str:
    key = request.result_writer.get("Key")
    if not key:
        raise InputError(
            f"aggregate request for run {request.run_id!r}: result_writer has no 'Key' "
            f"(got {sorted(request.result_writer)})"
        )
    if not key.startswith(f"runs/{request.run_id}/"):
        raise InputError(
            f"aggregate request for run {request.run_id!r}: result manifest {key!r} "
            f"is not under runs/{request.run_id}/"
        )
    return key


def aggregate_run(
    request: AggregateRequest,
    store: Store,
    engine: sa.Engine | None = None,
    *,
    engine_name: Literal["local", "aws"] | None = None,
) -> AggregateResult:
    """Summarise one run from its ResultWriter output and write it in one transaction.

    Parameters
    ----------
    request : AggregateRequest
        The Aggregate Lambda's event.
    store : Store
        Store holding ``request.result_writer["Key"]`` and the files it lists.
    engine : sqlalchemy.Engine, optional
        Target database; defaults to :func:`plateseg.db.get_engine` (the configured URL).
    engine_name : {"local", "aws"}, optional
        Which engine ran the state machine; by default ``"local"`` for a
        :class:`~plateseg.store.LocalStore`, else ``"aws"``.

    Returns
    -------
    AggregateResult
        ``SUCCEEDED``, or ``SUCCEEDED_WITH_FAILURES`` if any image or batch failed.

    Raises
    ------
    InputError
        The request or a ResultWriter file is malformed (naming the file and record).
    ObjectNotFoundError
        A ResultWriter file is missing.
    DatabaseUnavailableError
        The database is unreachable (transient: the state machine retries).
    DatabaseError
        Any other database failure. Nothing is written unless everything is.
    """
    manifest_key = _check_request(request)
    collected = collect_results(store, manifest_key, request.run_id)
    images = sorted(collected.images.values(), key=lambda image: image.image_id)
    wells, experiment = summarise(images)
    ok = [image for image in images if image.status == "ok"]
    status: Literal["SUCCEEDED", "SUCCEEDED_WITH_FAILURES"] = (
        "SUCCEEDED_WITH_FAILURES" if collected.failures else "SUCCEEDED"
    )
    recipe_json, recipe_hash = canonical_recipe(request.recipe)
    started = _parse_time(request.started_at, "aggregate request started_at")
    finished = collected.finished_at or started or datetime.now(UTC)
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
        "objects_prefix": f"runs/{request.run_id}/objects/",
        "started_at": started,
        "finished_at": finished,
        "images_ok": len(ok),
        "images_failed": len(images) - len(ok),
        "batches_failed": collected.batches_failed,
        "objects": sum(image.object_count for image in ok),
    }
    rows = RunRows(
        run=run,
        images=[
            {
                "image_id": image.image_id,
                "plate": image.plate,
                "well": image.well,
                "field": image.field,
                "status": image.status,
                "error": image.error[:256] if image.error else None,
                "cause": image.cause,
                "object_count": image.object_count,
                "mask_key": image.mask_key,
            }
            for image in images
        ],
        image_metrics=[
            {"image_id": image.image_id, "metric": name, "value": _finite(value)}
            for image in ok
            for name, value in sorted(image.metrics.items())
        ],
        well_metrics=wells,
        experiment_metrics=experiment,
        failures=collected.failures,
    )
    engine = engine if engine is not None else get_engine()
    if get_settings().auto_migrate:
        upgrade(engine)
    write_run(engine, rows)
    return AggregateResult(
        run_id=request.run_id,
        experiment_id=request.experiment_id,
        status=status,
        images_ok=run["images_ok"],
        images_failed=run["images_failed"],
        batches_failed=collected.batches_failed,
        wells=len({(image.plate, image.well) for image in images}),
        objects=run["objects"],
    )
