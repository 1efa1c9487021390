"""Train the shipped learned nuclei model ``plateseg/models/nuclei-unet.onnx``.

A small U-Net (3 poolings, 8-16-32-64 channels, ~120k weights) predicting three classes
per pixel — background, nucleus interior, nucleus boundary — at a fixed nuclear scale
(:data:`TARGET_DIAMETER` px). Three classes rather than foreground alone because the
boundary class is what keeps touching nuclei apart (Caicedo et al., Cytometry A 2019,
trained this on the same images); rather than star-convex polygons because the
post-processing stays a label + expand that any nucleus shape survives and that costs
~0.1 s per 2048² field. See :mod:`plateseg.segmentation.learned` for inference.

Data: ``../shared/data/bbbc039-dev`` (150 expert-annotated BBBC039 images, CC0), split
by :func:`nuclei_data.is_validation` (a hash of the file name): 115 training images, 35
validation images never trained on.

Augmentation, for what varies between labs (all on the raw counts, *before* the same
:func:`plateseg.segmentation.preprocess.normalise` inference uses):
nucleus size (each image rescaled so its nuclei are TARGET_DIAMETER x 0.7-1.4, on
top of the scale estimate's error), touching neighbours (copy-paste), per-nucleus
brightness, chromatin texture (bright chromocentre spots inside nuclei, as in mouse
cells), out-of-focus halos around nuclei made 2-6x brighter (``--halos``: the share of
samples, 0.3; widefield light of thick, rounded-up or mitotic cells), gamma 0.6-1.6,
gain 0.05-20x, camera offsets up to half the range, slow linear and quadratic
illumination gradients up to 3x the nuclear signal, defocus blur, Poisson and read
noise, 8/12/16-bit quantisation with saturation or float, small saturated debris,
flips and 90° turns.

Run (CPU, 2 cores: ~40 min; CUDA is used when present)::

    .venv/bin/pip install -r tools/requirements-train.txt
    .venv/bin/python tools/train_nuclei_net.py [--data DIR] [--out plateseg/models/nuclei-unet.onnx]

``--depth``/``--channels`` change the U-Net's poolings and first-level width (the shipped
model: 3 and 8; ``--depth 4`` was tried, see the model card). ``--quick`` trains a few
steps on two images (the test suite runs it). Prints the
validation figures quoted in ``plateseg/models/README.md``; seeds are fixed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from nuclei_data import DATA, Annotated, load_dev  # noqa: E402

#: Nuclear diameter (px) the network works at; inference rescales every field to it.
TARGET_DIAMETER = 14.0
PATCH = 128
CONTEXT = 192  # normalised on a larger window, so its background estimate has context
BOUNDARY_WEIGHT = 3.0
#: Share of samples with out-of-focus halos around bright nuclei (``--halos``).
HALOS = 0.3


# --- augmentation ---------------------------------------------------------------------


def _crop(rng: np.random.Generator, image: np.ndarray, labels: np.ndarray, size: int):
    """A random window of ``size`` (or the whole axis when smaller)."""
    h, w = image.shape
    y0 = int(rng.integers(0, max(h - size, 0) + 1))
    x0 = int(rng.integers(0, max(w - size, 0) + 1))
    im = image[y0 : y0 + size, x0 : x0 + size]
    lab = labels[y0 : y0 + size, x0 : x0 + size]
    return im, lab


def paste_neighbours(rng: np.random.Generator, signal: np.ndarray, lab: np.ndarray, d: float):
    """Copy-paste (Ghiasi et al., CVPR 2021) for clumps: up to five nuclei get a copy
    0.55-0.95 diameters away (overlapping others by < 30 %), so touching and partly
    overlapping pairs — with the dim neck between them that real clumps have (the copy's
    own dim rim) — are common whatever the plate's density. The copy lies on top."""
    out, labels = signal.copy(), lab.copy()
    boxes = ndi.find_objects(lab)
    present = [i for i, box in enumerate(boxes, start=1) if box is not None]
    h, w = lab.shape
    for _ in range(int(rng.integers(1, 6))):
        source = present[int(rng.integers(len(present)))]
        box = boxes[source - 1]
        angle, reach = rng.uniform(0, 2 * np.pi), rng.uniform(0.55, 0.95) * d
        dy, dx = round(reach * math.sin(angle)), round(reach * math.cos(angle))
        (y0, y1), (x0, x1) = (box[0].start, box[0].stop), (box[1].start, box[1].stop)
        if min(y0 + dy, x0 + dx) < 0 or y1 + dy > h or x1 + dx > w:
            continue
        mask = lab[box] == source
        into = (slice(y0 + dy, y1 + dy), slice(x0 + dx, x1 + dx))
        if (mask & (labels[into] > 0)).sum() > 0.3 * mask.sum():
            continue  # a nucleus hidden inside another is not what clumps look like
        out[into] = np.where(mask, signal[box], out[into])
        labels[into] = np.where(mask, labels.max() + 1, labels[into])
    return out, labels


def add_halos(rng: np.random.Generator, signal: np.ndarray, lab: np.ndarray, d: float):
    """Out-of-focus light around bright nuclei (widefield optics; thick, rounded-up or
    mitotic cells): some nuclei made 2-6x brighter, and a share of their light spread
    as a wide blur (sigma 0.25-0.6 diameters) that stays background in the target."""
    n = int(lab.max())
    chosen = rng.random(n + 1) < rng.uniform(0.1, 0.4)
    chosen[0] = False
    if not chosen.any():
        return signal
    bright = np.where(chosen[lab], signal, 0) * math.exp(rng.uniform(math.log(2), math.log(6)))
    spread = rng.uniform(0.2, 0.7)
    halo = ndi.gaussian_filter(bright, rng.uniform(0.25, 0.6) * d)
    return np.where(chosen[lab], bright * (1 - spread), signal) + spread * halo


def augment(
    rng: np.random.Generator,
    image: np.ndarray,
    labels: np.ndarray,
    diameter: float,
    halos: float,
):
    """One augmented, normalised ``PATCH`` x ``PATCH`` sample and its class target."""
    from skimage.segmentation import find_boundaries

    from plateseg.segmentation.preprocess import normalise, resize

    scale = TARGET_DIAMETER / diameter * math.exp(rng.uniform(math.log(0.7), math.log(1.4)))
    window = math.ceil(CONTEXT / scale)
    raw, lab = _crop(rng, image, labels, window)
    shape = (max(PATCH, round(raw.shape[0] * scale)), max(PATCH, round(raw.shape[1] * scale)))
    raw = resize(raw, shape, order=1)
    lab = resize(lab, shape, order=0)
    d = TARGET_DIAMETER
    base = float(np.percentile(raw, 10))
    signal = raw - base
    level = float(np.percentile(signal[lab > 0], 50)) if (lab > 0).any() else 100.0
    level = max(level, 1.0)
    # touching neighbours: copies of nuclei pasted next to themselves
    if lab.max() and rng.random() < 0.5:
        signal, lab = paste_neighbours(rng, signal, lab, d)
    # per-nucleus brightness
    n = int(lab.max())
    if n and rng.random() < 0.7:
        gains = np.exp(rng.normal(0, 0.55, n + 1)).astype(np.float32)
        gains[0] = 1.0
        signal = signal * ndi.gaussian_filter(gains[lab], 0.7)
    # chromatin texture: bright spots inside nuclei, dimmer nucleoplasm
    if n and rng.random() < 0.35:
        inside = lab > 0
        spots = (rng.random(lab.shape) < rng.uniform(0.003, 0.02)) & inside
        sigma = rng.uniform(0.06, 0.14) * d
        blob = ndi.gaussian_filter(spots.astype(np.float32), sigma) * (2 * np.pi * sigma**2)
        dim = rng.uniform(0.3, 0.9)
        signal = np.where(inside, signal * dim, signal) + blob * level * rng.uniform(0.8, 3.0)
    # out-of-focus halos around bright nuclei
    if halos and n and rng.random() < halos:  # no draw when off: the same stream as before
        signal = add_halos(rng, signal, lab, d)
    # gamma on the positive signal
    if rng.random() < 0.5:
        gamma = math.exp(rng.uniform(math.log(0.6), math.log(1.6)))
        top = max(float(signal.max()), 1.0)
        signal = np.sign(signal) * top * (np.abs(signal) / top) ** gamma
    # defocus
    if rng.random() < 0.3:
        signal = ndi.gaussian_filter(signal, rng.uniform(0.5, 2.0))
    # small saturated debris (background in the target)
    debris = np.zeros(lab.shape, bool)
    if rng.random() < 0.15:
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.integers(0, lab.shape[0]), rng.integers(0, lab.shape[1])
            r = rng.uniform(1.0, 2.5)
            yy, xx = np.ogrid[: lab.shape[0], : lab.shape[1]]
            debris |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        signal = np.where(debris & (lab == 0), level * rng.uniform(5, 30), signal)
    # gain: photons per unit of signal; Poisson noise
    gain = math.exp(rng.uniform(math.log(0.05), math.log(20.0)))
    counts = np.maximum(signal, 0) * gain
    if rng.random() < 0.6:
        photons = math.exp(rng.uniform(math.log(15), math.log(2000)))  # per median nucleus px
        k = photons / max(level * gain, 1e-6)
        counts = rng.poisson(counts * k).astype(np.float32) / np.float32(k)
    background = base * gain * rng.uniform(0.2, 3.0)
    # illumination gradient and vignetting (additive background), up to 3x the signal
    if rng.random() < 0.5:
        yy, xx = np.mgrid[: lab.shape[0], : lab.shape[1]].astype(np.float32)
        yy, xx = yy / lab.shape[0] - 0.5, xx / lab.shape[1] - 0.5
        amp = level * gain * rng.uniform(0.2, 3.0)
        angle = rng.uniform(0, 2 * np.pi)
        field = np.cos(angle) * xx + np.sin(angle) * yy
        if rng.random() < 0.3:
            field = -(xx**2 + yy**2)
        counts = counts + amp * field
    counts = counts + background
    # read noise
    if rng.random() < 0.6:
        counts = counts + rng.normal(0, rng.uniform(0.005, 0.08) * level * gain, counts.shape)
    # bit depth, offset, saturation
    depth = rng.choice(["8", "12", "16", "float"], p=[0.25, 0.25, 0.35, 0.15])
    if depth == "float":
        counts = counts / max(float(counts.max()), 1e-6) * rng.uniform(0.3, 1.0)
    else:
        top = 2 ** int(depth) - 1
        peak = float(np.percentile(counts, 99.9)) - float(counts.min())
        counts = (counts - float(counts.min())) / max(peak, 1e-6) * top * rng.uniform(0.2, 1.05)
        if rng.random() < 0.4:
            counts = counts + rng.uniform(0, 0.5) * top  # camera offset up to half the range
        counts = np.clip(np.round(counts), 0, top)
    x = normalise(counts.astype(np.float32)).image
    # centre crop of PATCH
    y0 = (x.shape[0] - PATCH) // 2 + int(rng.integers(-8, 9) if x.shape[0] > PATCH + 16 else 0)
    x0 = (x.shape[1] - PATCH) // 2 + int(rng.integers(-8, 9) if x.shape[1] > PATCH + 16 else 0)
    x = x[y0 : y0 + PATCH, x0 : x0 + PATCH]
    lab = lab[y0 : y0 + PATCH, x0 : x0 + PATCH]
    target = np.where(lab > 0, 1, 0).astype(np.int64)
    target[find_boundaries(lab, mode="inner") & (lab > 0)] = 2
    turns = int(rng.integers(0, 4))
    x, target = np.rot90(x, turns), np.rot90(target, turns)
    if rng.random() < 0.5:
        x, target = x[:, ::-1], target[:, ::-1]
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(target)


# --- the network ----------------------------------------------------------------------


def build_unet(channels: int = 8, depth: int = 3):
    import torch
    from torch import nn

    def block(i: int, o: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1, bias=False),
            nn.BatchNorm2d(o),
            nn.ReLU(inplace=True),
            nn.Conv2d(o, o, 3, padding=1, bias=False),
            nn.BatchNorm2d(o),
            nn.ReLU(inplace=True),
        )

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            ch = [channels * 2**i for i in range(depth + 1)]
            self.down = nn.ModuleList(
                [block(1, ch[0])] + [block(ch[i], ch[i + 1]) for i in range(depth)]
            )
            self.up = nn.ModuleList(
                [nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in reversed(range(depth))]
            )
            self.dec = nn.ModuleList([block(2 * ch[i], ch[i]) for i in reversed(range(depth))])
            self.head = nn.Conv2d(ch[0], 3, 1)
            self.pool = nn.MaxPool2d(2)

        def logits(self, x):  # type: ignore[no-untyped-def]
            skips = []
            for i, down in enumerate(self.down):
                x = down(x if i == 0 else self.pool(x))
                skips.append(x)
            x = skips.pop()
            for up, dec in zip(self.up, self.dec, strict=True):
                x = dec(torch.cat([up(x), skips.pop()], 1))
            return self.head(x)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return torch.softmax(self.logits(x), 1)

    return UNet()


class Samples(torch.utils.data.IterableDataset):
    """Endless augmented samples; each loader worker draws its own stream."""

    def __init__(self, items: list[Annotated], seed: int, halos: float) -> None:
        super().__init__()
        self.items = items
        self.seed = seed
        self.halos = halos

    def __iter__(self):  # type: ignore[no-untyped-def]
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            item = self.items[int(rng.integers(len(self.items)))]
            yield augment(rng, item.image, item.labels, item.diameter, self.halos)


def export(model, out: Path, meta: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    from plateseg.finetune.network import module_to_onnx

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(module_to_onnx(model.cpu(), meta))


def validate(out: Path, items: list[Annotated]) -> dict[str, float]:
    """AP@0.5 (pooled and per-image mean) and mAP .5:.95 of the exported model."""
    from plateseg.segmentation.evaluate import match_counts
    from plateseg.segmentation.learned import segment_learned
    from plateseg.segmentation.onnx_model import load_model_bytes

    model = load_model_bytes(out.stem, out.read_bytes())
    ious = np.round(np.arange(0.5, 0.96, 0.05), 2)
    totals = np.zeros((len(ious), 3))
    per_image = []
    for item in items:
        pred = segment_learned(item.image, model).labels
        counts = match_counts(item.labels, pred, tuple(float(i) for i in ious))
        totals += counts
        per_image.append(counts[0, 0] / max(counts[0].sum(), 1))
    aps = totals[:, 0] / np.maximum(totals.sum(axis=1), 1)
    return {
        "ap50_pooled": round(float(aps[0]), 4),
        "ap50_mean": round(float(np.mean(per_image)), 4),
        "map": round(float(np.mean(aps)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "plateseg/models/nuclei-unet.onnx")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--depth", type=int, default=3, help="poolings of the U-Net")
    parser.add_argument("--channels", type=int, default=8, help="channels of its first level")
    parser.add_argument(
        "--halos", type=float, default=HALOS, help="share of samples with out-of-focus halos"
    )
    parser.add_argument("--quick", action="store_true", help="a few steps on two images")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch, args.workers = 3, 2, 0
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    train, validation = load_dev(args.data)
    if args.quick:  # a smoke test: any two images train, a third validates
        everything = train + validation
        train, validation = everything[:2], everything[2:3] or everything[:1]
    print(f"train {len(train)} images, validation {len(validation)} (never trained on)")
    model = build_unet(args.channels, args.depth).to(device)
    loader = torch.utils.data.DataLoader(
        Samples(train, args.seed, args.halos),
        batch_size=args.batch,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=args.lr, total_steps=args.steps, pct_start=0.1
    )
    weights = torch.tensor([1.0, 1.0, BOUNDARY_WEIGHT], device=device)
    started = time.time()
    model.train()
    running = 0.0
    for step, (x, y) in enumerate(loader, start=1):
        x, y = x[:, None].to(device), y.to(device)
        loss = torch.nn.functional.cross_entropy(model.logits(x), y, weight=weights)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}/{args.steps} loss {running:.4f} {time.time() - started:.0f}s")
            sys.stdout.flush()
        if step >= args.steps:
            break
    seconds = time.time() - started
    meta = {
        "plateseg.kind": "nuclei-3class",
        "plateseg.diameter": str(TARGET_DIAMETER),
        "plateseg.multiple": str(2**args.depth),
        "plateseg.foreground": "1",
        "plateseg.training": json.dumps(
            {
                "data": "BBBC039 (bbbc039-dev, training split)",
                "steps": args.steps,
                "batch": args.batch,
                "seed": args.seed,
                "halos": args.halos,
                "seconds": round(seconds),
            }
        ),
    }
    export(model, args.out, meta)
    figures = validate(args.out, validation)
    print(
        json.dumps({"train_seconds": round(seconds), "validation": figures, "out": str(args.out)})
    )


if __name__ == "__main__":
    main()
