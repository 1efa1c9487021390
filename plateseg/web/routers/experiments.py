"""Experiments: the list (store + database), one experiment's plate, field thumbnails."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from plateseg.errors import NotFoundError
from plateseg.imaging import read_image
from plateseg.web.deps import AppStateDep, ExperimentId, ImageId
from plateseg.web.queries import ExperimentSummary, experiment_ids, read_layout, summarise
from plateseg.web.render import thumbnail_png
from plateseg.web.state import AppState

router = APIRouter(prefix="/api/experiments", tags=["experiments"])

_WELL = re.compile(r"^([A-Z]{1,2})(\d{1,3})$")


def run_summary(run: Any) -> dict[str, Any]:
    """A recorded run as JSON (:class:`plateseg.results.RunInfo`)."""
    return {
        "run_id": run.run_id,
        "experiment_id": run.experiment_id,
        "status": run.status,
        "engine": run.engine,
        "images_ok": run.images_ok,
        "images_failed": run.images_failed,
        "objects": run.objects,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat(),
        "recipe": run.recipe,
    }


def list_experiments(state: AppState) -> list[ExperimentSummary]:
    """Experiments in the store, plus those only the database knows, with run counts."""
    from plateseg.results import list_runs

    runs_by: dict[str, list[Any]] = {}
    for run in list_runs(state.engine):
        runs_by.setdefault(run.experiment_id, []).append(run)
    found: dict[str, ExperimentSummary] = {}
    for experiment_id in experiment_ids(state.store):
        try:
            items = state.manifests.items(experiment_id)
        except (NotFoundError, Exception):
            continue
        found[experiment_id] = summarise(experiment_id, items)
    for experiment_id in runs_by:
        found.setdefault(
            experiment_id, ExperimentSummary(experiment_id, 0, 0, 0, [], in_store=False)
        )
    result = []
    for experiment_id in sorted(found):
        summary = found[experiment_id]
        runs = runs_by.get(experiment_id, [])
        if runs:
            summary = ExperimentSummary(
                **{
                    **asdict(summary),
                    "runs": len(runs),
                    "latest_run": runs[0].run_id,
                    "latest_status": runs[0].status,
                }
            )
        result.append(summary)
    return result


def plate_format(wells: set[str]) -> tuple[int, int]:
    """(rows, columns) of the smallest standard plate holding ``wells``: 96, 384 or 1536."""
    rows = cols = 0
    for well in wells:
        match = _WELL.match(well)
        if match:
            letters = match.group(1)
            row = (ord(letters[-1]) - 64) + (26 if len(letters) == 2 else 0)
            rows, cols = max(rows, row), max(cols, int(match.group(2)))
    for shape in ((8, 12), (16, 24), (32, 48)):
        if rows <= shape[0] and cols <= shape[1]:
            return shape
    return (max(rows, 1), max(cols, 1))


def experiment_detail(state: AppState, experiment_id: str) -> dict[str, Any]:
    """Summary, plate maps (fields per well + layout annotations) and runs of one experiment."""
    from plateseg.results import list_runs

    items = state.manifests.items(experiment_id)
    layout = read_layout(state.store, experiment_id)
    plates: dict[str, dict[str, Any]] = {}
    for item in items:
        plate = plates.setdefault(item.plate, {"plate": item.plate, "wells": {}})
        well = plate["wells"].setdefault(
            item.well, {"well": item.well, "fields": [], "layout": layout.get(item.well, {})}
        )
        well["fields"].append(
            {"image_id": item.image_id, "field": item.field, "channels": sorted(item.channels)}
        )
    for plate in plates.values():
        plate["rows"], plate["columns"] = plate_format(set(plate["wells"]))
    runs = [run_summary(run) for run in list_runs(state.engine, experiment_id)]
    return {
        **asdict(summarise(experiment_id, items)),
        "plate_maps": list(plates.values()),
        "layout_columns": sorted({k for row in layout.values() for k in row}),
        "runs": runs,
    }


@router.get("")
def get_experiments(state: AppStateDep) -> list[dict[str, Any]]:
    """Every experiment with plate/well/field/channel counts and its latest run."""
    return [asdict(summary) for summary in list_experiments(state)]


@router.get("/{experiment_id}")
def get_experiment(state: AppStateDep, experiment_id: ExperimentId) -> dict[str, Any]:
    """One experiment: counts, plate maps with layout annotations, recorded runs."""
    return experiment_detail(state, experiment_id)


@router.get(
    "/{experiment_id}/fields/{image_id}/{channel}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def field_thumbnail(
    state: AppStateDep,
    experiment_id: ExperimentId,
    image_id: ImageId,
    channel: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")],
) -> Response:
    """A contrast-stretched PNG thumbnail (≤ 256 px) of one channel of one field."""
    item = state.manifests.item(experiment_id, image_id)
    key = item.channels.get(channel)
    if key is None:
        raise NotFoundError(f"field {image_id!r} has no channel {channel!r}")
    image = read_image(state.store.get_bytes(key), key, state.settings.max_image_pixels)
    return Response(
        thumbnail_png(image),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=300"},
    )
