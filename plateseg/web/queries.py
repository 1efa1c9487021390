"""Reads of the store the web app needs that :mod:`plateseg.results` does not offer.

Experiments as they are in the store (before or without any run) and their manifests,
cached briefly. Everything recorded by a run (metrics, heatmaps, plate QC, layout
annotations) is read through :mod:`plateseg.results` and :mod:`plateseg.plate.layout`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from plateseg.contracts import ManifestItem, validate_experiment_id
from plateseg.errors import NotFoundError
from plateseg.plate.channels import natural_order
from plateseg.plate.manifest import NO_IMAGE_FILES, NamingChoice, build_manifest, choose_naming
from plateseg.store import Store
from plateseg.store.keys import EXPERIMENTS_PREFIX, experiment_prefix

__all__ = [
    "ExperimentSummary",
    "ManifestCache",
    "experiment_ids",
    "summarise",
]


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
    naming: str = ""
    naming_reason: str = ""


@dataclass
class _Entry:
    at: float
    items: list[ManifestItem] = field(default_factory=list)
    naming: NamingChoice | None = None


class ManifestCache:
    """The manifest of each experiment, rebuilt from a store listing at most every ``ttl`` s."""

    def __init__(self, store: Store, ttl: float = 30.0) -> None:
        self.store = store
        self.ttl = ttl
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def describe(self, experiment_id: str) -> tuple[list[ManifestItem], NamingChoice]:
        """Fields of view of an experiment (maybe none) and the naming they were read
        with: the one Lookup will detect (:func:`plateseg.plate.manifest.choose_naming`)."""
        validate_experiment_id(experiment_id)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(experiment_id)
            if entry is not None and now - entry.at < self.ttl and entry.naming is not None:
                return entry.items, entry.naming
        keys = [info.key for info in self.store.list(experiment_prefix(experiment_id))]
        naming = choose_naming(keys, experiment_id, None)
        # with every plane (ManifestItem.planes): a recipe may project them; readers of
        # one channel key (thumbnails) use the first plane as Lookup does, the Models
        # page the planes it is asked for (plateseg.imaging.field.read_channel)
        items, _report = build_manifest(keys, experiment_id, naming.pattern, project=True)
        with self._lock:
            self._entries[experiment_id] = _Entry(now, items, naming)
        return items, naming

    def items(self, experiment_id: str) -> list[ManifestItem]:
        """Fields of view of an experiment; :class:`NotFoundError` when it has no images."""
        items, naming = self.describe(experiment_id)
        if not items:
            # files it cannot read: say how each preset read them
            why = f" ({naming.reason})" if naming.reason != NO_IMAGE_FILES else ""
            raise NotFoundError(f"experiment {experiment_id!r} has no images in the store{why}")
        return items

    def item(self, experiment_id: str, image_id: str) -> ManifestItem:
        """One field of view by image id (``P1_B03_1``)."""
        for item in self.items(experiment_id):
            if item.image_id == image_id:
                return item
        raise NotFoundError(f"experiment {experiment_id!r} has no field {image_id!r}")

    def channel_item(self, experiment_id: str, image_id: str, channel: str) -> ManifestItem:
        """One field of view that has ``channel``; :class:`NotFoundError` naming what lacks."""
        item = self.item(experiment_id, image_id)
        if channel not in item.channels:
            raise NotFoundError(f"field {image_id!r} has no channel {channel!r}")
        return item

    def channel_key(self, experiment_id: str, image_id: str, channel: str) -> str:
        """Store key of one channel of one field; :class:`NotFoundError` naming what lacks."""
        return self.channel_item(experiment_id, image_id, channel).channels[channel]


def experiment_ids(store: Store) -> list[str]:
    """Ids of the experiments with at least one object under ``experiments/``."""
    ids: set[str] = set()
    for info in store.list(EXPERIMENTS_PREFIX):
        parts = info.key.split("/")
        if len(parts) > 2 and parts[1]:
            ids.add(parts[1])
    return sorted(ids)


def summarise(
    experiment_id: str, items: list[ManifestItem], naming: NamingChoice | None = None
) -> ExperimentSummary:
    """Plate, well, field and channel counts of a manifest, and how its names were read."""
    channels = natural_order(c for item in items for c in item.channels)
    return ExperimentSummary(
        experiment_id=experiment_id,
        plates=len({item.plate for item in items}),
        wells=len({(item.plate, item.well) for item in items}),
        fields=len(items),
        channels=channels,
        in_store=True,
        naming=naming.name if naming is not None else "",
        naming_reason=naming.reason if naming is not None else "",
    )
