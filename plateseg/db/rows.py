"""Row types of the read API (:mod:`plateseg.results`): runs, wells, images, failures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

__all__ = ["FailureRow", "ImageRow", "RunInfo", "WellRow", "run_info"]


def _utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything is stored in UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class RunInfo:
    """One recorded run (a ``runs`` row, with the recipe parsed back into a dict)."""

    run_id: str
    experiment_id: str
    execution_id: str
    engine: str
    status: str
    recipe: dict[str, Any]
    recipe_hash: str
    map_run_arn: str
    result_manifest_key: str
    objects_prefix: str
    started_at: datetime | None
    finished_at: datetime
    images_ok: int
    images_failed: int
    batches_failed: int
    objects: int
    model_hash: str | None = None
    parameters: dict[str, Any] = dataclass_field(default_factory=dict)
    max_concurrency: int | None = None
    batch_size: int | None = None
    items_total: int | None = None
    batches: int | None = None
    cost_estimate_usd: float | None = None
    object_parts: tuple[str, ...] | None = None
    layout_csv: str | None = None


@dataclass(frozen=True)
class WellRow:
    """One well of a run.

    Attributes
    ----------
    n_fields : int
        Fields of view segmented successfully.
    n_objects : int
        Nuclei counted over those fields.
    mean_area : float or None
        Mean over the OK fields of each field's mean nuclear area (pixels), or
        ``None`` when the recipe did not measure it or no field has nuclei.
    n_failed : int
        Fields that failed (per-image errors and failed batches).
    """

    plate: str
    well: str
    n_fields: int
    n_objects: int
    mean_area: float | None
    n_failed: int


@dataclass(frozen=True)
class ImageRow:
    """One field of view of a run, with its metrics (``{name: value}``)."""

    image_id: str
    plate: str
    well: str
    field: int
    status: str
    object_count: int
    mask_key: str | None
    error: str | None
    cause: str | None
    metrics: dict[str, float | None] = dataclass_field(default_factory=dict)
    qc_flags: str = ""
    channels: dict[str, str] = dataclass_field(default_factory=dict)


@dataclass(frozen=True)
class FailureRow:
    """One failed image (``kind="image"``) or image of a failed batch (``kind="batch"``)."""

    item_id: str
    kind: str
    batch: str | None
    error: str
    cause: str
    attempts: int | None


def run_info(row: sa.Row[Any]) -> RunInfo:
    values = row._asdict()
    recipe = json.loads(values.pop("recipe_json"))
    parameters = json.loads(values.pop("parameters_json", None) or "{}")
    parts = values.pop("object_parts_json", None)
    object_parts = tuple(json.loads(parts)) if parts is not None else None
    finished = _utc(values.pop("finished_at"))
    started = _utc(values.pop("started_at"))
    assert finished is not None  # NOT NULL column
    return RunInfo(
        **values,
        recipe=recipe,
        parameters=parameters,
        object_parts=object_parts,
        started_at=started,
        finished_at=finished,
    )
