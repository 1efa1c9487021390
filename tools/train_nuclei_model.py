"""Train the shipped nuclei model ``plateseg/models/nuclei-rf.onnx`` from the demo generator.

The training data are regenerated, not stored: synthetic two-channel fields from
:func:`plateseg.demo.render_field` (seeds 1000+, disjoint from the demo plate's seed 0),
at full and dim (0.35) brightness and several densities, plus one empty field. The
labels are the generator's true nuclei turned into dense scribbles
(:func:`plateseg.segmentation.trainable.scribbles_from_mask`: nucleus, background beyond
a 3-pixel ring). The forest and its features are those of the ``trainable`` segmenter.

Run::

    .venv/bin/pip install -r tools/requirements-train.txt
    .venv/bin/python tools/train_nuclei_model.py [--out plateseg/models/nuclei-rf.onnx]

Prints the held-out metrics (fields of seeds 2000+) quoted in ``plateseg/models/README.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _fields(seed: int, count: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from plateseg.demo import NEG_DENSITY, render_field

    out = []
    for index in range(count):
        rng = np.random.default_rng(seed + index)
        density = [1.0, 0.5, 1.4, 0.2][index % 4]
        brightness = 0.35 if index % 3 == 2 else 1.0
        n = int(NEG_DENSITY * density * (size / 512) ** 2)
        field = render_field(rng, n, size, brightness=brightness)
        out.append((field.w1, field.labels))
    empty = render_field(np.random.default_rng(seed + 999), 0, size)
    out.append((empty.w1, empty.labels))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "plateseg/models/nuclei-rf.onnx")
    parser.add_argument("--fields", type=int, default=6)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from plateseg.contracts import Recipe
    from plateseg.segmentation import segment_field
    from plateseg.segmentation.evaluate import match_objects
    from plateseg.segmentation.onnx_model import _CACHE
    from plateseg.segmentation.trainable import scribbles_from_mask, train_pixel_classifier

    train = _fields(1000, args.fields, args.size)
    model = train_pixel_classifier(
        [image for image, _ in train],
        [scribbles_from_mask(labels) for _, labels in train],
        name="nuclei-rf",
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(model)
    _CACHE.clear()
    digest = hashlib.sha256(model).hexdigest()[:16]
    print(f"wrote {args.out} ({len(model) / 1024:.0f} KiB, sha256 {digest})")

    recipe = Recipe(segmenter="onnx", params={"model": args.out.stem})
    tp = fp = fn = 0
    for image, truth in _fields(2000, 4, args.size)[:-1]:
        found = segment_field({"w1": image}, recipe).labels
        t, p, n = match_objects(truth, found, 0.5)
        tp, fp, fn = tp + t, fp + p, fn + n
    print(f"held-out (3 fields of {args.size}², seeds 2000+): TP {tp} FP {fp} FN {fn}")
    print(f"F1@0.5 {2 * tp / max(2 * tp + fp + fn, 1):.3f}  AP@0.5 {tp / max(tp + fp + fn, 1):.3f}")


if __name__ == "__main__":
    main()
