"""Benchmark: object-level accuracy of every segmenter, synthetic and real.

Metrics (:mod:`plateseg.segmentation.evaluate`): AP@0.5 = TP / (TP + FP + FN) with
one-to-one matching at IoU >= 0.5, and mean AP over IoU 0.50, 0.55, ..., 0.95 (the
DSB 2018 / StarDist / Cellpose metric), pooled over the images of a set.

Sets
----
synthetic
    Eight 512x512 demo fields (:func:`plateseg.demo.render_field`, seeds 3000+; dense,
    sparse, dim, touching pairs) with their true labels.
real (DSB 2018)
    ``img2d.tif``/``mask2d.tif`` shipped inside the ``stardist`` wheel on PyPI
    (``stardist/data/images``, used by ``stardist.data.test_image_nuclei_2d``): a
    512x512 fluorescence nuclei image of the 2018 Data Science Bowl (BBBC038, Caicedo
    et al., Nature Methods 2019) with its expert annotation (125 nuclei). Fetched at
    run time with ``pip download --no-deps stardist==0.9.2`` into a temporary folder;
    not committed. Licences: BBBC038 images and annotations CC0 1.0; the stardist
    package BSD-3-Clause.

    The wheel holds no other real 2-D image with annotation (``img3d.tif`` is synthetic,
    ``histo.jpg`` is an H&E image without masks), so the real set has one image; the
    last row scores the default recipe on its 8 rotations and flips.

Segmenters: ``classical`` (default recipe, no tuning), ``onnx`` (the shipped
``nuclei-rf`` model, trained on synthetic data only) and ``trainable`` (a forest trained
here from labels of the *left half* of each set's first image, as a scientist's
partial annotation would be). Every set is scored on all its images; the real image
also on its right half, the only score for ``trainable`` there (it saw the left half).

Run::

    .venv/bin/python bench/accuracy.py
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STARDIST = "stardist==0.9.2"
IOUS = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))


def fetch_real(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Download the stardist wheel and read its DSB 2018 image and mask."""
    import tifffile

    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", STARDIST, "-d", str(folder)],
        check=True,
    )
    wheel = next(folder.glob("stardist-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        with archive.open("stardist/data/images/img2d.tif") as handle:
            image = tifffile.imread(io.BytesIO(handle.read()))
        with archive.open("stardist/data/images/mask2d.tif") as handle:
            mask = tifffile.imread(io.BytesIO(handle.read()))
    return np.asarray(image), np.asarray(mask)


def synthetic() -> list[tuple[np.ndarray, np.ndarray]]:
    from plateseg.demo import NEG_DENSITY, render_field

    fields = []
    for index in range(8):
        rng = np.random.default_rng(3000 + index)
        density = (1.0, 0.4, 1.5, 0.8)[index % 4]
        brightness = 0.35 if index % 3 == 1 else 1.0
        field = render_field(rng, int(NEG_DENSITY * density), 512, brightness=brightness)
        fields.append((field.w1, field.labels))
    return fields


def _relabel_half(labels: np.ndarray, left: bool) -> np.ndarray:
    """Objects whose centroid lies in the left (or right) half; the others removed."""
    from scipy import ndimage as ndi

    width = labels.shape[1]
    out = labels.copy()
    ids = np.unique(labels)[1:]
    if len(ids) == 0:
        return out
    centres = ndi.center_of_mass(labels > 0, labels, ids)
    for label, (_y, x) in zip(ids, centres, strict=True):
        if (x < width / 2) != left:
            out[out == label] = 0
    return out


def score(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Pooled AP@0.5 and mean AP over IoU 0.5-0.95 of (truth, prediction) pairs."""
    from plateseg.segmentation.evaluate import match_objects

    aps = []
    for iou in IOUS:
        tp = fp = fn = 0
        for truth, pred in pairs:
            t, p, n = match_objects(truth, pred, float(iou))
            tp, fp, fn = tp + t, fp + p, fn + n
        aps.append(tp / max(tp + fp + fn, 1))
    return aps[0], float(np.mean(aps))


def run_set(name: str, images: list[tuple[np.ndarray, np.ndarray]], half: bool) -> None:
    from plateseg.contracts import Recipe
    from plateseg.segmentation import segment_field
    from plateseg.segmentation.onnx_model import _CACHE
    from plateseg.segmentation.trainable import scribbles_from_mask, train_pixel_classifier
    from plateseg.store import open_store

    first_image, first_truth = images[0]
    left = scribbles_from_mask(first_truth)
    left[:, first_truth.shape[1] // 2 :] = 0
    model = train_pixel_classifier(
        [first_image], [left], scale=1 if half else 2, name="bench-trainable"
    )
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(folder)
        store.put_bytes("models/bench-trainable.onnx", model)
        _CACHE.clear()
        recipes = {
            "classical (default)": Recipe(),
            "onnx (nuclei-rf)": Recipe(segmenter="onnx"),
            "trainable (half-image labels)": Recipe(
                segmenter="trainable", params={"model": "bench-trainable"}
            ),
        }
        for title, recipe in recipes.items():
            whole, right = [], []
            for image, truth in images:
                pred = segment_field({"w1": image}, recipe, store).labels
                whole.append((truth, pred))
                right.append((_relabel_half(truth, False), _relabel_half(pred, False)))
            line = f"{name:<22}{title:<32}"
            if half and title.startswith("trainable"):  # it saw the left half: no score
                line += f"{'-':>8}{'-':>10}"
            else:
                ap50, map_ = score(whole)
                line += f"{ap50:>8.3f}{map_:>10.3f}"
            if half:
                ap50, map_ = score(right)
                line += f"{ap50:>10.3f}{map_:>10.3f}"
            print(line)


def orientations(image: np.ndarray, truth: np.ndarray) -> None:
    """Default classical AP@0.5 on the 8 rotations/flips of the image: how much of a
    score is the luck of the pixel grid (ties in the distance transform)."""
    from plateseg.contracts import Recipe
    from plateseg.segmentation import segment_field

    aps = []
    for turns in range(4):
        for flip in (False, True):
            im, t = np.rot90(image, turns), np.rot90(truth, turns)
            if flip:
                im, t = im[:, ::-1], t[:, ::-1]
            im, t = np.ascontiguousarray(im), np.ascontiguousarray(t)
            aps.append(score([(t, segment_field({"w1": im}, Recipe()).labels)])[0])
    print(
        f"{'real, 8 orientations':<22}{'classical (default)':<32}"
        f"{np.mean(aps):>8.3f}  (AP@0.5 mean; min {np.min(aps):.3f}, max {np.max(aps):.3f})"
    )


def main() -> None:
    sys.path.insert(0, str(ROOT))
    print(f"{'':<54}{'whole image':>18}{'right half':>20}")
    print(
        f"{'set':<22}{'segmenter':<32}{'AP@0.5':>8}{'mAP.5:.95':>10}{'AP@0.5':>10}{'mAP.5:.95':>10}"
    )
    run_set("synthetic (8 fields)", synthetic(), half=False)
    with tempfile.TemporaryDirectory() as folder:
        image, mask = fetch_real(Path(folder))
    run_set("real DSB2018", [(image, mask)], half=True)
    orientations(image, mask)


if __name__ == "__main__":
    main()
