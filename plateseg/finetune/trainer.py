"""Fine-tune a ``nuclei-3class`` network from sparse corrections on a few fields.

Recipe (the choices, and why):

* **Same input as inference.** Each field goes through
  :func:`plateseg.segmentation.learned.model_input` (normalised, resized so its nuclei
  are the model's training diameter); its labels are resized with it (nearest).
* **Decoder only.** The encoder is frozen (:meth:`GraphNetwork.trainable`): a few
  hundred labelled strokes cannot re-learn edge and blob filters, and the backward pass
  is half as long.
* **Set-valued labels.** Each painted pixel allows a set of classes
  (:data:`plateseg.finetune.labels.ALLOWED`); the loss is ``-log P(allowed set)``
  averaged over labelled pixels, separators weighted ``BOUNDARY_WEIGHT`` as in the base
  training. Unlabelled pixels carry no loss.
* **Stay near the base**: ``ANCHOR x Σ (w - w_base)²`` over the decoder (L2-SP, Li et
  al. 2018), a small learning rate (5e-4) and few steps (300). With 2e-3 or 1e-3 the
  outlines of every nucleus drift (nothing in sparse strokes says where an outline is)
  and the original domain lost up to 0.08 AP on the benchmark; and ``retain``
  x the cross-entropy against the base model's own probabilities on unlabelled
  pixels (learning without forgetting, Li & Hoiem 2016; weight :data:`RETAIN`).
* **Augmentations** of the base training that need no full masks: crops of ``patch`` px
  (96) centred on labelled pixels, the 8 rotations/flips, intensity gain and gamma.
* **Bounded.** It stops after ``steps`` or ``seconds``, whichever comes first, and
  whenever ``cancel`` is set; ``progress`` is called after every step.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from plateseg.errors import InputError
from plateseg.finetune.labels import ALLOWED, SEPARATOR, check_labels, label_counts

__all__ = ["FineTuneSettings", "FineTuned", "LabelledField", "fine_tune"]

#: Weight of separator pixels in the loss (the base training's boundary weight).
BOUNDARY_WEIGHT = 3.0
#: L2-SP strength: penalty per squared unit of distance from the base weights.
ANCHOR = 1e-2
#: Weight of the retention loss: cross-entropy of the new model against the base model's
#: own class probabilities on the pixels nobody labelled. On the fine-tuning benchmark
#: (``bench/finetune.py``, seeds 0-2, base trained with out-of-focus halos) without it
#: the fine-tuned models shrank every outline of the original domain (AP@0.5 -0.07,
#: -0.47, -0.07: the boundary class fades and the interior does not grow back); 0.1:
#: -0.008, -0.063, -0.007 (gain on the new domain +0.30…+0.35); 0.2: +0.004, -0.014,
#: +0.005 (gain +0.24…+0.27); 1.0 kept the original domain (+0.001…+0.005) but gained
#: only +0.05…+0.10. The base shipped before (no halos) lost 0.01-0.02 without it.
RETAIN = 0.2


@dataclass(frozen=True)
class LabelledField:
    """One corrected field.

    Attributes
    ----------
    name : str
        What the model card calls it (e.g. the image id).
    image : np.ndarray
        (Y, X) raw nuclei channel, any real dtype.
    labels : np.ndarray
        (Y, X) uint8 labels (:mod:`plateseg.finetune.labels`).
    """

    name: str
    image: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class FineTuneSettings:
    """How long and how hard to fine-tune (defaults: ≤ 45 s on 2 cores for 3 fields)."""

    steps: int = 300
    seconds: float = 45.0
    batch: int = 8
    patch: int = 96
    learning_rate: float = 5e-4
    anchor: float = ANCHOR
    retain: float = RETAIN
    seed: int = 0
    threads: int | None = None
    diameter: float | None = None


@dataclass(frozen=True)
class FineTuned:
    """Result of :func:`fine_tune`.

    Attributes
    ----------
    data : bytes
        The fine-tuned ONNX model (``plateseg.training`` metadata = ``card``).
    card : dict
        Base model (name, sha256), fields and label counts, steps, seconds, settings,
        final loss; JSON-serialisable.
    cancelled : bool
        Stopped by ``cancel`` (``data`` holds the model as it was then).
    """

    data: bytes
    card: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False


@dataclass
class _Prepared:
    image: np.ndarray  # (y, x) float32 at model scale
    labels: np.ndarray  # (y, x) uint8 at model scale
    where: np.ndarray  # flat indices of labelled pixels
    base: np.ndarray | None  # (3, y, x) float32 base model's probabilities (retention)


def _prepare(
    fields: Sequence[LabelledField], base: Any, diameter: float | None, retain: bool
) -> list[_Prepared]:
    from plateseg.segmentation.learned import model_input, predict_classes
    from plateseg.segmentation.preprocess import resize

    prepared = []
    for item in fields:
        image = np.asarray(item.image)
        if image.ndim != 2 or min(image.shape) < 8:
            raise InputError(f"field {item.name!r}: a 2-D image of at least 8x8 px is needed")
        labels = check_labels(item.labels, image.shape, f"field {item.name!r}")
        scaled = model_input(image, base, diameter)
        small = resize(labels, scaled.image.shape, order=0)
        where = np.flatnonzero(small)
        if where.size:
            probabilities = predict_classes(base, scaled.image) if retain else None
            prepared.append(_Prepared(scaled.image, small, where, probabilities))
    if not prepared:
        raise InputError(
            "the painted strokes vanish when the fields are scaled to the model's nuclear "
            "size: paint wider strokes, or give the nuclear diameter"
        )
    return prepared


def _crop(
    rng: np.random.Generator, item: _Prepared, patch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A ``patch`` x ``patch`` crop centred near a random labelled pixel (padded by
    reflection, labels by 0 = unlabelled, where the field is smaller): image, labels and
    the base model's probabilities, turned and flipped together."""
    height, width = item.image.shape
    cy, cx = divmod(int(item.where[rng.integers(item.where.size)]), width)
    cy += int(rng.integers(-patch // 4, patch // 4 + 1))
    cx += int(rng.integers(-patch // 4, patch // 4 + 1))
    y0 = min(max(cy - patch // 2, 0), max(height - patch, 0))
    x0 = min(max(cx - patch // 2, 0), max(width - patch, 0))
    image = item.image[y0 : y0 + patch, x0 : x0 + patch]
    labels = item.labels[y0 : y0 + patch, x0 : x0 + patch]
    base = None if item.base is None else item.base[:, y0 : y0 + patch, x0 : x0 + patch]
    pad = ((0, patch - image.shape[0]), (0, patch - image.shape[1]))
    if pad[0][1] or pad[1][1]:
        mode: Literal["reflect", "edge"] = "reflect" if min(image.shape) > patch // 2 else "edge"
        image = np.pad(image, pad, mode=mode)
        base = None if base is None else np.pad(base, ((0, 0), *pad), mode=mode)
        labels = np.pad(labels, pad)
    turns = int(rng.integers(4))
    image, labels = np.rot90(image, turns), np.rot90(labels, turns)
    base = None if base is None else np.rot90(base, turns, axes=(1, 2))
    if rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
        base = None if base is None else base[:, :, ::-1]
    # intensity: gain and gamma on the positive signal (background stays 0)
    gain = math.exp(rng.normal(0.0, 0.2))
    gamma = math.exp(rng.uniform(math.log(0.8), math.log(1.25)))
    positive = np.maximum(image, 0)
    image = np.where(image > 0, positive**gamma, image) * gain
    return (
        np.ascontiguousarray(image, np.float32),
        np.ascontiguousarray(labels),
        None if base is None else np.ascontiguousarray(base, np.float32),
    )


def _retain_loss(torch: Any, logits: Any, labels: Any, base: Any) -> Any:
    """Mean cross-entropy against the base model's probabilities over unlabelled pixels."""
    unlabelled = labels == 0
    if not bool(unlabelled.any()):
        return logits.new_zeros(())
    per_pixel = -(base * torch.log_softmax(logits, 1)).sum(1)
    return per_pixel[unlabelled].mean()


def _set_loss(torch: Any, logits: Any, labels: Any) -> Any:
    """Mean ``-log P(allowed set)`` over labelled pixels, separators weighted."""
    log_p = torch.log_softmax(logits, 1)
    total = logits.new_zeros(())
    weight_sum = logits.new_zeros(())
    for value, classes in ALLOWED.items():
        mask = labels == value
        if not bool(mask.any()):
            continue
        chosen = torch.logsumexp(log_p[:, list(classes)], 1)
        weight = BOUNDARY_WEIGHT if value == SEPARATOR else 1.0
        total = total - weight * chosen[mask].sum()
        weight_sum = weight_sum + weight * mask.sum()
    return total / weight_sum.clamp(min=1)


def fine_tune(
    base_data: bytes,
    base_name: str,
    fields: Sequence[LabelledField],
    settings: FineTuneSettings | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> FineTuned:
    """Fine-tune the decoder of a ``nuclei-3class`` model on corrected fields.

    Parameters
    ----------
    base_data : bytes
        The base model's ONNX bytes (shipped ``nuclei-unet`` or an earlier fine-tune).
    base_name : str
        Its name, for the card.
    fields : sequence of LabelledField
        At least one field with both background and nucleus labels among them.
    settings : FineTuneSettings, optional
    progress : callable, optional
        ``progress(step, steps, loss)`` after every step.
    cancel : callable, optional
        Polled every step; when it returns True training stops and the model as it
        is then is returned with ``cancelled=True``.

    Raises
    ------
    InputError
        No fields, labels that do not fit their field, or a class missing.
    ModelError
        The base is not a fine-tunable ``nuclei-3class`` model.
    """
    from plateseg.finetune.network import export_onnx, load_network, require_torch
    from plateseg.segmentation.onnx_model import load_model_bytes

    settings = settings or FineTuneSettings()
    if not fields:
        raise InputError("fine-tuning needs at least one labelled field")
    counts = {name: 0 for name in ("background", "nucleus", "separator")}
    per_field = []
    for item in fields:
        found = label_counts(
            check_labels(item.labels, np.shape(item.image), f"field {item.name!r}")
        )
        per_field.append({"name": item.name, "labels": found})
        for key, value in found.items():
            counts[key] += value
    missing = [k for k in ("background", "nucleus") if counts[k] == 0]
    if missing:
        raise InputError(f"paint some {' and '.join(missing)} too: fine-tuning needs both")
    torch = require_torch()
    base = load_model_bytes(base_name, base_data)
    network = load_network(base_data, f"model {base_name!r}")
    prepared = _prepare(fields, base, settings.diameter, settings.retain > 0)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    parameters = network.trainable()
    anchors = [p.detach().clone() for p in parameters]
    optimiser = torch.optim.Adam(parameters, lr=settings.learning_rate)
    started = time.perf_counter()
    step, cancelled = 0, False
    running = float("nan")
    while step < settings.steps:
        if cancel is not None and cancel():
            cancelled = True
            break
        if time.perf_counter() - started >= settings.seconds:
            break
        crops = [
            _crop(rng, prepared[int(rng.integers(len(prepared)))], settings.patch)
            for _ in range(settings.batch)
        ]
        x = torch.from_numpy(np.stack([c[0] for c in crops])[:, None])
        y = torch.from_numpy(np.stack([c[1] for c in crops]).astype(np.int64))
        logits = network.logits(x)
        loss = _set_loss(torch, logits, y)
        if settings.retain > 0:
            before = torch.from_numpy(np.stack([c[2] for c in crops if c[2] is not None]))
            loss = loss + settings.retain * _retain_loss(torch, logits, y, before)
        if settings.anchor > 0:
            drift = sum(((p - a) ** 2).sum() for p, a in zip(parameters, anchors, strict=True))
            loss = loss + settings.anchor * drift
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        current = float(loss.detach())
        running = current if step == 1 else 0.9 * running + 0.1 * current
        if progress is not None:
            progress(step, settings.steps, running)
    seconds = time.perf_counter() - started
    card = {
        "origin": "fine-tuned",
        "base": {"name": base_name, "sha256": hashlib.sha256(base_data).hexdigest()},
        "fields": per_field,
        "labels": counts,
        "steps": step,
        "seconds": round(seconds, 1),
        "loss": None if math.isnan(running) else round(running, 4),
        "cancelled": cancelled,
        "settings": {
            "steps": settings.steps,
            "seconds": settings.seconds,
            "batch": settings.batch,
            "patch": settings.patch,
            "learning_rate": settings.learning_rate,
            "anchor": settings.anchor,
            "retain": settings.retain,
            "seed": settings.seed,
        },
    }
    metadata = {k: v for k, v in network.metadata.items() if k != "plateseg.training"}
    metadata["plateseg.training"] = json.dumps(card)
    return FineTuned(export_onnx(network, metadata), card, cancelled)
