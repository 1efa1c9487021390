"""Read a Distributed Map's ResultWriter output into a :class:`CollectedRun`.

Aggregate never reads the Map's state output (it would exceed the 256 KiB payload
limit); it reads what the ResultWriter stored (AWS's layout; the local engine writes
the same)::

    runs/<run_id>/map/<map-run-id>/manifest.json
        {"DestinationBucket": B, "MapRunArn": ARN,
         "ResultFiles": {"SUCCEEDED": [{"Key": k, "Size": n}], "FAILED": [...],
                         "PENDING": [...]}}
    SUCCEEDED_n.json / FAILED_n.json / PENDING_n.json
        JSON array of child-execution records {"Name", "Status", "Input", "Output",
        "Error", "Cause", "StartDate", "StopDate", "RedriveCount", ...}; "Input" and
        "Output" are JSON *strings* (a Batch and a SegmentResult).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from plateseg.contracts import (
    ImageSummary,
    ManifestItem,
    SegmentResult,
    format_validation_error,
)
from plateseg.errors import InputError
from plateseg.store import Store, get_json

__all__ = ["CollectedRun", "collect_results", "load_json", "parse_time"]


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
    batches : int
        Child executions listed (any status).
    batch_size : int
        Most items seen in one batch (the Map's ``MaxItemsPerBatch`` as it ran).
    parquet_keys : list of str
        Per-object Parquet parts the successful batches wrote, sorted.
    child_seconds : float
        Sum over the child executions of ``StopDate - StartDate`` (seconds): the time
        Segment worked, what the run's cost estimate is priced on.
    """

    images: dict[str, ImageSummary] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    batches_failed: int = 0
    finished_at: datetime | None = None
    batch_failed_ids: set[str] = field(default_factory=set)
    batches: int = 0
    batch_size: int = 0
    parquet_keys: list[str] = field(default_factory=list)
    child_seconds: float = 0.0


def parse_time(value: Any, what: str) -> datetime | None:
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


def load_json(store: Store, key: str) -> Any:
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
    run.batch_size = max(run.batch_size, len(result.images))
    if result.parquet_key:
        run.parquet_keys.append(result.parquet_key)
    for summary in result.images:
        if summary.image_id in run.images:
            raise InputError(f"{where}: image {summary.image_id!r} was reported twice")
        run.images[summary.image_id] = summary


def _failure(
    item_id: str,
    kind: str,
    batch: str | None,
    error: str,
    cause: str | None,
    attempts: int | None = None,
) -> dict[str, Any]:
    """One ``run_failures`` row.

    ``attempts`` counts executions of a failed batch (``1 + RedriveCount``); the task
    retries inside one execution are not in ResultWriter records. ``None`` for
    per-image errors (Segment does not retry an unreadable image).
    """
    return {
        "item_id": item_id,
        "kind": kind,
        "batch": batch,
        "error": error[:256],
        "cause": cause or "",
        "attempts": attempts,
    }


def _add_failed(run: CollectedRun, record: dict[str, Any], status: str, where: str) -> None:
    run.batches_failed += 1
    name = str(record.get("Name") or record.get("ExecutionArn") or where)[:128]
    if status == "PENDING":
        error, cause = "States.Pending", "the child execution had not finished"
    else:
        error = str(record.get("Error") or "States.Failed")[:256]
        cause = str(record.get("Cause") or "")
    redrives = record.get("RedriveCount")
    attempts = 1 + redrives if isinstance(redrives, int) and redrives >= 0 else 1
    items = _batch_items(record, where)
    if items is None:
        run.failures.append(_failure(name, "batch", name, error, cause, attempts))
        return
    run.batch_size = max(run.batch_size, len(items))
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
        run.failures.append(_failure(item.image_id, "batch", name, error, cause, attempts))


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
    keys = _result_keys(load_json(store, manifest_key), store.uri(manifest_key))
    run = CollectedRun()
    # Successes first, so an image that succeeded on a redriven batch is not a failure.
    for status in ("SUCCEEDED", "FAILED", "PENDING"):
        for key in keys[status]:
            records, uri = load_json(store, key), store.uri(key)
            if not isinstance(records, list):
                raise InputError(f"{uri}: expected a JSON array of executions")
            run.batches += len(records)
            for index, record in enumerate(records):
                where = f"{uri}[{index}]"
                if not isinstance(record, dict):
                    raise InputError(f"{where}: expected an object")
                stop = parse_time(record.get("StopDate"), f"{where}.StopDate")
                if stop is not None and (run.finished_at is None or stop > run.finished_at):
                    run.finished_at = stop
                start = parse_time(record.get("StartDate"), f"{where}.StartDate")
                if start is not None and stop is not None and stop > start:
                    run.child_seconds += (stop - start).total_seconds()
                if status == "SUCCEEDED":
                    _add_succeeded(run, record, run_id, where)
                else:
                    _add_failed(run, record, status, where)
    for summary in run.images.values():
        if summary.status == "error" and summary.image_id not in run.batch_failed_ids:
            error = summary.error or "ImageError"
            run.failures.append(_failure(summary.image_id, "image", None, error, summary.cause))
    run.failures.sort(key=lambda row: row["item_id"])
    run.parquet_keys.sort()
    return run
