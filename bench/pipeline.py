"""End-to-end benchmark: the demo experiment through the local engine vs plain loops.

Prints one table. The baseline is measured in the same process, on the same images: a
one-core loop calling ``segment_batch`` on batches of 4 fields, which does the same work
the Segment Lambda does (read, segment, measure, write the label masks, a Parquet part
and the batch's checkpoint). A loop of ``segment_field`` alone (read, segment, measure;
no outputs) is shown for reference, with BLAS on one thread as ``segment_batch`` runs it
(:func:`plateseg.pipeline.segment.one_thread`). The pipeline rows run the real state
machine (Lookup → Distributed Map over batches → Aggregate into SQLite, journaled) with
the engine's process pool (one worker per core), at several batch sizes; they include
starting the worker processes. Ratios against the baseline are the figures that count;
the machine is shared and noisy, so the CPU seconds (this process and its finished
children: the engine's workers) are printed too: a wall time far above them means
another program took the cores. Every row is measured ``--repeat`` times in interleaved
rounds (all rows once, then again), and the table shows each row's median round, so a
burst of load from another program shifts one round of every row rather than one row.

Usage::

    python bench/pipeline.py [--size 512] [--fields 2] [--batch-sizes 1,4,16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


Timing = tuple[float, float]  # (wall s, CPU s)


def _baselines(store_root: Path, experiment_id: str, run_id: str) -> tuple[Timing, Timing, int]:
    """Two in-process, one-core loops over the same fields.

    Returns the (wall, CPU) seconds of ``segment_field`` alone (no outputs), of
    ``segment_batch`` over batches of 4 (the outputs the pipeline writes: masks,
    Parquet, checkpoints), and the nuclei count.
    """
    from plateseg.contracts import Batch, Recipe
    from plateseg.imaging.field import read_field
    from plateseg.pipeline.segment import one_thread, segment_batch
    from plateseg.plate.manifest import build_manifest
    from plateseg.segmentation import segment_field, validate_recipe
    from plateseg.store import LocalStore

    store = LocalStore(store_root)
    recipe = validate_recipe(Recipe())
    keys = [info.key for info in store.list(f"experiments/{experiment_id}/")]
    items, _ = build_manifest(keys, experiment_id)
    start, cpu = time.perf_counter(), _cpu()
    objects = 0
    with one_thread():
        for item in items:
            images = read_field(store, item, item.channels)
            objects += segment_field(images, recipe, store).object_count
    segment_only = time.perf_counter() - start, _cpu() - cpu

    start, cpu = time.perf_counter(), _cpu()
    for first in range(0, len(items), 4):
        batch = Batch.model_validate(
            {
                "BatchInput": {
                    "run_id": run_id,
                    "experiment_id": experiment_id,
                    "bucket": "local",
                    "recipe": recipe.model_dump(mode="json"),
                },
                "Items": [item.model_dump() for item in items[first : first + 4]],
            }
        )
        segment_batch(batch, store)
    with_outputs = time.perf_counter() - start, _cpu() - cpu
    return segment_only, with_outputs, objects


def _pipeline(home: Path, experiment_id: str, batch_size: int, round_no: int) -> tuple[Timing, int]:
    from plateseg.map_settings import MapSettings
    from plateseg.runs.embedded import run_local
    from plateseg.settings import Settings

    settings = Settings(home=home, time_scale=0.0)
    start, cpu = time.perf_counter(), _cpu()
    run = run_local(
        experiment_id,
        run_id=f"bench-b{batch_size}-r{round_no}",
        settings=settings,
        tunables=MapSettings(items_per_batch=batch_size),
    )
    return (time.perf_counter() - start, _cpu() - cpu), run.result.objects


def _median(values: list[Timing]) -> Timing:
    """The round with the median wall time (its CPU seconds with it)."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--fields", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are shown")
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
        batches = [int(b) for b in args.batch_sizes.split(",")]
        names = [
            "segment_field loop, no outputs (reference)",
            "segment_batch loop, one core (baseline)",
        ]
        names += [f"local engine, batch {batch}" for batch in batches]
        timings: dict[str, list[Timing]] = {name: [] for name in names}
        objects: dict[str, int] = {}
        for round_no in range(max(1, args.repeat)):
            only, base, objects[names[0]] = _baselines(
                Path(store_root), "BENCH", f"baseline-r{round_no}"
            )
            objects[names[1]] = objects[names[0]]
            timings[names[0]].append(only)
            timings[names[1]].append(base)
            for name, batch in zip(names[2:], batches, strict=True):
                timing, objects[name] = _pipeline(home, "BENCH", batch, round_no)
                timings[name].append(timing)
        medians = {name: _median(values) for name, values in timings.items()}
        rows = [
            (name, batch, *medians[name], objects[name])
            for name, batch in zip(names, [1, 4, *batches], strict=True)
        ]
        only, base = medians[names[0]], medians[names[1]]

    base_s = base[0]
    print(
        f"\nDemo experiment: {fields} fields of {args.size}x{args.size} px, 2 channels; "
        f"median of {max(1, args.repeat)} rounds\n"
    )
    print("| run | wall s | CPU s | fields/s | vs baseline | nuclei |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _batch, wall, cpu, count in rows:
        print(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {fields / wall:.1f} | {base_s / wall:.2f}x "
            f"| {count} |"
        )
    print(
        f"\nsegment_batch / segment_field: {base_s / only[0]:.2f}x wall, "
        f"{base[1] / only[1]:.2f}x CPU"
    )
    print(json.dumps({"fields": fields, "rows": rows}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
