"""An experiment's plate layout: upload it in any accepted format, read it, fix a role.

``POST /api/experiments/{id}/layout`` takes a native ``layout.csv``, a CellProfiler
metadata CSV or a plate-map grid sheet (:func:`plateseg.plate.layout.parse_any_layout`),
validates it and stores it as the experiment's layout in the native format
(:func:`plateseg.store.keys.layout_key`), answering the mapping report. ``GET`` answers
the stored layout and its report; ``PATCH …/wells/{well}`` sets one well's control role,
on one plate or on every plate, and rewrites the stored layout. A layout is invalid as a
whole: a 422 lists every problem (``problems``), each naming the file, the line and the
column or cell.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from plateseg.errors import InputError, NotFoundError
from plateseg.plate.layout import (
    LayoutError,
    LayoutReading,
    PlateLayout,
    format_layout,
    parse_any_layout,
    read_any_layout,
    set_well_control,
)
from plateseg.store.keys import layout_key
from plateseg.web.deps import AppStateDep, ExperimentId
from plateseg.web.state import AppState

router = APIRouter(prefix="/api/experiments/{experiment_id}/layout", tags=["layouts"])

_LOCK_KEY = "layouts.write"
LayoutFormat = Literal["native", "cellprofiler", "grid"]
Control = Literal["", "neg", "pos"]


class MappedOut(BaseModel):
    source: str = Field(description="a column of the file, or a grid with its title and line")
    field: str = Field(description="the layout field it fills")


class IgnoredOut(BaseModel):
    source: str
    reason: str


class ReportOut(BaseModel):
    """How the layout file was read."""

    format: LayoutFormat
    source: str
    delimiter: str
    mapped: list[MappedOut]
    ignored: list[IgnoredOut]
    rows: int = Field(description="data rows read (grid: annotated cells)")
    wells: int = Field(description="wells in the layout")
    plate_format: int | None = Field(description="96, 384 or 1536 when the file implies it")
    notes: list[str]


class WellOut(BaseModel):
    plate: str | None = Field(description="null: the row applies to every plate")
    well: str
    row: str
    column: int
    condition: str
    compound: str
    concentration: float | None
    control: Control


class LayoutOut(BaseModel):
    experiment_id: str
    wells: list[WellOut]
    report: ReportOut
    warnings: list[str] = Field(
        description="what is valid but probably not meant: layout plates without images"
    )


class RoleIn(BaseModel):
    control: Literal["pos", "neg", "none", ""] = Field(
        description="the well's control role: pos, neg, or none (no control)"
    )
    plate: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description=(
            "set it on this plate only; null (the default): on every plate, the row for "
            "every plate and any plate-specific rows of the well"
        ),
    )


class LayoutProblemsOut(BaseModel):
    detail: str
    error: str
    problems: list[str]


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {"model": LayoutProblemsOut, "description": "the layout is invalid"}
}


def _lock(state: AppState) -> threading.Lock:
    lock: threading.Lock = state.extras.setdefault(_LOCK_KEY, threading.Lock())
    return lock


def _problems(error: InputError) -> JSONResponse:
    problems = list(error.problems) if isinstance(error, LayoutError) else [str(error)]
    body = LayoutProblemsOut(detail=str(error), error=type(error).__name__, problems=problems)
    return JSONResponse(body.model_dump(), status_code=422)


def _plates(state: AppState, experiment_id: str) -> set[str]:
    """Plates with images (:class:`NotFoundError` when the experiment has none)."""
    return {item.plate for item in state.manifests.items(experiment_id)}


def _out(experiment_id: str, reading: LayoutReading, plates: set[str]) -> LayoutOut:
    report = reading.report
    strange = sorted({w.plate for w in reading.layout.wells if w.plate} - plates)
    warnings = []
    if strange:
        warnings.append(
            f"plates in the layout without images: {', '.join(strange)} "
            f"(the experiment's plates: {', '.join(sorted(plates))})"
        )
    return LayoutOut(
        experiment_id=experiment_id,
        wells=[
            WellOut(
                plate=w.plate,
                well=w.well,
                row=w.row,
                column=w.column,
                condition=w.condition,
                compound=w.compound,
                concentration=w.concentration,
                control=cast(Control, w.control),
            )
            for w in reading.layout.wells
        ],
        report=ReportOut(
            format=cast(LayoutFormat, report.format),
            source=report.source,
            delimiter=report.delimiter,
            mapped=[MappedOut(source=s, field=f) for s, f in report.mapped],
            ignored=[IgnoredOut(source=s, reason=r) for s, r in report.ignored],
            rows=report.rows,
            wells=report.wells,
            plate_format=report.plate_format,
            notes=list(report.notes),
        ),
        warnings=warnings,
    )


def _store(state: AppState, experiment_id: str, layout: PlateLayout) -> None:
    data = format_layout(layout).encode("utf-8")
    state.store.put_bytes(layout_key(experiment_id), data, "text/csv")


@router.get("", response_model=LayoutOut, responses=_PROBLEMS)
def get_layout(state: AppStateDep, experiment_id: ExperimentId) -> Any:
    """The experiment's layout, parsed, with the report of how its file was read."""
    plates = _plates(state, experiment_id)
    try:
        reading = read_any_layout(state.store, experiment_id)
    except InputError as error:
        return _problems(error)
    if reading is None:
        raise NotFoundError(f"experiment {experiment_id!r} has no layout")
    return _out(experiment_id, reading, plates)


@router.post("", response_model=LayoutOut, responses=_PROBLEMS)
def upload_layout(
    state: AppStateDep,
    experiment_id: ExperimentId,
    file: Annotated[
        UploadFile,
        File(description="a native layout.csv, a CellProfiler metadata CSV or a grid sheet"),
    ],
    plate_format: Annotated[
        int | None, Query(description="96, 384 or 1536: wells outside it are errors")
    ] = None,
) -> Any:
    """Upload a layout in any accepted format; it replaces the experiment's layout, stored
    in the native format. The answer is the mapping report (what was detected, mapped and
    ignored); an invalid file changes nothing and is answered 422 with every problem."""
    plates = _plates(state, experiment_id)
    data = file.file.read(state.config.web_max_body + 1)
    source = (file.filename or "layout.csv")[:128]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{source}: not UTF-8 text ({error.reason}); save it as 'CSV UTF-8'"
        ) from None
    try:
        reading = parse_any_layout(text, source=source, plate_format=plate_format)
    except InputError as error:
        return _problems(error)
    if not reading.layout.wells:
        raise InputError(f"{source}: the file defines no wells")
    with _lock(state):
        _store(state, experiment_id, reading.layout)
    return _out(experiment_id, reading, plates)


@router.patch("/wells/{well}", response_model=LayoutOut, responses=_PROBLEMS)
def set_role(
    state: AppStateDep,
    experiment_id: ExperimentId,
    well: Annotated[str, Path(max_length=8, pattern=r"^[A-Za-z]{1,2}[0-9]{1,3}$")],
    role: RoleIn,
) -> Any:
    """Set one well's control role (pos, neg or none) and rewrite the stored layout; a
    well the layout lacks is added. With ``plate``, on that plate only (its own row, made
    from the row for every plate); without, on every plate of the experiment. Runs
    started afterwards use the new role (a run keeps the layout it started with)."""
    plates = _plates(state, experiment_id)
    with _lock(state):
        try:
            reading = read_any_layout(state.store, experiment_id)
        except InputError as error:
            return _problems(error)
        layout = reading.layout if reading is not None else PlateLayout(wells=())
        updated = set_well_control(layout, well, role.control, plate=role.plate)
        _store(state, experiment_id, updated)
        stored = read_any_layout(state.store, experiment_id)
    if stored is None:  # the store lost what was just written
        raise NotFoundError(f"experiment {experiment_id!r} has no layout")
    return _out(experiment_id, stored, plates)
