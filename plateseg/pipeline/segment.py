"""Segment one batch of fields of view: the work of one Segment Lambda invocation.

Per image: read its channels, segment nuclei, measure every channel, write the label
mask (and the cell labels with ``recipe.secondary``), return a small
:class:`~plateseg.contracts.ImageSummary`. Nothing else is written per image: the
outlines and thumbnails the web UI shows are drawn on request from the label mask and
the source image (:mod:`plateseg.web.render`), so no Lambda time goes to pictures. An
unusable image (:class:`~plateseg.errors.ImageError`) becomes an error record and the
batch goes on; transient faults and bugs propagate so the state machine's Retry (or the
engine) handles them. All objects of the batch go to one Parquet part whose name depends
only on the batch's image ids, so a retried batch overwrites its own part.

**One thread.** A batch segments with BLAS limited to one thread (:func:`one_thread`):
the matrix products of resizing are small, and OpenBLAS's worker threads spin for more
CPU than they save — on the 2-core development machine a 512² field took 1.7x the CPU
and wall time with two BLAS threads, and two engine workers each with two threads took
longer than one worker with one. Parallelism comes from running batches side by side
(the Distributed Map, the local engine's worker processes), not from inside a field.

**Checkpoints.** After a batch in which every image succeeded, its
:class:`~plateseg.contracts.SegmentResult` is stored at :func:`checkpoint_key`
(``runs/<run_id>/batches/<sha256>.json``, a digest of the recipe and of the batch's image
ids with their source keys). A later execution of the same run (``plateseg retry``, a
redriven or resumed batch, a repeated ``--run-id``) that meets the same batch returns the
stored result without segmenting, provided the Parquet part it names is unchanged
(SHA-256) and every mask still exists. Batches with a failed image store no checkpoint, so
a retry segments them again.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from pydantic import BaseModel

from plateseg.contracts import Batch, ImageSummary, ManifestItem, Recipe, SegmentResult
from plateseg.contracts.params import canonical_recipe_json, parse_params
from plateseg.errors import ImageError, StoreError
from plateseg.imaging import write_tiff
from plateseg.imaging.field import read_field
from plateseg.pipeline.pinning import pinned_model_store
from plateseg.segmentation import FieldResult, segment_field, validate_recipe
from plateseg.store import Store, keys

__all__ = [
    "IDENTITY_COLUMNS",
    "checkpoint_key",
    "load_dependencies",
    "one_thread",
    "part_key",
    "segment_batch",
]

#: Columns that say where each object row comes from, before the measurements.
IDENTITY_COLUMNS = ("run_id", "experiment_id", "plate", "well", "field", "image_id")


#: What :func:`segment_batch` imports on first use (the segmenters' numerical stack, the
#: ONNX runtime, the Parquet writer), in import order.
_FIRST_USE = (
    "plateseg.segmentation.classical",
    "plateseg.segmentation.learned",
    "plateseg.segmentation.measure",
    "plateseg.segmentation.quality",
    "onnxruntime",
    "pyarrow.parquet",
    "edt",
    "threadpoolctl",
)


def load_dependencies() -> None:
    """Import now what the first batch would import on first use, and resolve the
    scikit-image functions it calls (scikit-image loads them lazily).

    For a Lambda's init phase (``lambdas/segment.py`` calls it at import): AWS runs the
    init phase on a full CPU and outside the function's timeout, and the local engine
    runs it in idle worker processes while Lookup works.
    """
    import importlib

    for name in _FIRST_USE:
        importlib.import_module(name)
    from skimage import filters, segmentation

    for module, attribute in (
        (filters, "threshold_li"),
        (filters, "threshold_otsu"),
        (filters, "threshold_multiotsu"),
        (segmentation, "watershed"),
        (segmentation, "expand_labels"),
    ):
        getattr(module, attribute)


def part_key(run_id: str, image_ids: list[str]) -> str:
    """Parquet part key, a function of the sorted image ids only (retries overwrite)."""
    digest = hashlib.sha1("\n".join(sorted(image_ids)).encode(), usedforsecurity=False)
    return keys.part_key(run_id, digest.hexdigest()[:16])


def checkpoint_key(
    run_id: str, recipe: Recipe, items: list[ManifestItem], model_sha256: str | None = None
) -> str:
    """``runs/<run_id>/batches/<sha256>.json``: where a fully successful batch is stored.

    The digest covers the recipe's canonical JSON (sorted keys), the SHA-256 of its model
    file if it names one, and the batch's sorted image ids with their channels' source
    keys (and further planes): another recipe, a replaced model, another batching or
    other file names make another key. An image overwritten under the same key is not
    noticed.
    """
    recipe_text = canonical_recipe_json(recipe)
    digest = hashlib.sha256(hashlib.sha256(recipe_text.encode()).hexdigest().encode())
    if model_sha256 is not None:
        digest.update(f"\nmodel\t{model_sha256}".encode())
    for item in sorted(items, key=lambda it: it.image_id):
        files: Any = sorted(item.channels.items())
        if item.planes:  # projected: every plane is a source (unchanged without planes)
            files = [files, sorted(item.planes.items())]
        sources = json.dumps(files, separators=(",", ":"))
        digest.update(f"\n{item.image_id}\t{sources}".encode())
    return keys.batch_key(run_id, digest.hexdigest())


def _stored_result(store: Store, key: str, items: list[ManifestItem]) -> SegmentResult | None:
    """The checkpointed result of this batch, in item order, if it is still valid.

    Valid means: it parses, covers exactly these images (all ``ok``), its Parquet part has
    the recorded SHA-256 (or, for a batch without objects, no part exists) and every mask
    it names exists. Anything else means: segment the batch again. A checkpoint the store
    will not show (missing, or access denied) is no checkpoint; transient store faults
    propagate like every other read of the batch.
    """
    try:
        return _checked(store, key, items)
    except StoreError:  # missing, or not readable (a role without s3:GetObject on runs/*)
        return None


def _checked(store: Store, key: str, items: list[ManifestItem]) -> SegmentResult | None:
    try:
        stored = json.loads(store.get_bytes(key))
        result = SegmentResult.model_validate(stored["result"])
        digest = stored.get("parquet_sha256")
    except (ValueError, KeyError, TypeError):  # unreadable JSON or wrong shape: redo
        return None
    by_id = {summary.image_id: summary for summary in result.images}
    if sorted(by_id) != sorted(item.image_id for item in items):
        return None
    if any(
        s.status != "ok" or not s.mask_key or not store.exists(s.mask_key) for s in by_id.values()
    ):
        return None
    part = part_key(result.run_id, list(by_id))
    if result.parquet_key not in (None, part):
        return None
    if result.parquet_key is None:
        if store.exists(part):  # another segmentation wrote objects for these images since
            return None
    elif hashlib.sha256(store.get_bytes(result.parquet_key)).hexdigest() != digest:
        return None
    return result.model_copy(update={"images": [by_id[item.image_id] for item in items]})


def _store_checkpoint(store: Store, key: str, result: SegmentResult, digest: str | None) -> None:
    """Record a fully successful batch (see :func:`checkpoint_key`); ``digest``: its part's."""
    document = {"result": result.model_dump(mode="json"), "parquet_sha256": digest}
    store.put_bytes(key, json.dumps(document).encode(), "application/json")


_CONTROLLER: Any = None
_CONTROLLER_LOCK = threading.Lock()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the ``with`` block with the BLAS libraries loaded so far limited to one thread.

    The thread pools are found once per process (threadpoolctl inspects the loaded
    libraries, ~0.6 ms) and restored on exit; numpy and scipy are loaded before the limit
    is taken, so their OpenBLAS copies are among them.
    """
    global _CONTROLLER
    import scipy.ndimage  # noqa: F401  (loads scipy's own OpenBLAS before the pools are found)
    from threadpoolctl import ThreadpoolController

    with _CONTROLLER_LOCK:
        if _CONTROLLER is None:
            _CONTROLLER = ThreadpoolController()
        controller = _CONTROLLER
    with controller.limit(limits=1, user_api="blas"):
        yield


def _channels_to_read(item: ManifestItem, recipe: Recipe) -> list[str]:
    """The nuclei channel first (it must exist), then every other channel of the item.

    Other roles of the recipe (e.g. ``cells``) are optional: a field without them is
    still segmented, and intensities are measured in whatever channels it has.
    """
    nuclei = recipe.channels["nuclei"]
    return [nuclei, *(channel for channel in item.channels if channel != nuclei)]


def _identity(item: ManifestItem) -> dict[str, Any]:
    """The fields that say which image a summary is about."""
    return {"image_id": item.image_id, "plate": item.plate, "well": item.well, "field": item.field}


def segment_batch(batch: Batch, store: Store) -> SegmentResult:
    """Segment, measure and store every field of one batch.

    Parameters
    ----------
    batch : Batch
        ``BatchInput`` (run id, experiment, recipe) and the manifest items.
    store : Store
        Where the images are and where masks and the Parquet part go.

    Returns
    -------
    SegmentResult
        One summary per item, in item order; ``parquet_key`` is ``None`` when the
        batch found no objects. Taken from the batch's checkpoint when a previous
        execution of the run already segmented exactly this batch successfully.

    Raises
    ------
    RecipeError
        The recipe is invalid (every batch would fail alike); :class:`ModelError` when
        the model the run is pinned to is missing or changed (see
        :mod:`plateseg.pipeline.pinning`).
    TransientError
        The store is unavailable; retry the batch.
    """
    info = batch.batch_input
    recipe = validate_recipe(info.recipe)  # once per batch (parsed once with the event)
    params = parse_params(recipe)
    store, model_sha256 = pinned_model_store(recipe, store, info.run_id)
    checkpoint = checkpoint_key(info.run_id, recipe, batch.items, model_sha256)
    stored = _stored_result(store, checkpoint, batch.items)
    if stored is not None:
        return stored
    with one_thread():
        summaries, tables = _segment_items(batch.items, recipe, params, store, info.run_id)
    parquet, digest = _write_objects(store, info.run_id, info.experiment_id, batch.items, tables)
    outcome = SegmentResult(run_id=info.run_id, parquet_key=parquet, images=summaries)
    if all(summary.status == "ok" for summary in summaries):
        _store_checkpoint(store, checkpoint, outcome, digest)
    return outcome


def _segment_items(
    items: list[ManifestItem], recipe: Recipe, params: BaseModel, store: Store, run_id: str
) -> tuple[list[ImageSummary], list[tuple[ManifestItem, FieldResult]]]:
    """Segment each item and store its labels: one summary per item, and the measured
    fields (for the Parquet part)."""
    summaries: list[ImageSummary] = []
    tables: list[tuple[ManifestItem, FieldResult]] = []
    for item in items:
        try:
            images = read_field(
                store, item, _channels_to_read(item, recipe), project=recipe.planes == "max"
            )
            result = segment_field(images, recipe, store, params)
        except ImageError as exc:
            summaries.append(
                ImageSummary(
                    **_identity(item),
                    status="error",
                    error=type(exc).__name__,
                    cause=str(exc),
                )
            )
            continue
        key = keys.mask_key(run_id, item.image_id)
        store.put_bytes(key, write_tiff(result.labels), "image/tiff")
        if result.cells is not None:
            store.put_bytes(keys.cells_key(run_id, item.image_id), write_tiff(result.cells))
        summaries.append(
            ImageSummary(
                **_identity(item),
                status="ok",
                object_count=result.object_count,
                metrics=result.metrics,
                mask_key=key,
            )
        )
        tables.append((item, result))
    return summaries, tables


def _write_objects(
    store: Store,
    run_id: str,
    experiment_id: str,
    items: list[ManifestItem],
    tables: list[tuple[ManifestItem, FieldResult]],
) -> tuple[str | None, str | None]:
    """Write the batch's objects as one Parquet part: ``(key, SHA-256 of its bytes)``,
    or ``(None, None)`` when the batch found no objects."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if sum(result.object_count for _item, result in tables) == 0:
        return None, None
    names: list[str] = []
    for _item, result in tables:
        names.extend(c for c in result.objects if c not in names)
    columns: dict[str, list[Any]] = {name: [] for name in (*IDENTITY_COLUMNS, *names)}
    for item, result in tables:
        n = result.object_count
        identity = (run_id, experiment_id, item.plate, item.well, item.field, item.image_id)
        for name, value in zip(IDENTITY_COLUMNS, identity, strict=True):
            columns[name].append(
                np.full(n, value, dtype=object if isinstance(value, str) else np.int32)
            )
        for name in names:  # a channel some item lacks: nulls (NaN) for its objects
            columns[name].append(result.objects.get(name, np.full(n, np.nan)))
    arrays = {}
    for name, parts in columns.items():
        joined = np.concatenate(parts)
        arrays[name] = (
            pa.array(joined, type=pa.string()) if joined.dtype == object else pa.array(joined)
        )
    table = pa.table(arrays)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    key = part_key(run_id, [item.image_id for item in items])
    data = buffer.getvalue()
    store.put_bytes(key, data, "application/vnd.apache.parquet")
    return key, hashlib.sha256(data).hexdigest()
