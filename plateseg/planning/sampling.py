"""What runs inside a measuring worker process: time one share of the sample.

A fresh process (spawned, like the engine's workers) segments its share of the sample
fields with the real :func:`~plateseg.pipeline.segment.segment_batch`, against a store
that reads the experiment and *records* writes instead of storing them: the user's store
is never written, and the writes are counted (S3 PUTs) and sized.

Per share of ``m`` fields it runs: one cold batch (the first field; imports included),
``m`` single-field batches, one batch of all ``m`` fields, and one traced field for the
Python-heap peak. From ``S`` (sum of the singles) and ``M`` (the ``m``-field batch)::

    batch overhead  b = max(0, (S - M) / (m - 1))
    per field       t = (M - b) / m
    cold start      c = max(0, first - (t + b))
"""

from __future__ import annotations

import resource
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from typing import Any

from plateseg.store import ObjectInfo, Store, open_store

__all__ = ["RecordingStore", "measure_share", "noop_handler"]


class RecordingStore:
    """Reads from ``inner``; keeps writes in memory (counted and sized), never in ``inner``.

    Reads of a key written here return the written bytes, as the real store would.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.name = inner.name
        self.puts: list[tuple[str, int]] = []
        self.written: dict[str, bytes] = {}

    def get_bytes(self, key: str) -> bytes:
        if key in self.written:
            return self.written[key]
        return self.inner.get_bytes(key)

    def size(self, key: str) -> int:
        return len(self.written[key]) if key in self.written else self.inner.size(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self.puts.append((key, len(data)))
        self.written[key] = bytes(data)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def exists(self, key: str) -> bool:
        return key in self.written or self.inner.exists(key)

    def delete_prefix(self, prefix: str) -> int:
        gone = [key for key in self.written if key.startswith(prefix)]
        for key in gone:
            del self.written[key]
        return len(gone)

    def delete_keys(self, keys: Sequence[str]) -> int:
        for key in keys:
            self.written.pop(key, None)
        return len(keys)

    def reset(self) -> None:
        """Forget what was written (between measurements)."""
        self.puts.clear()
        self.written.clear()

    def uri(self, key: str) -> str:
        return self.inner.uri(key)


def _batch(
    experiment_id: str, recipe: dict[str, Any], items: list[dict[str, Any]], run: int
) -> Any:
    from plateseg.contracts import Batch

    return Batch.model_validate(
        {
            "BatchInput": {
                "run_id": f"plan-sample-{run}",  # a new run each time: no checkpoint reuse
                "experiment_id": experiment_id,
                "bucket": "plan",
                "recipe": recipe,
            },
            "Items": items,
        }
    )


def measure_share(
    store_location: str,
    experiment_id: str,
    recipe: dict[str, Any],
    items: list[dict[str, Any]],
) -> dict[str, Any]:
    """Time one share of the sample in this (fresh) process.

    Parameters
    ----------
    store_location : str
        ``s3://bucket`` or a folder: where the experiment's images are.
    experiment_id : str
    recipe : dict
        A validated recipe, as JSON.
    items : list of dict
        Manifest items of this share (at least one).

    Returns
    -------
    dict
        ``per_field``, ``batch_overhead``, ``cold``, ``first`` (wall seconds), the
        same as CPU seconds of this process (``*_cpu``), ``wall`` and ``cpu`` of the
        timed batches,
        ``heap_peak_mb`` (tracemalloc peak of one field), ``rss_mb`` (peak resident
        memory of this process), ``puts_per_field``, ``puts_per_batch``,
        ``output_bytes_per_field``, ``fields``.
    """
    start, start_cpu = time.perf_counter(), time.process_time()
    from plateseg.pipeline.segment import segment_batch

    store = RecordingStore(open_store(store_location))
    segment_batch(_batch(experiment_id, recipe, items[:1], 0), store)
    first, first_cpu = time.perf_counter() - start, time.process_time() - start_cpu

    store.reset()
    singles = singles_cpu = 0.0
    for run, item in enumerate(items, start=1):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        segment_batch(_batch(experiment_id, recipe, [item], run), store)
        singles += time.perf_counter() - begin
        singles_cpu += time.process_time() - begin_cpu
    m = len(items)

    store.reset()
    begin, begin_cpu = time.perf_counter(), time.process_time()
    segment_batch(_batch(experiment_id, recipe, items, m + 1), store)
    whole, whole_cpu = time.perf_counter() - begin, time.process_time() - begin_cpu
    whole_puts = len(store.puts)
    field_puts = [size for key, size in store.puts if "/masks/" in key]
    store.reset()

    tracemalloc.start()
    segment_batch(_batch(experiment_id, recipe, items[:1], m + 2), store)
    _current, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    store.reset()

    overhead = max(0.0, (singles - whole) / (m - 1)) if m > 1 else 0.0
    per_field = max(1e-6, (whole - overhead) / m)
    overhead_cpu = max(0.0, (singles_cpu - whole_cpu) / (m - 1)) if m > 1 else 0.0
    per_field_cpu = max(1e-6, (whole_cpu - overhead_cpu) / m)
    # runs/<run>/masks/... are per field (mask, overlay, thumbnail); the rest per batch
    parts_per_batch = float(whole_puts - len(field_puts))
    return {
        "fields": m,
        "first": first,
        "per_field": per_field,
        "batch_overhead": overhead,
        "cold": max(0.0, first - per_field - overhead),
        "per_field_cpu": per_field_cpu,
        "batch_overhead_cpu": overhead_cpu,
        "cold_cpu": max(0.0, first_cpu - per_field_cpu - overhead_cpu),
        "wall": singles + whole,
        "cpu": singles_cpu + whole_cpu,
        "heap_peak_mb": heap_peak / 2**20,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "puts_per_batch": parts_per_batch,
        "puts_per_field": len(field_puts) / m,
        "output_bytes_per_field": sum(field_puts) / m,
    }


def noop_handler(event: Any, context: Any) -> Any:
    """A trivial Lambda handler, for measuring the engine's own cost per child."""
    return {"n": len(event["Items"]) if isinstance(event, dict) and "Items" in event else 1}


def warm_handler(event: Any, context: Any) -> Any:
    """Import what the Lookup and Aggregate handlers import, as a real run's first calls do."""
    import importlib

    for name in ("lambdas.lookup", "lambdas.aggregate"):
        importlib.import_module(name)
    return {"ok": True}
