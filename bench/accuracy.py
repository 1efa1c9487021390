"""Benchmark: object-level accuracy of plateseg's segmenters against CellProfiler, in one run.

Metrics (:mod:`plateseg.segmentation.evaluate`), one-to-one matching: AP@0.5 = TP / (TP +
FP + FN) at IoU >= 0.5, pooled over the images of a set; mAP = the mean of AP over IoU
0.50, 0.55, ..., 0.95 (the DSB 2018 / StarDist / Cellpose metric); count error = the
median over images of |found - true| / true; s/image = median CPU seconds per image on
one thread (segmentation only, reading excluded). Every annotated object counts, the
7 % of BBBC039 objects under 10 px included.

Sets
----
dev validation
    The validation split of ``../shared/data/bbbc039-dev`` (35 BBBC039 images, U2OS,
    Hoechst, ImageXpress; CC0): never trained on (``tools/nuclei_data.py`` owns the split).
stress rows
    The same images under each of ``tools/nuclei_data.STRESS``: camera offset +30,000,
    x2 and x3 upscale (a higher magnification), x0.5 downscale (a lower one), 8-bit, a
    strong additive gradient, Poisson + read noise, defocus, and large nuclei with
    chromocentres (x3, ~15 bright spots per nucleus in a dimmed nucleoplasm: mouse cells).
real DSB 2018
    ``img2d.tif``/``mask2d.tif`` from the ``stardist`` wheel on PyPI (BBBC038, CC0):
    another lab, another microscope; fetched with ``pip download`` at run time. Also
    pooled over its eight turns and mirror images (one image of 125 nuclei: which
    borderline pairs merge changes with the orientation, and so does its score).
synthetic
    Eight 512x512 demo fields (:func:`plateseg.demo.render_field`, seeds 3000+).

Segmenters
----------
``classical`` and ``onnx`` (the shipped learned ``nuclei-unet``) with their default
recipes, no parameter given (both estimate the nuclear scale from each image). The
peer, CellProfiler 5's IdentifyPrimaryObjects with its defaults (minimum cross-entropy
threshold, intensity declumping), runs on the same images in a separate venv that this
benchmark creates (``.venv-cellprofiler``; headless builds, no wxPython), given the
diameter range 0.5-2x the set's true median diameter (reported per row), through
``../shared/peers/cellprofiler_ipo.py``. Ratios against CellProfiler are the figures
that count.

Run::

    .venv/bin/python bench/accuracy.py [--data DIR] [--limit N] [--no-peer]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from nuclei_data import DATA, STRESS, Annotated, fetch_dsb, load_dev, orientations  # noqa: E402

IOUS = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))
PEER_SCRIPT = ROOT.parent / "shared" / "peers" / "cellprofiler_ipo.py"
PEER_VENV = ROOT / ".venv-cellprofiler"
#: The DSB image in its eight orientations, pooled (:func:`nuclei_data.orientations`).
DSB_TURNED = "real DSB 2018 (8 orientations)"
#: The CellProfiler 5 headless builds (PyPI), pinned.
PEER_PACKAGES = (
    "cellprofiler-nightly==5.0.0.dev784",
    "cellprofiler-core-nightly==5.0.0.dev784",
    "cellprofiler-library-nightly==5.0.0.dev784",
)


@dataclass
class Score:
    ap50: float
    map: float
    count_error: float
    seconds: float


def score(truths: list[np.ndarray], preds: list[np.ndarray], seconds: list[float]) -> Score:
    from plateseg.segmentation.evaluate import match_counts

    totals = np.zeros((len(IOUS), 3))
    errors = []
    for truth, pred in zip(truths, preds, strict=True):
        totals += match_counts(truth, pred, tuple(float(i) for i in IOUS))
        true_n = len(np.unique(truth)) - 1
        found = len(np.unique(pred)) - 1
        errors.append(abs(found - true_n) / max(true_n, 1))
    aps = totals[:, 0] / np.maximum(totals.sum(axis=1), 1)
    return Score(
        float(aps[0]), float(np.mean(aps)), float(np.median(errors)), float(np.median(seconds))
    )


def run_plateseg(recipe: object, items: list[Annotated]) -> Score:
    from plateseg.segmentation import segment_field

    preds, seconds = [], []
    for item in items:
        started = time.process_time()
        preds.append(segment_field({"w1": item.image}, recipe).labels)  # type: ignore[arg-type]
        seconds.append(time.process_time() - started)
    return score([i.labels for i in items], preds, seconds)


def ensure_peer() -> Path:
    """The CellProfiler venv's python, created on first use."""
    python = PEER_VENV / "bin" / "python"
    if not (PEER_VENV / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--no-deps", PEER_PACKAGES[0]], check=True)
        subprocess.run([*pip, *PEER_PACKAGES[1:], "tifffile"], check=True)
        (PEER_VENV / ".installed").touch()
    return python


def run_peer(python: Path, items: list[Annotated], diameter: tuple[int, int]) -> Score:
    import tifffile

    with tempfile.TemporaryDirectory() as folder:
        images, out = Path(folder) / "images", Path(folder) / "out"
        images.mkdir()
        for index, item in enumerate(items):
            tifffile.imwrite(images / f"{index:04d}.tif", item.image)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        subprocess.run(
            [
                str(python),
                str(PEER_SCRIPT),
                str(images),
                str(out),
                "--diameter",
                *map(str, diameter),
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        preds = [tifffile.imread(out / f"{index:04d}.tif") for index in range(len(items))]
        with open(out / "timing.csv") as handle:
            seconds = [float(row["cpu_s"]) for row in csv.DictReader(handle)]
    return score([i.labels for i in items], preds, seconds)


def synthetic() -> list[Annotated]:
    from plateseg.demo import NEG_DENSITY, render_field

    fields = []
    for index in range(8):
        rng = np.random.default_rng(3000 + index)
        density = (1.0, 0.4, 1.5, 0.8)[index % 4]
        brightness = 0.35 if index % 3 == 1 else 1.0
        field = render_field(rng, int(NEG_DENSITY * density), 512, brightness=brightness)
        labels = field.labels.astype(np.int32)
        from nuclei_data import median_diameter

        fields.append(Annotated(f"synthetic-{index}", field.w1, labels, median_diameter(labels)))
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="validation images used")
    parser.add_argument("--no-peer", action="store_true", help="skip CellProfiler")
    parser.add_argument("--sets", default=None, help="comma-separated set names to run")
    args = parser.parse_args()

    from plateseg.contracts import Recipe

    _, validation = load_dev(args.data)
    validation = validation[: args.limit]
    sets: dict[str, list[Annotated]] = {"dev validation": validation}
    for name, transform in STRESS.items():
        sets[name] = [transform(item) for item in validation]
    if args.sets is None or "real DSB 2018" in args.sets:
        with tempfile.TemporaryDirectory() as folder:
            dsb = fetch_dsb(Path(folder))
        sets["real DSB 2018"] = [dsb]
        sets[DSB_TURNED] = orientations(dsb)
    sets["synthetic (8 fields)"] = synthetic()
    if args.sets:
        wanted = {s.strip() for s in args.sets.split(",")}
        sets = {k: v for k, v in sets.items() if k in wanted}
    default = Recipe().segmenter
    segmenters = {
        f"classical{' (default)' if default == 'classical' else ''}": Recipe(segmenter="classical"),
        f"onnx nuclei-unet{' (default)' if default == 'onnx' else ''}": Recipe(segmenter="onnx"),
    }
    peer = None if args.no_peer else ensure_peer()
    print(f"# bench/accuracy.py — {len(validation)} validation images; CPU s/image on one thread")
    print()
    print(
        "| set | segmenter | AP@0.5 | mAP .5:.95 | count error | s/image | AP@0.5 / CellProfiler |"
    )
    print("|---|---|---|---|---|---|---|")
    for set_name, items in sets.items():
        rows: dict[str, Score] = {}
        median = float(np.median([i.diameter for i in items]))
        diameter = (max(2, round(0.5 * median)), max(3, round(2 * median)))
        if peer is not None:
            rows[f"CellProfiler IPO {diameter[0]}-{diameter[1]} px"] = run_peer(
                peer, items, diameter
            )
        for title, recipe in segmenters.items():
            rows[title] = run_plateseg(recipe, items)
        reference = next((s for t, s in rows.items() if t.startswith("CellProfiler")), None)
        for title, s in rows.items():
            ratio = f"{s.ap50 / reference.ap50:.2f}x" if reference and reference.ap50 else "-"
            print(
                f"| {set_name} | {title} | {s.ap50:.3f} | {s.map:.3f} | "
                f"{100 * s.count_error:.1f} % | {s.seconds:.3f} | {ratio} |"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
