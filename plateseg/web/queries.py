"""Reads the web app needs that the library does not offer (yet).

* experiments in the store, their manifest (cached briefly) and plate map;
* per-well metric grids, the list of metrics of a run, and plate Z' from controls.

``well_metric_grid``, ``run_metrics`` and ``plate_z_prime`` are meant to move to
:mod:`plateseg.results` once the database issue provides them.
"""

from __future__ import annotations

import csv
import io
import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from plateseg.contracts import ManifestItem, validate_experiment_id
from plateseg.db.engine import translate_errors
from plateseg.db.models import Image, WellMetric
from plateseg.errors import NotFoundError, ObjectNotFoundError
from plateseg.metadata import build_manifest
from plateseg.store import Store

__all__ = [
    "ExperimentSummary",
    "ManifestCache",
    "experiment_ids",
    "plate_z_prime",
    "read_layout",
    "run_metrics",
    "well_metric_grid",
]

COUNT_METRIC = "object_count"


@dataclass(frozen=True)
class ExperimentSummary:
    """An experiment as the list page shows it."""

    experiment_id: str
    plates: int
    wells: int
    fields: int
    channels: list[str]
    in_store: bool
    runs: int = 0
    latest_run: str | None = None
    latest_status: str | None = None


@dataclass
class _Entry:
    at: float
    items: list[ManifestItem] = field(default_factory=list)


class ManifestCache:
    """The manifest of each experiment, rebuilt from a store listing at most every ``ttl`` s."""

    def __init__(self, store: Store, ttl: float = 30.0) -> None:
        self.store = store
        self.ttl = ttl
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def items(self, experiment_id: str) -> list[ManifestItem]:
        """Fields of view of an experiment; :class:`NotFoundError` when it has no images."""
        validate_experiment_id(experiment_id)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(experiment_id)
            if entry is not None and now - entry.at < self.ttl:
                return entry.items
        keys = [info.key for info in self.store.list(f"experiments/{experiment_id}/")]
        items, _report = build_manifest(keys, experiment_id)
        if not items:
            raise NotFoundError(f"experiment {experiment_id!r} has no images in the store")
        with self._lock:
            self._entries[experiment_id] = _Entry(now, items)
        return items

    def item(self, experiment_id: str, image_id: str) -> ManifestItem:
        """One field of view by image id (``P1_B03_1``)."""
        for item in self.items(experiment_id):
            if item.image_id == image_id:
                return item
        raise NotFoundError(f"experiment {experiment_id!r} has no field {image_id!r}")


def experiment_ids(store: Store) -> list[str]:
    """Ids of the experiments with at least one object under ``experiments/``."""
    ids: set[str] = set()
    for info in store.list("experiments/"):
        parts = info.key.split("/")
        if len(parts) > 2 and parts[1]:
            ids.add(parts[1])
    return sorted(ids)


def summarise(experiment_id: str, items: list[ManifestItem]) -> ExperimentSummary:
    """Plate, well, field and channel counts of a manifest."""
    channels = sorted({c for item in items for c in item.channels})
    return ExperimentSummary(
        experiment_id=experiment_id,
        plates=len({item.plate for item in items}),
        wells=len({(item.plate, item.well) for item in items}),
        fields=len(items),
        channels=channels,
        in_store=True,
    )


def read_layout(store: Store, experiment_id: str) -> dict[str, dict[str, str]]:
    """``experiments/<id>/layout.csv`` as ``{well: {column: value}}`` (empty if absent)."""
    try:
        data = store.get_bytes(f"experiments/{experiment_id}/layout.csv")
    except ObjectNotFoundError:
        return {}
    text = data[: 4 * 1024 * 1024].decode("utf-8", errors="replace")
    layout: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        well = (row.get("well") or "").strip().upper()
        if well:
            layout[well] = {k: (v or "").strip() for k, v in row.items() if k and k != "well"}
    return layout


def run_metrics(engine: sa.Engine, run_id: str) -> list[str]:
    """Per-well metrics recorded for a run, plus ``object_count`` first."""
    table = WellMetric.__table__.c
    stmt = sa.select(table.metric).where(table.run_id == run_id).distinct().order_by(table.metric)
    with translate_errors(engine), engine.connect() as connection:
        names = [row[0] for row in connection.execute(stmt)]
    return [COUNT_METRIC, *names]


def well_metric_grid(
    engine: sa.Engine, run_id: str, metric: str
) -> dict[tuple[str, str], float | None]:
    """``{(plate, well): value}`` of one metric (``object_count``: nuclei per OK field)."""
    if metric == COUNT_METRIC:
        images = Image.__table__.c
        ok = images.status == "ok"
        stmt: sa.Select[Any] = (
            sa.select(
                images.plate,
                images.well,
                sa.func.sum(sa.case((ok, images.object_count), else_=0)),
                sa.func.sum(sa.case((ok, 1), else_=0)),
            )
            .where(images.run_id == run_id)
            .group_by(images.plate, images.well)
        )
        with translate_errors(engine), engine.connect() as connection:
            return {
                (plate, well): (float(total) / n if n else None)
                for plate, well, total, n in connection.execute(stmt)
            }
    wells = WellMetric.__table__.c
    stmt = sa.select(wells.plate, wells.well, wells.mean).where(
        wells.run_id == run_id, wells.metric == metric
    )
    with translate_errors(engine), engine.connect() as connection:
        grid: dict[tuple[str, str], float | None] = {
            (str(row[0]), str(row[1])): row[2] for row in connection.execute(stmt)
        }
    if not grid:
        raise NotFoundError(f"run {run_id!r} has no well metric {metric!r}")
    return grid


def plate_z_prime(
    grid: dict[tuple[str, str], float | None], layout: dict[str, dict[str, str]]
) -> dict[str, float | None]:
    """Z' per plate from wells whose layout ``control`` is ``pos`` / ``neg``.

    Z' = 1 - 3 (sd_pos + sd_neg) / |mean_pos - mean_neg| (Zhang et al. 1999); ``None`` when a
    plate lacks two wells of each control or the means coincide.
    """
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"pos": [], "neg": []})
    for (plate, well), value in grid.items():
        control = layout.get(well, {}).get("control", "").lower()
        if control in ("pos", "neg") and value is not None and math.isfinite(value):
            groups[plate][control].append(value)
    result: dict[str, float | None] = {}
    for plate, values in groups.items():
        pos, neg = values["pos"], values["neg"]
        if len(pos) < 2 or len(neg) < 2:
            result[plate] = None
            continue
        mp, mn = sum(pos) / len(pos), sum(neg) / len(neg)
        sp = math.sqrt(sum((v - mp) ** 2 for v in pos) / (len(pos) - 1))
        sn = math.sqrt(sum((v - mn) ** 2 for v in neg) / (len(neg) - 1))
        result[plate] = None if mp == mn else 1.0 - 3.0 * (sp + sn) / abs(mp - mn)
    return result
