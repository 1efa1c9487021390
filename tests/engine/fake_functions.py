"""Fake Lambda handlers for engine tests, following ``plateseg.contracts``.

Referenced by ``"tests.engine.fake_functions:NAME"`` so that they also run in the
engine's spawned worker processes. They find the store through
:func:`plateseg.store.store_for_bucket`, i.e. through the settings the engine's worker
initializer installs (exactly how the real handlers run locally).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from plateseg.contracts import (
    AggregateRequest,
    AggregateResult,
    Batch,
    ExecutionInput,
    ImageSummary,
    LookupRequest,
    LookupResult,
    SegmentResult,
)
from plateseg.errors import StoreUnavailableError
from plateseg.store import get_json, put_json, store_for_bucket

_IMAGE = re.compile(r"(?P<plate>[^_/]+)_(?P<well>[A-P]\d\d)_s(?P<field>\d+)_(?P<channel>w\d)\.tif$")


def lookup(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """List ``experiments/<id>/*.tif``, write the manifest, return a LookupResult."""
    request = LookupRequest.model_validate(event)
    execution = ExecutionInput.parse(request.input)
    run_id = execution.run_id or request.execution_name
    store = store_for_bucket(request.bucket)
    prefix = f"experiments/{execution.experiment_id}/"
    fields: dict[tuple[str, str, int], dict[str, str]] = {}
    for info in store.list(prefix):
        match = _IMAGE.search(info.key)
        if match:
            key = (match["plate"], match["well"], int(match["field"]))
            fields.setdefault(key, {})[match["channel"]] = info.key
    items = [
        {"plate": p, "well": w, "field": f, "channels": channels}
        for (p, w, f), channels in sorted(fields.items())
    ]
    manifest_key = f"runs/{run_id}/manifest.json"
    put_json(store, manifest_key, items)
    message = (
        f"found {len(items)} fields of view under {prefix}"
        if items
        else f"no images found under {prefix} in bucket {request.bucket}"
    )
    return LookupResult(
        run_id=run_id,
        experiment_id=execution.experiment_id,
        bucket=request.bucket,
        manifest_key=manifest_key,
        result_prefix=f"runs/{run_id}/map",
        item_count=len(items),
        recipe=execution.recipe.model_dump(),
        message=message,
    ).model_dump()


def segment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Pretend to segment: one ok summary per item, object count from the field number."""
    batch = Batch.model_validate(event)
    images = []
    for item in batch.items:
        images.append(
            ImageSummary(
                image_id=item.image_id,
                plate=item.plate,
                well=item.well,
                field=item.field,
                status="ok",
                object_count=10 * item.field,
                metrics={"area_mean": 100.0 + item.field},
            )
        )
    return SegmentResult(
        run_id=batch.batch_input.run_id, parquet_key=None, images=images
    ).model_dump()


def aggregate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Read the ResultWriter manifest and result files; summarise the run."""
    request = AggregateRequest.model_validate(event)
    store = store_for_bucket(request.result_writer["Bucket"])
    manifest = get_json(store, request.result_writer["Key"])
    ok = failed = objects = 0
    wells: set[str] = set()
    for entry in manifest["ResultFiles"]["SUCCEEDED"]:
        for record in get_json(store, entry["Key"]):
            result = SegmentResult.model_validate(json.loads(record["Output"]))
            for image in result.images:
                ok += image.status == "ok"
                failed += image.status == "error"
                objects += image.object_count
                wells.add(f"{image.plate}/{image.well}")
    batches_failed = sum(len(get_json(store, e["Key"])) for e in manifest["ResultFiles"]["FAILED"])
    return AggregateResult(
        run_id=request.run_id,
        experiment_id=request.experiment_id,
        status="SUCCEEDED_WITH_FAILURES" if failed or batches_failed else "SUCCEEDED",
        images_ok=ok,
        images_failed=failed,
        batches_failed=batches_failed,
        wells=len(wells),
        objects=objects,
    ).model_dump()


def crash_once(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Kill the worker process on the first call (marker file absent), succeed after."""
    marker = Path(event["marker"])
    if not marker.exists():
        marker.write_text("crashed once", encoding="utf-8")
        os._exit(1)
    return {"survived": True, "pid_differs": os.getpid() != event["parent_pid"]}


def echo(event: Any, context: Any) -> Any:
    """Return the event together with the function name the context reports."""
    return {"event": event, "function": context.function_name}


def fail_transient(event: Any, context: Any) -> Any:
    """Always raise a transient error (its class name is the ASL error)."""
    raise StoreUnavailableError(f"throttled while handling {event!r}")


def sleep_echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleep ``event["seconds"]``, then return the event and this worker's pid."""
    import time

    time.sleep(float(event.get("seconds", 0)))
    return {"event": event, "pid": os.getpid()}


def segfault(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Die of SIGSEGV, as a crashing native extension would."""
    import signal

    os.kill(os.getpid(), signal.SIGSEGV)
    return {}


def loaded_modules(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Which of ``event["modules"]`` this worker has imported, and its pid."""
    import sys

    return {"pid": os.getpid(), "loaded": [m for m in event["modules"] if m in sys.modules]}
