"""Experiments: the list (store + database), one experiment's plate, field thumbnails."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

import plateseg.web.pictures as pictures
from plateseg import results
from plateseg.errors import InputError
from plateseg.plate.layout import (
    PLATE_FORMATS,
    PlateLayout,
    WellLayout,
    plate_format_for,
    read_layout,
    split_well,
)
from plateseg.runs.progress import RunProgress
from plateseg.web.deps import AppStateDep, ExperimentId, ImageId
from plateseg.web.queries import ExperimentSummary, experiment_ids, summarise
from plateseg.web.state import AppState

router = APIRouter(prefix="/api/experiments", tags=["experiments"])


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
        "started_by": run.parameters.get("started_by"),
    }


def unrecorded_summary(progress: RunProgress) -> dict[str, Any]:
    """A run this server followed that wrote no results (cancelled, failed before
    Aggregate, queued or still running), for the experiment's runs table."""
    return {
        "run_id": progress.run_id,
        "status": "CANCELLED" if progress.status == "ABORTED" else progress.status,
        "succeeded": progress.succeeded,
        "failed": progress.failed,
        "total": progress.total,
        "finished_at": progress.finished_at.isoformat() if progress.finished_at else None,
    }


def list_experiments(state: AppState) -> list[ExperimentSummary]:
    """Experiments in the store, plus those only the database knows, with run counts.

    Store experiments are counted from their images; experiments only recorded in the
    database (images since removed) show the database's counts of their latest run.
    """
    recorded = {e.experiment_id: e for e in results.list_experiments(state.engine)}
    status = {run.run_id: run.status for run in results.list_runs(state.engine)}
    found: dict[str, ExperimentSummary] = {}
    for experiment_id in experiment_ids(state.store):
        try:  # an experiment whose names no preset reads is listed with the reason
            items, naming = state.manifests.describe(experiment_id)
        except Exception:  # an unreadable experiment is left out of the list, not fatal
            continue
        found[experiment_id] = summarise(experiment_id, items, naming)
    for experiment_id, db in recorded.items():
        found.setdefault(
            experiment_id,
            ExperimentSummary(
                experiment_id, db.n_plates, db.n_wells, db.n_fields, [], in_store=False
            ),
        )
    summaries = []
    for experiment_id in sorted(found):
        summary = found[experiment_id]
        info = recorded.get(experiment_id)
        if info is not None and info.n_runs:
            latest = info.latest_run_id
            summary = ExperimentSummary(
                **{
                    **asdict(summary),
                    "runs": info.n_runs,
                    "latest_run": latest,
                    "latest_status": status.get(latest) if latest else None,
                }
            )
        summaries.append(summary)
    return summaries


def plate_format(wells: set[str]) -> tuple[int, int]:
    """(rows, columns) of the smallest standard plate holding ``wells``: 96, 384 or 1536.

    The rule aggregation applies when it records a plate
    (:func:`plateseg.plate.layout.plate_format_for`).
    """
    return PLATE_FORMATS[plate_format_for([split_well(well) for well in wells])]


def _annotations(entry: WellLayout | None) -> dict[str, str]:
    """A well's layout annotations as display strings (``{}`` when the layout lacks it)."""
    if entry is None:
        return {}
    concentration = "" if entry.concentration is None else f"{entry.concentration:g}"
    return {
        "condition": entry.condition,
        "compound": entry.compound,
        "concentration": concentration,
        "control": entry.control,
    }


def experiment_detail(state: AppState, experiment_id: str) -> dict[str, Any]:
    """Summary, plate maps (fields per well + layout annotations) and runs of one experiment.

    An invalid ``layout.csv`` does not hide the plate: its error is in ``layout_error``
    (aggregation would refuse it with the same message).
    """
    items = state.manifests.items(experiment_id)
    _, naming = state.manifests.describe(experiment_id)
    layout_error = None
    try:
        layout = read_layout(state.store, experiment_id) or PlateLayout(wells=())
    except InputError as error:
        layout, layout_error = PlateLayout(wells=()), str(error)
    plates: dict[str, dict[str, Any]] = {}
    for item in items:
        plate = plates.setdefault(item.plate, {"plate": item.plate, "wells": {}})
        well = plate["wells"].setdefault(
            item.well,
            {
                "well": item.well,
                "fields": [],
                "layout": _annotations(layout.lookup(item.plate, item.well)),
            },
        )
        well["fields"].append(
            {"image_id": item.image_id, "field": item.field, "channels": sorted(item.channels)}
        )
    for plate in plates.values():
        listed = {e.well for e in layout.wells if e.plate in (None, plate["plate"])}
        plate["rows"], plate["columns"] = plate_format(set(plate["wells"]) | listed)
    annotated = [_annotations(entry) for entry in layout.wells]
    runs = [run_summary(run) for run in results.list_runs(state.engine, experiment_id)]
    recorded = {run["run_id"] for run in runs}
    unrecorded = [
        unrecorded_summary(progress)
        for progress in state.backend.followed()
        if progress.experiment_id == experiment_id and progress.run_id not in recorded
    ]
    return {
        **asdict(summarise(experiment_id, items, naming)),
        "plate_maps": list(plates.values()),
        "layout_columns": sorted({k for notes in annotated for k, v in notes.items() if v}),
        "layout_error": layout_error,
        "runs": runs,
        "unrecorded_runs": unrecorded,
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
    key = state.manifests.channel_key(experiment_id, image_id, channel)
    return Response(
        pictures.field_thumbnail(state.pictures, state.store, key, state.settings.max_image_pixels),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=300"},
    )
