"""Benchmark: segment + measure one 2048x2048 two-channel uint16 field on one thread.

Compares plateseg's segmenters (``plateseg.segmentation.segment_field``: ``classical``,
``onnx`` with the shipped learned ``nuclei-unet`` (the default recipe) and with the
shipped ``nuclei-rf`` forest, and ``trainable`` with a forest trained here from the
scribbles of one small demo field) with a naive scikit-image baseline
written the tutorial way: gaussian -> Otsu -> label -> a
``for region in regionprops(...)`` loop computing the same measurements. Each method
runs in its own subprocess (one BLAS/OpenMP thread) so that its peak RSS is its own.

Run::

    .venv/bin/python bench/segment.py [--size 2048] [--repeat 3]

Prints a table: median wall time per image (after one warm-up run), the least CPU
time of the repeats (the process's own, so less sensitive than wall time to other
load on a shared machine), peak memory the run allocates (tracemalloc, which numpy
reports its buffers to), the process's peak RSS (interpreter and libraries included),
objects found, and the speed-up over the baseline by wall time and by CPU time. The
baseline does not declump touching nuclei, so it finds fewer objects.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def naive(images: dict[str, object]) -> int:
    """The tutorial pipeline: one regionprops loop, the same columns as plateseg."""
    import numpy as np
    from skimage.filters import gaussian, threshold_otsu
    from skimage.measure import label, regionprops

    nuclei = images["w1"]
    smoothed = gaussian(nuclei, sigma=1.0)
    labels = label(smoothed > threshold_otsu(smoothed))
    rows = []
    scaled = {c: np.asarray(im, dtype=np.float64) / 65535 for c, im in images.items()}
    for region in regionprops(labels):
        if region.area < 20:
            continue
        row = {
            "ObjectNumber": region.label,
            "AreaShape_Area": region.area,
            "AreaShape_Perimeter": region.perimeter,
            "AreaShape_EquivalentDiameter": region.equivalent_diameter_area,
            "AreaShape_Eccentricity": region.eccentricity,
            "AreaShape_Solidity": region.solidity,
            "AreaShape_FormFactor": 4 * np.pi * region.area / max(region.perimeter, 1) ** 2,
            "AreaShape_MajorAxisLength": region.axis_major_length,
            "AreaShape_MinorAxisLength": region.axis_minor_length,
            "AreaShape_Orientation": np.degrees(region.orientation),
            "Location_Center_X": region.centroid[1],
            "Location_Center_Y": region.centroid[0],
        }
        for channel, image in scaled.items():
            pixels = image[region.slice][region.image]
            row[f"Intensity_MeanIntensity_{channel}"] = pixels.mean()
            row[f"Intensity_MedianIntensity_{channel}"] = np.median(pixels)
            row[f"Intensity_IntegratedIntensity_{channel}"] = pixels.sum()
            row[f"Intensity_MaxIntensity_{channel}"] = pixels.max()
            row[f"Intensity_MinIntensity_{channel}"] = pixels.min()
            row[f"Intensity_StdIntensity_{channel}"] = pixels.std()
        rows.append(row)
    return len(rows)


def classical(images: dict[str, object]) -> int:
    from plateseg.contracts import Recipe
    from plateseg.segmentation import segment_field

    recipe = Recipe(segmenter="classical")
    return segment_field(images, recipe).object_count  # type: ignore[arg-type]


def _model_run(segmenter: str, model: str, store_path: str):  # type: ignore[no-untyped-def]
    from plateseg.contracts import Recipe
    from plateseg.segmentation import segment_field
    from plateseg.store import open_store

    store = open_store(store_path)
    recipe = Recipe(segmenter=segmenter, params={"model": model})

    def run(images: dict[str, object]) -> int:
        return segment_field(images, recipe, store).object_count  # type: ignore[arg-type]

    return run


def train_bench_model(store_path: str) -> None:
    """The ``trainable`` row's model: scribbles of one 512x512 demo field (seed 7)."""
    import numpy as np

    from plateseg.demo import NEG_DENSITY, render_field
    from plateseg.segmentation.trainable import (
        save_model,
        scribbles_from_mask,
        train_pixel_classifier,
    )
    from plateseg.store import open_store

    field = render_field(np.random.default_rng(7), NEG_DENSITY, 512)
    model = train_pixel_classifier([field.w1], [scribbles_from_mask(field.labels)])
    save_model(open_store(store_path), "bench-trainable", model)


METHODS = {
    "classical": "plateseg classical",
    "learned": "plateseg onnx (nuclei-unet)",
    "onnx": "plateseg onnx (nuclei-rf)",
    "trainable": "plateseg trainable",
    "naive": "scikit-image tutorial loop",
}


def worker(method: str, path: str, repeat: int) -> None:
    """Run one method ``repeat`` times on the saved field; print a JSON line."""
    import numpy as np

    with np.load(path) as saved:
        images = {name: saved[name] for name in saved.files}
    store_path = str(Path(path).parent / "store")
    runs = {
        "classical": classical,
        "naive": naive,
        "learned": _model_run("onnx", "nuclei-unet", store_path),
        "onnx": _model_run("onnx", "nuclei-rf", store_path),
        "trainable": _model_run("trainable", "bench-trainable", store_path),
    }
    run = runs[method]
    count = run(images)  # warm-up: imports, first-call costs
    times, cpu = [], []
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        run(images)
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    run(images)
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(
        json.dumps(
            {"times": times, "cpu": cpu, "traced": traced, "rss": _rss_mib(), "objects": count}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--field", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.field, args.repeat)
        return

    import numpy as np

    sys.path.insert(0, str(ROOT))
    from plateseg.demo import NEG_DENSITY, render_field

    rng = np.random.default_rng(0)
    n_nuclei = int(NEG_DENSITY * (args.size / 512) ** 2)
    field = render_field(rng, n_nuclei, args.size)
    env = {**os.environ, **dict.fromkeys(THREAD_VARS, "1")}
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "field.npz")
        np.savez(path, w1=field.w1, w2=field.w2)
        train_bench_model(str(Path(folder) / "store"))
        for method in METHODS:
            command = [sys.executable, __file__, "--worker", method, "--field", path]
            command += ["--repeat", str(args.repeat)]
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            results[method] = json.loads(out.stdout.strip().splitlines()[-1])

    base = statistics.median(results["naive"]["times"])
    base_cpu = min(results["naive"]["cpu"])
    print(
        f"segment + measure, {args.size}x{args.size} uint16 x 2 channels, one thread, "
        f"{field.count} true nuclei, median of {args.repeat}"
    )
    print(
        f"{'method':<28}{'time/image':>12}{'CPU/image':>11}{'peak alloc':>12}{'peak RSS':>10}"
        f"{'objects':>9}{'speed-up':>10}{'CPU ratio':>11}"
    )
    for method, title in METHODS.items():
        data = results[method]
        median, best_cpu = statistics.median(data["times"]), min(data["cpu"])
        print(
            f"{title:<28}{median:>11.3f}s{best_cpu:>10.3f}s{data['traced']:>8.0f} MiB"
            f"{data['rss']:>6.0f} MiB{data['objects']:>9}{base / median:>9.1f}x"
            f"{base_cpu / best_cpu:>10.1f}x"
        )


if __name__ == "__main__":
    main()
