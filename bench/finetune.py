"""Benchmark: fine-tuning the shipped base model from scribbles on 3 fields of a new domain.

Domain shift: the 35 validation images of ``../shared/data/bbbc039-dev`` (never trained
on) with **cytoplasmic bleed-through** — a whole-cell signal at half the median nuclear
level around every nucleus (``tools/nuclei_data.bleed_through``), as a nuclear stain
that also marks the cytoplasm, or a second dye bleeding into the nuclear channel, looks.
The base model outlines the cells instead of the nuclei there.

Three of those fields are scribbled programmatically from their truth
(:func:`plateseg.finetune.labels.scribbles_from_truth`: a 3-px stroke through 30 % of the
nuclei, 12 background strokes, the contact lines of touching stroked nuclei — sparse
strokes, no full masks). :func:`plateseg.finetune.fine_tune` fine-tunes the base on them
with its default settings, on 2 threads. AP@0.5 (one-to-one matching, pooled) before and
after, on the held-out shifted fields and on the same held-out fields without the shift
(the original domain: fine-tuning must not break it). On the shifted fields the recipe
gives the nuclear diameter (the set's median), before and after: the bleed-through
makes the estimate from the image measure cells.

Run::

    .venv/bin/python bench/finetune.py [--data DIR] [--held-out N] [--repeats K]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from nuclei_data import DATA, Annotated, bleed_through, load_dev  # noqa: E402

from plateseg.finetune import FineTuneSettings, LabelledField, fine_tune  # noqa: E402
from plateseg.finetune.labels import scribbles_from_truth  # noqa: E402
from plateseg.segmentation.evaluate import match_counts  # noqa: E402
from plateseg.segmentation.learned import segment_learned  # noqa: E402
from plateseg.segmentation.onnx_model import load_model_bytes, read_model_bytes  # noqa: E402

#: Fields scribbled (by index into the validation split, sorted by name).
LABELLED = (0, 1, 2)


def ap50(items: list[Annotated], data: bytes, diameter: float | None) -> float:
    model = load_model_bytes("bench", data)
    totals = np.zeros(3)
    for item in items:
        found = segment_learned(item.image, model, diameter).labels
        totals += match_counts(item.labels, found, (0.5,))[0]
    return float(totals[0] / max(totals.sum(), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--held-out", type=int, default=None, help="held-out fields used")
    parser.add_argument("--repeats", type=int, default=1, help="fine-tunes with other seeds")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    _train, validation = load_dev(args.data)
    labelled = [validation[i] for i in LABELLED]
    held = [v for i, v in enumerate(validation) if i not in LABELLED][: args.held_out]
    shifted_labelled = [bleed_through(v) for v in labelled]
    shifted_held = [bleed_through(v) for v in held]
    base = read_model_bytes("nuclei-unet", None)
    # the scientist types the nuclear diameter into the recipe: the bleed-through fools the
    # estimate from the image (it measures cells), which is not what this benchmark is about
    diameter = float(np.median([v.diameter for v in validation]))
    before = {
        "shifted": ap50(shifted_held, base, diameter),
        "original": ap50(held, base, None),
    }
    rows = []
    for repeat in range(args.repeats):
        fields = [
            LabelledField(v.name, v.image, scribbles_from_truth(v.labels, np.random.default_rng(i)))
            for i, v in enumerate(shifted_labelled)
        ]
        started = time.perf_counter()
        settings = FineTuneSettings(seed=repeat, threads=args.threads, diameter=diameter)
        tuned = fine_tune(base, "nuclei-unet", fields, settings)
        wall = time.perf_counter() - started
        after = {
            "shifted": ap50(shifted_held, tuned.data, diameter),
            "original": ap50(held, tuned.data, None),
        }
        rows.append((repeat, tuned.card, wall, after))
    labels = rows[0][1]["labels"]
    print(
        f"fine-tune nuclei-unet from scribbles on {len(labelled)} bleed-through fields "
        f"({labels['nucleus']} nucleus, {labels['background']} background, "
        f"{labels['separator']} separator px); AP@0.5 on {len(held)} held-out fields\n"
    )
    print(
        "| model | seed | steps | fine-tune s (wall, incl. export) | shifted AP@0.5 | "
        "change | original AP@0.5 | change |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| base nuclei-unet | - | - | - | {before['shifted']:.3f} | - | "
        f"{before['original']:.3f} | - |"
    )
    for repeat, card, wall, after in rows:
        print(
            f"| fine-tuned | {repeat} | {card['steps']} | {wall:.1f} | {after['shifted']:.3f} | "
            f"{after['shifted'] - before['shifted']:+.3f} | {after['original']:.3f} | "
            f"{after['original'] - before['original']:+.3f} |"
        )


if __name__ == "__main__":
    main()
