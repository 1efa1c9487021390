"""Results of a run: heatmap per metric with Z', images, failures, overlays, downloads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from plateseg.errors import NotFoundError, ObjectNotFoundError
from plateseg.imaging import read_image
from plateseg.map_settings import RUN_SETTINGS_FIELDS
from plateseg.results import (
    RunInfo,
    export_run,
    get_run,
    image_table,
    plate_qc,
    run_failures,
    run_metrics,
    well_metric_grid,
    well_metric_stats,
    well_table,
)
from plateseg.results.heatmap import PERCENTILES, field_cv, robust_range
from plateseg.store import keys
from plateseg.web.deps import AppStateDep, ImageId, RunId
from plateseg.web.pictures import Source, field_overlay, field_thumbnail, read_source
from plateseg.web.render import STRETCH_PERCENTILES, check_percentiles, object_tips
from plateseg.web.state import AppState

router = APIRouter(prefix="/api/runs/{run_id}", tags=["results"])

Metric = Annotated[str, Query(max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
Channel = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Low = Annotated[
    float,
    Query(
        ge=0,
        le=100,
        description="the percentile of the channel drawn black (display range; 0 to 100)",
    ),
]
High = Annotated[
    float,
    Query(
        ge=0,
        le=100,
        description="the percentile drawn white, at least 0.1 above low (display range)",
    ),
]


#: Nuclei per field of view: the well mean of the per-image count, the heatmap's default.
NUCLEI_METRIC = "Count_Nuclei"


def _run(state: AppState, run_id: str) -> RunInfo:
    return get_run(state.engine, run_id)


@router.get("/details")
def details(state: AppStateDep, run_id: RunId) -> dict[str, Any]:
    """What the run was: segmenter, parameters, model (name, pinned SHA-256, its card when
    the store has one), channels, file naming, Map settings, engine, who started it, the
    plateseg version, times and counts (``None`` where a run recorded none)."""
    from plateseg.segmentation.model_store import provenance_key

    run = _run(state, run_id)
    params = dict(run.recipe.get("params") or {})
    sha256 = params.pop("model_sha256", None) or run.model_hash
    name = params.pop("model", None) if sha256 else params.get("model")
    model = None
    if sha256 and isinstance(name, str):
        card = f"/api/finetune/cards/{name}"
        has_card = state.store.exists(provenance_key(name))
        model = {"name": name, "sha256": sha256, "card": card if has_card else None}
    return {
        "run_id": run.run_id,
        "experiment_id": run.experiment_id,
        "segmenter": run.recipe.get("segmenter"),
        "params": params,
        "channels": run.recipe.get("channels") or {},
        "secondary": run.recipe.get("secondary") is not None,
        "planes": run.recipe.get("planes") or "first",
        "model": model,
        "engine": run.engine,
        "recipe_hash": run.recipe_hash,
        "naming": run.parameters.get("naming"),
        "naming_detected": run.parameters.get("naming_detected"),
        "started_by": run.parameters.get("started_by"),
        "code_version": run.parameters.get("code_version"),
        "map_settings": {k: run.parameters[k] for k in RUN_SETTINGS_FIELDS if k in run.parameters},
        "batch_size": run.batch_size,
        "max_concurrency": run.max_concurrency,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat(),
        "images_ok": run.images_ok,
        "images_failed": run.images_failed,
        "objects": run.objects,
        "cost_estimate_usd": run.cost_estimate_usd,
    }


@router.get("/metrics")
def metrics(state: AppStateDep, run_id: RunId) -> list[str]:
    """Metrics recorded per well, as stored; ``Count_Nuclei`` (nuclei per field) first."""
    return sorted(run_metrics(state.engine, run_id), key=lambda name: name != NUCLEI_METRIC)


Stat = Literal["mean", "cv"]


def _range(values: list[float]) -> dict[str, float | None]:
    robust = robust_range(values)
    return {
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "low": robust[0] if robust else None,
        "high": robust[1] if robust else None,
    }


@router.get("/heatmap")
def heatmap(
    state: AppStateDep, run_id: RunId, metric: Metric = NUCLEI_METRIC, stat: Stat = "mean"
) -> dict[str, Any]:
    """Per-well values of one metric, their ranges, layout annotations and Z' per plate.

    ``stat=mean`` (default): each well's mean over its fields; ``stat=cv``: the spread
    across the well's fields, the coefficient of variation in percent (sample SD over
    the mean, :func:`plateseg.results.heatmap.field_cv`; no value with fewer than two fields).
    ``min``/``max`` span every value; ``low``/``high`` are the 2nd and 98th percentiles
    (the robust colour range), over the run and in ``plates`` per plate.

    Everything comes from the results database: the well means and layout annotations
    recorded at aggregation (:func:`plateseg.results.well_metric_grid`), the fields' SDs
    and the stored plate QC (:func:`plateseg.results.plate_qc`). Only wells imaged in the
    run are listed.
    """
    run = _run(state, run_id)
    grid = well_metric_grid(state.engine, run.experiment_id, metric, run_id)
    failed = {
        (w.plate, w.well): w.n_failed for w in well_table(state.engine, run.experiment_id, run_id)
    }
    spread = {
        (s.plate, s.well): field_cv(s.mean, s.std, s.n_fields)
        for s in well_metric_stats(state.engine, run_id, metric)
    }
    wells: list[dict[str, Any]] = []
    values: list[float] = []
    per_plate: dict[str, list[float]] = {}
    for plate in grid.plates:
        for r, letter in enumerate(plate.rows):
            for c, column in enumerate(plate.columns):
                name = f"{letter}{column:02d}"
                if (plate.plate, name) not in failed:
                    continue
                mean = plate.values[r][c]
                cv = spread.get((plate.plate, name))
                value = cv if stat == "cv" else mean
                if value is not None:
                    values.append(value)
                    per_plate.setdefault(plate.plate, []).append(value)
                wells.append(
                    {
                        "plate": plate.plate,
                        "well": name,
                        "value": value,
                        "mean": mean,
                        "cv": cv,
                        "n_fields": plate.n_fields[r][c],
                        "failed": failed[(plate.plate, name)],
                        "layout": {
                            "condition": plate.condition[r][c],
                            "control": plate.control[r][c],
                        },
                    }
                )
    wells.sort(key=lambda w: (w["plate"], w["well"]))
    return {
        "run_id": run_id,
        "metric": metric,
        "stat": stat,
        **_range(values),
        "percentiles": list(PERCENTILES),
        "plates": {name: _range(v) for name, v in sorted(per_plate.items())},
        "rows": max((len(p.rows) for p in grid.plates), default=8),
        "columns": max((len(p.columns) for p in grid.plates), default=12),
        "z_prime": {row.plate: row.z_prime for row in plate_qc(state.engine, run_id, metric)},
        "wells": wells,
    }


def _image_rows(state: AppState, run_id: str) -> list[dict[str, Any]]:
    return [
        {
            "image_id": row.image_id,
            "plate": row.plate,
            "well": row.well,
            "field": row.field,
            "status": row.status,
            "object_count": row.object_count,
            "error": row.error,
            "cause": row.cause,
            "metrics": row.metrics,
        }
        for row in image_table(state.engine, run_id)
    ]


@router.get("/images")
def images(state: AppStateDep, run_id: RunId) -> list[dict[str, Any]]:
    """Every field of the run with status, object count and per-image metrics."""
    return _image_rows(state, run_id)


@router.get("/failures")
def failures(state: AppStateDep, run_id: RunId) -> list[dict[str, Any]]:
    """Failed images (and images of failed batches) with error and cause."""
    return [
        {
            "item_id": f.item_id,
            "kind": f.kind,
            "batch": f.batch,
            "error": f.error,
            "cause": f.cause,
            "attempts": f.attempts,
        }
        for f in run_failures(state.engine, run_id)
    ]


def _field_keys(
    state: AppState, run_id: str, image_id: str, channel: str | None
) -> tuple[Source, tuple[str, bytes]]:
    """The source of one channel of a run's field (the recipe's nuclei channel by
    default): its key, or its plane keys when the run projected planes; and its label
    mask's key and bytes."""
    run = _run(state, run_id)
    item = state.manifests.item(run.experiment_id, image_id)
    channel = channel or run.recipe.get("channels", {}).get("nuclei") or next(iter(item.channels))
    if channel not in item.channels:
        raise NotFoundError(f"field {image_id!r} has no channel {channel!r}")
    # a projecting run's source is a tuple, even of one file (which may hold a Z-stack)
    projected = run.recipe.get("planes") == "max"
    key: Source = tuple(item.plane_keys(channel)) if projected else item.channels[channel]
    mask_key = keys.mask_key(run_id, image_id)
    try:
        mask = state.store.get_bytes(mask_key)
    except ObjectNotFoundError:
        raise NotFoundError(f"run {run_id!r} has no mask for {image_id!r} (it failed?)") from None
    return key, (mask_key, mask)


def _field(state: AppState, run_id: str, image_id: str, channel: str | None) -> tuple[Any, Any]:
    """(image plane, label mask) of one field of a run; the recipe's nuclei channel by default."""
    key, (mask_key, mask) = _field_keys(state, run_id, image_id, channel)
    labels = read_image(mask, mask_key)
    return read_source(state.store, key, state.settings.max_image_pixels), labels


@router.get(
    "/images/{image_id}/overlay.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def overlay(
    state: AppStateDep,
    run_id: RunId,
    image_id: ImageId,
    channel: Channel = None,
    outlines: bool = True,
    low: Low = STRETCH_PERCENTILES[0],
    high: High = STRETCH_PERCENTILES[1],
) -> Response:
    """The field with every object's outline in yellow (PNG, at most 1024 px), drawn from
    the run's label mask and the source image, and cached (:mod:`plateseg.web.pictures`).

    ``outlines=false``: the same channel, contrast-stretched, without outlines (the
    viewer's outlines toggle); a field without a mask is still refused. ``low`` and
    ``high``: the display range, the percentiles of the channel drawn black and white
    (0.5 and 99.8 by default; the viewer's per-channel contrast); 422 unless
    0 ≤ low < high ≤ 100 with high at least 0.1 above low.
    """
    percentiles = check_percentiles(low, high)
    key, mask = _field_keys(state, run_id, image_id, channel)
    limit = state.settings.max_image_pixels
    if outlines:
        png = field_overlay(state.pictures, state.store, key, mask, limit, percentiles=percentiles)
    else:
        png = field_thumbnail(
            state.pictures, state.store, key, limit, max_side=1024, percentiles=percentiles
        )
    return Response(png, media_type="image/png")


@router.get("/images/{image_id}/objects")
def objects(
    state: AppStateDep, run_id: RunId, image_id: ImageId, channel: Channel = None
) -> dict[str, Any]:
    """Per-object bounding box, centroid, area and mean intensity, for hover tooltips."""
    image, labels = _field(state, run_id, image_id, channel)
    return {
        "height": int(labels.shape[0]),
        "width": int(labels.shape[1]),
        "objects": object_tips(labels, image),
    }


def _download(
    state: AppState,
    run_id: str,
    name: str,
    level: Literal["images", "wells", "objects"],
    fmt: Literal["csv", "parquet"],
) -> Response:
    """A table of :func:`plateseg.results.export_run` as an attachment (one code path with
    ``plateseg results --export``)."""
    store = state.store if level == "objects" else None
    data = export_run(state.engine, run_id, fmt, level=level, store=store)
    media = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{run_id}-{name}"'},
    )


_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}
_PARQUET: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/vnd.apache.parquet": {}}}
}


@router.get("/images.csv", response_class=Response, responses=_CSV)
def images_csv(state: AppStateDep, run_id: RunId) -> Response:
    """Per-image table as CSV: status, error and cause, layout, one column per metric."""
    return _download(state, run_id, "images.csv", "images", "csv")


@router.get("/wells.csv", response_class=Response, responses=_CSV)
def wells_csv(state: AppStateDep, run_id: RunId) -> Response:
    """Per-well table as CSV: layout, fields, nuclei, failures, well means of every metric."""
    return _download(state, run_id, "wells.csv", "wells", "csv")


@router.get("/images.parquet", response_class=Response, responses=_PARQUET)
def images_parquet(state: AppStateDep, run_id: RunId) -> Response:
    """Per-image table as Parquet (same columns as ``images.csv``)."""
    return _download(state, run_id, "images.parquet", "images", "parquet")


@router.get("/objects.parquet", response_class=Response, responses=_PARQUET)
def objects_parquet(state: AppStateDep, run_id: RunId) -> Response:
    """Every segmented object (CellProfiler-style measurements) with the well's layout."""
    return _download(state, run_id, "objects.parquet", "objects", "parquet")
