"""Fine-tune jobs of the web UI: one at a time per server, in a background thread.

The Models page starts a job (:meth:`FineTuneJobs.start`) with the corrected fields, then
polls its :class:`JobProgress` (phase, step of steps, loss, elapsed seconds) and may
cancel it. A job:

1. segments every corrected field, and one field she did not label, with the base model
   (*before*);
2. fine-tunes the base (:func:`plateseg.finetune.fine_tune`), reporting every step, and
   stops early when cancelled (then nothing is stored);
3. segments the same fields with the new model (*after*): object counts, outlines, and
   the agreement with her labels (:func:`plateseg.web.finetune_eval.label_agreement`);
4. stores ``models/<name>.onnx`` and its card ``models/<name>.json`` (the fine-tune's
   card, the experiment, fields, who, when and the figures above);
5. optionally validates by leaving each labelled field out: a shorter fine-tune on the
   others (half the steps and seconds), scored on the one left out; the card is updated.
   Cancelling here keeps the stored model and says the validation was cut short.

The last :data:`KEEP_JOBS` jobs stay in memory with their before/after pictures.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from plateseg.contracts import Planes
from plateseg.errors import NotFoundError, PlatesegError, TransientError
from plateseg.finetune.trainer import FineTuneSettings, LabelledField
from plateseg.store import Store
from plateseg.web.finetune_eval import count_objects, label_agreement

__all__ = ["KEEP_JOBS", "FieldData", "FineTuneJobs", "JobProgress", "JobRequest"]

#: Finished jobs kept in memory (with their pictures) for the page to read.
KEEP_JOBS = 4
#: Longest side of the before/after pictures.
PICTURE_SIDE = 640


@dataclass(frozen=True)
class FieldData:
    """One field of the job: its id, (Y, X) nuclei image and (Y, X) uint8 labels
    (all zero for the unlabelled check field)."""

    image_id: str
    image: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class JobRequest:
    """A checked fine-tune request (the router validates names, labels and the base)."""

    name: str
    experiment_id: str
    channel: str
    planes: Planes
    base: str
    base_data: bytes
    fields: Sequence[FieldData]
    check: FieldData | None
    settings: FineTuneSettings
    leave_one_out: bool
    replace: bool
    created_by: str
    use_url: str


@dataclass(frozen=True)
class JobProgress:
    """What the page polls. ``status``: running, succeeded, failed or cancelled;
    ``fraction`` 0..1 for the bar (steps or time, whichever is further)."""

    job_id: str
    name: str
    status: str = "running"
    phase: str = "starting"
    step: int = 0
    steps: int = 0
    loss: float | None = None
    fraction: float = 0.0
    fold: int = 0
    folds: int = 0
    elapsed_seconds: float = 0.0
    error: str | None = None
    result: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Job:
    progress: JobProgress
    started: float
    cancel: threading.Event = field(default_factory=threading.Event)
    pictures: dict[tuple[int, str], bytes] = field(default_factory=dict)


class FineTuneJobs:
    """The fine-tune jobs of one server: at most one running."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._lock = threading.Lock()

    def running(self) -> JobProgress | None:
        with self._lock:
            for job in self._jobs.values():
                if job.progress.status == "running":
                    return self._snapshot(job)
        return None

    def start(self, request: JobRequest) -> JobProgress:
        """Start a job in a daemon thread; :class:`TransientError` while one runs."""
        with self._lock:
            busy = [j for j in self._jobs.values() if j.progress.status == "running"]
            if busy:
                raise TransientError(
                    f"a fine-tune ({busy[0].progress.name}) is already running on this "
                    "server: wait for it or cancel it, then start again"
                )
            job_id = uuid.uuid4().hex[:12]
            job = _Job(JobProgress(job_id, request.name), time.monotonic())
            self._jobs[job_id] = job
            while len(self._jobs) > KEEP_JOBS:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest].progress.status == "running":
                    break
                self._jobs.pop(oldest)
        thread = threading.Thread(
            target=self._run, args=(job, request), name=f"finetune-{job_id}", daemon=True
        )
        thread.start()
        return self.progress(job_id)

    def _get(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no fine-tune job {job_id[:40]!r} on this server")
        return job

    def _snapshot(self, job: _Job) -> JobProgress:
        elapsed = time.monotonic() - job.started
        if job.progress.status != "running":
            elapsed = job.progress.elapsed_seconds
        return replace(job.progress, elapsed_seconds=round(elapsed, 1))

    def progress(self, job_id: str) -> JobProgress:
        with self._lock:
            return self._snapshot(self._get(job_id))

    def cancel(self, job_id: str) -> JobProgress:
        """Ask a running job to stop (a finished one is left as it is)."""
        with self._lock:
            job = self._get(job_id)
            if job.progress.status == "running":
                job.cancel.set()
                job.progress = replace(job.progress, phase="cancelling")
            return self._snapshot(job)

    def picture(self, job_id: str, index: int, which: str) -> bytes:
        with self._lock:
            found = self._get(job_id).pictures.get((index, which))
        if found is None:
            raise NotFoundError(f"job {job_id[:40]!r} has no {which} picture of field {index}")
        return found

    def _update(self, job: _Job, **changes: Any) -> None:
        with self._lock:
            job.progress = replace(job.progress, **changes)

    def _run(self, job: _Job, request: JobRequest) -> None:
        try:
            result = _work(request, job, self._update, self.store)
        except PlatesegError as exc:
            self._finish(job, "failed", error=str(exc))
        except Exception as exc:  # a bug must not leave the job "running" for ever
            self._finish(job, "failed", error=f"internal error: {type(exc).__name__}: {exc}")
        else:
            status = "cancelled" if result is None else "succeeded"
            self._finish(job, status, result=result)

    def _finish(self, job: _Job, status: str, **changes: Any) -> None:
        elapsed = round(time.monotonic() - job.started, 1)
        phase = {"succeeded": "done", "cancelled": "cancelled", "failed": "failed"}[status]
        self._update(job, status=status, phase=phase, elapsed_seconds=elapsed, **changes)


def _progress_callback(
    job: _Job, update: Callable[..., None], settings: FineTuneSettings
) -> Callable[[int, int, float], None]:
    began = time.monotonic()

    def report(step: int, steps: int, loss: float) -> None:
        by_time = (time.monotonic() - began) / max(settings.seconds, 1e-6)
        fraction = min(1.0, max(step / max(steps, 1), by_time))
        value = None if loss != loss else round(float(loss), 4)
        update(job, step=step, steps=steps, loss=value, fraction=round(fraction, 3))

    return report


def _segment(data: bytes, name: str, image: np.ndarray, diameter: float | None) -> np.ndarray:
    from plateseg.segmentation.learned import segment_learned
    from plateseg.segmentation.onnx_model import load_model_bytes

    return segment_learned(image, load_model_bytes(name, data), diameter).labels


def _work(
    request: JobRequest, job: _Job, update: Callable[..., None], store: Store
) -> dict[str, Any] | None:
    """The job's steps (module docstring); ``None`` when cancelled before storing."""
    from plateseg.finetune import fine_tune
    from plateseg.segmentation.model_store import ModelFormError, provenance_key, store_model
    from plateseg.segmentation.onnx_model import model_key
    from plateseg.web.render import overlay_png

    settings = request.settings
    shown = [*request.fields, *([request.check] if request.check is not None else [])]
    update(job, phase=f"segmenting {len(shown)} fields with {request.base}")
    before = [_segment(request.base_data, request.base, f.image, settings.diameter) for f in shown]
    update(job, phase="fine-tuning", steps=settings.steps)
    labelled = [LabelledField(f.image_id, f.image, f.labels) for f in request.fields]
    tuned = fine_tune(
        request.base_data,
        request.base,
        labelled,
        settings,
        progress=_progress_callback(job, update, settings),
        cancel=job.cancel.is_set,
    )
    if tuned.cancelled:
        return None
    update(job, phase="segmenting with the new model", fraction=1.0)
    after = [_segment(tuned.data, request.name, f.image, settings.diameter) for f in shown]
    rows = []
    for index, (item, old, new) in enumerate(zip(shown, before, after, strict=True)):
        for which, objects in (("before", old), ("after", new)):
            job.pictures[(index, which)] = overlay_png(item.image, objects, PICTURE_SIDE)
        is_labelled = index < len(request.fields)
        rows.append(
            {
                "image_id": item.image_id,
                "labelled": is_labelled,
                "before": count_objects(old),
                "after": count_objects(new),
                "agreement_before": label_agreement(item.labels, old) if is_labelled else None,
                "agreement_after": label_agreement(item.labels, new) if is_labelled else None,
            }
        )
    pooled_labels = [f.labels for f in request.fields]
    agreement = {
        "before": _pooled(pooled_labels, before[: len(request.fields)]),
        "after": _pooled(pooled_labels, after[: len(request.fields)]),
    }
    if not request.replace and store.exists(model_key(request.name)):
        raise ModelFormError({"name": f"a model named {request.name!r} was stored meanwhile"})
    card: dict[str, Any] = {
        **tuned.card,
        "experiment_id": request.experiment_id,
        "channel": request.channel,
        "planes": request.planes,
        "created_by": request.created_by,
        "check_field": request.check.image_id if request.check is not None else None,
        "evaluation": {"fields": rows, "agreement": agreement, "leave_one_out": None},
    }
    info = store_model(store, request.name, tuned.data, card, replace=True)
    result: dict[str, Any] = {
        "model": info.as_json(),
        "card": info.provenance,
        "fields": rows,
        "agreement": agreement,
        "leave_one_out": None,
        "recipe": {
            "segmenter": "onnx",
            "params": {"model": request.name},
            "channels": {"nuclei": request.channel},
            **({"planes": request.planes} if request.planes != "first" else {}),
        },
        "use_url": request.use_url,
    }
    if request.leave_one_out and len(request.fields) >= 2:
        folds = _leave_one_out(request, job, update, before)
        result["leave_one_out"] = folds
        record = {**info.provenance}
        record["evaluation"] = {**record["evaluation"], "leave_one_out": folds}
        store.put_bytes(
            provenance_key(request.name),
            json.dumps(record, indent=1).encode(),
            "application/json",
        )
        result["card"] = record
    return result


def _pooled(labels: Sequence[np.ndarray], objects: Sequence[np.ndarray]) -> float | None:
    """Label agreement over every labelled pixel of several fields."""
    total = right = 0.0
    for mask, found in zip(labels, objects, strict=True):
        figures = label_agreement(mask, found)
        pixels = int(figures["pixels"] or 0)
        if pixels and figures["all"] is not None:
            total += pixels
            right += float(figures["all"]) * pixels
    return round(right / total, 4) if total else None


def _leave_one_out(
    request: JobRequest, job: _Job, update: Callable[..., None], before: Sequence[np.ndarray]
) -> dict[str, Any]:
    """Each labelled field scored by a fine-tune on the others (half as long)."""
    from plateseg.finetune import fine_tune

    short = replace(
        request.settings,
        steps=max(1, request.settings.steps // 2),
        seconds=max(1.0, request.settings.seconds / 2),
    )
    fields = list(request.fields)
    folds: list[dict[str, Any]] = []
    for index, held in enumerate(fields):
        if job.cancel.is_set():
            break
        others = [f for f in fields if f is not held]
        update(job, phase=f"leave-one-out: {held.image_id}", fold=index + 1, folds=len(fields))
        update(job, step=0, steps=short.steps, fraction=0.0)
        try:
            tuned = fine_tune(
                request.base_data,
                request.base,
                [LabelledField(f.image_id, f.image, f.labels) for f in others],
                short,
                progress=_progress_callback(job, update, short),
                cancel=job.cancel.is_set,
            )
        except PlatesegError as exc:  # e.g. the others lack a class: say so, go on
            folds.append({"image_id": held.image_id, "skipped": str(exc)})
            continue
        if tuned.cancelled:
            break
        found = _segment(tuned.data, f"{request.name}-fold", held.image, short.diameter)
        folds.append(
            {
                "image_id": held.image_id,
                "before": label_agreement(held.labels, before[index])["all"],
                "after": label_agreement(held.labels, found)["all"],
            }
        )
    scored = [f for f in folds if "after" in f]
    return {
        "folds": folds,
        "steps": short.steps,
        "seconds": short.seconds,
        "before": _mean([f["before"] for f in scored]),
        "after": _mean([f["after"] for f in scored]),
        "cancelled": len(folds) < len(fields),
    }


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(float(np.mean(kept)), 4) if kept else None
