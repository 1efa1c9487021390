"""End-to-end benchmark: the demo experiment through the local engine vs plain loops.

Prints one table. The baseline is measured in the same process, on the same images: a
one-core loop calling ``segment_batch`` on batches of 4 fields, which does the same work
the Segment Lambda does (segment, measure, write masks, overlays, thumbnails and a
Parquet part). A loop of ``segment_field`` alone (no outputs) is shown for reference.
The pipeline rows run the real state machine (Lookup → Distributed Map over batches →
Aggregate into SQLite, journaled) with the engine's process pool (one worker per core),
at several batch sizes; they include starting the worker processes. Ratios against the
baseline are the figures that count; the machine is shared and noisy.

Usage::

    python bench/pipeline.py [--size 512] [--fields 2] [--batch-sizes 1,4,16]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def _baselines(store_root: Path, experiment_id: str) -> tuple[float, float, int]:
    """Two in-process, one-core loops over the same fields.

    Returns the wall time of ``segment_field`` alone (no outputs), of ``segment_batch``
    over batches of 4 (the same outputs the pipeline writes: masks, overlays,
    thumbnails, Parquet), and the nuclei count.
    """
    from plateseg.contracts import Batch, Recipe
    from plateseg.imaging import read_field
    from plateseg.metadata import build_manifest
    from plateseg.pipeline.segment import segment_batch
    from plateseg.segmentation import segment_field, validate_recipe
    from plateseg.store import LocalStore

    store = LocalStore(store_root)
    recipe = validate_recipe(Recipe())
    keys = [info.key for info in store.list(f"experiments/{experiment_id}/")]
    items, _ = build_manifest(keys, experiment_id)
    start = time.perf_counter()
    objects = 0
    for item in items:
        images = read_field(store, item, item.channels)
        objects += segment_field(images, recipe).object_count
    segment_only = time.perf_counter() - start

    start = time.perf_counter()
    for first in range(0, len(items), 4):
        batch = Batch.model_validate(
            {
                "BatchInput": {
                    "run_id": "baseline",
                    "experiment_id": experiment_id,
                    "bucket": "local",
                    "recipe": recipe.model_dump(mode="json"),
                },
                "Items": [item.model_dump() for item in items[first : first + 4]],
            }
        )
        segment_batch(batch, store)
    with_outputs = time.perf_counter() - start
    return segment_only, with_outputs, objects


def _pipeline(home: Path, experiment_id: str, batch_size: int) -> tuple[float, int]:
    from plateseg.map_settings import MapSettings
    from plateseg.runner import run_local
    from plateseg.settings import Settings

    settings = Settings(home=home, time_scale=0.0)
    start = time.perf_counter()
    run = run_local(
        experiment_id,
        run_id=f"bench-b{batch_size}",
        settings=settings,
        tunables=MapSettings(items_per_batch=batch_size),
    )
    return time.perf_counter() - start, run.result.objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--fields", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,4,16")
    args = parser.parse_args(argv)

    from plateseg.demo import write_demo_experiment
    from plateseg.settings import Settings
    from plateseg.store import LocalStore

    with tempfile.TemporaryDirectory(prefix="plateseg-bench-") as tmp:
        home = Path(tmp) / "home"
        store_root = Settings(home=home).store_location
        write_demo_experiment(
            LocalStore(store_root), "BENCH", fields=args.fields, size=args.size, seed=1
        )
        fields = 96 * args.fields
        only_s, base_s, base_objects = _baselines(Path(store_root), "BENCH")
        rows = [
            ("segment_field loop, no outputs (reference)", 1, only_s, base_objects),
            ("segment_batch loop, one core (baseline)", 4, base_s, base_objects),
        ]
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            wall, objects = _pipeline(home, "BENCH", batch)
            rows.append((f"local engine, batch {batch}", batch, wall, objects))

    print(f"\nDemo experiment: {fields} fields of {args.size}x{args.size} px, 2 channels\n")
    print("| run | wall s | fields/s | vs baseline | nuclei |")
    print("|---|---:|---:|---:|---:|")
    for name, _batch, wall, objects in rows:
        print(f"| {name} | {wall:.2f} | {fields / wall:.1f} | {base_s / wall:.2f}x | {objects} |")
    print(json.dumps({"fields": fields, "rows": rows}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
