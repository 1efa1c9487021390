"""Read a CellProfiler metadata CSV (``Metadata_Plate``, ``Metadata_Well``, ...) as a
plate layout: one row per image or per well, collapsed into wells (the format is
described in :mod:`plateseg.plate.layout_formats`)."""

from __future__ import annotations

from dataclasses import dataclass

from plateseg.errors import InputError
from plateseg.plate.layout_formats import (
    ANNOTATIONS,
    cell_concentration,
    check_on_plate,
    parse_role,
)
from plateseg.plate.layout_model import (
    LayoutError,
    LayoutReading,
    LayoutReport,
    PlateLayout,
    WellLayout,
    split_well,
)

__all__ = ["is_cellprofiler_header", "parse_cellprofiler"]


#: CellProfiler column names (lower case, after ``metadata_``) per field, by priority.
_CP_FIELDS: dict[str, tuple[str, ...]] = {
    "plate": ("plate", "platename", "plate_name", "barcode", "platebarcode", "plate_barcode"),
    "well": ("well", "wellname", "well_name", "wellid", "well_id"),
    "row": ("row", "wellrow", "well_row"),
    "column": ("column", "col", "wellcolumn", "well_column", "wellcol"),
    "compound": ("compound", "compoundname", "compound_name", "treatment", "drug"),
    "concentration": (
        "concentration",
        "conc",
        "dose",
        "compound_concentration",
        "concentration_um",
        "concentration_nm",
        "concentration_mm",
        "mmoles_per_liter",
    ),
    "control": (
        "control",
        "role",
        "controltype",
        "control_type",
        "control_role",
        "wellrole",
        "well_role",
        "welltype",
        "well_type",
    ),
    "condition": ("condition", "description"),
}
_CP_PER_IMAGE = {
    "site",
    "field",
    "fieldid",
    "field_id",
    "image",
    "imagenumber",
    "frame",
    "channel",
    "z",
    "t",
    "timepoint",
    "series",
}


def _metadata_name(header: str) -> str | None:
    """``compound`` from ``Metadata_Compound`` / ``Image_Metadata_Compound``, else None."""
    name = header.strip().lower()
    name = name.removeprefix("image_")
    if name.startswith("metadata_") and len(name) > len("metadata_"):
        return name[len("metadata_") :]
    return None


def is_cellprofiler_header(header: list[str]) -> bool:
    """Whether a header row has a ``Metadata_*`` column (a CellProfiler metadata CSV)."""
    return any(_metadata_name(cell) is not None for cell in header)


@dataclass(frozen=True)
class _Columns:
    """The columns a CellProfiler header maps to layout fields."""

    header: list[str]
    chosen: dict[str, int]
    source: str

    def name(self, field_name: str) -> str:
        return self.header[self.chosen[field_name]].strip()

    def where(self, line: int, field_name: str) -> str:
        return f"{self.source}: line {line}, column {self.name(field_name)!r}"

    def value(self, cells: list[str], field_name: str) -> str:
        index = self.chosen.get(field_name)
        return "" if index is None else cells[index]


def _choose_columns(header: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``{field: column index}`` and ``[(column, why ignored)]`` of a CellProfiler header."""
    names = [_metadata_name(cell) for cell in header]
    chosen: dict[str, int] = {}
    ignored: list[tuple[int, str]] = []
    for field_name, aliases in _CP_FIELDS.items():
        for alias in aliases:
            for index, name in enumerate(names):
                if name != alias:
                    continue
                if field_name in chosen:
                    first = header[chosen[field_name]].strip()
                    ignored.append((index, f"{first} is already the {field_name} column"))
                else:
                    chosen[field_name] = index
    if "well" in chosen:
        for extra in ("row", "column"):
            if extra in chosen:
                ignored.append((chosen.pop(extra), "the well column is used"))
    seen = set(chosen.values()) | {index for index, _ in ignored}
    for index, name in enumerate(names):
        if index in seen or not header[index].strip():
            continue
        if name is None:
            why = "not a Metadata_ column (per-image data)"
        elif name in _CP_PER_IMAGE:
            why = "per-image metadata, not per well"
        else:
            why = (
                "no layout field for it (the layout holds plate, well, condition, compound, "
                "concentration, control)"
            )
        ignored.append((index, why))
    ignored.sort()
    return chosen, [(header[index].strip(), why) for index, why in ignored]


def _cp_well(
    columns: _Columns,
    cells: list[str],
    line: int,
    *,
    delimiter: str,
    plate_format: int | None,
    problems: list[str],
) -> WellLayout | None:
    """One CellProfiler row as a well, or ``None`` with its problems appended."""
    found = len(problems)
    if "well" in columns.chosen:
        text, where = columns.value(cells, "well"), columns.where(line, "well")
    else:
        text = columns.value(cells, "row") + columns.value(cells, "column")
        where = f"{columns.where(line, 'row')} and {columns.name('column')!r}"
    row, column = "", 0
    try:
        row, column = split_well(text, where)
        check_on_plate(row, column, plate_format, where, text)
    except InputError as error:
        problems.append(str(error))
    control, concentration = "", None
    try:
        if "control" in columns.chosen:
            control = parse_role(columns.value(cells, "control"), columns.where(line, "control"))
    except InputError as error:
        problems.append(str(error))
    try:
        if columns.value(cells, "concentration"):
            concentration = cell_concentration(
                columns.value(cells, "concentration"),
                columns.where(line, "concentration"),
                delimiter,
            )
    except InputError as error:
        problems.append(str(error))
    if len(problems) > found:
        return None
    return WellLayout(
        well=f"{row}{column:02d}",
        row=row,
        column=column,
        condition=columns.value(cells, "condition"),
        compound=columns.value(cells, "compound"),
        concentration=concentration,
        control=control,
        plate=columns.value(cells, "plate") or None,
    )


def parse_cellprofiler(
    records: list[list[str]],
    *,
    source: str,
    delimiter: str = ",",
    plate_format: int | None = None,
) -> LayoutReading:
    """Read a CellProfiler-style metadata CSV (see the module doc) already split in rows.

    Raises
    ------
    LayoutError
        No well (or row and column) column, or rows with a malformed well, role or
        concentration, a well off the plate, or two rows of one well that disagree; each
        problem names the source, the line and the column.
    """
    first = next(i for i, record in enumerate(records) if any(c.strip() for c in record))
    header = records[first]
    chosen, ignored = _choose_columns(header)
    if "well" not in chosen and not ("row" in chosen and "column" in chosen):
        raise LayoutError(
            [
                f"{source}: line {first + 1}: no Metadata_Well column (nor Metadata_Row and "
                f"Metadata_Column) in the header {[cell.strip() for cell in header]}"
            ]
        )
    columns = _Columns(header, chosen, source)
    problems: list[str] = []
    wells: dict[tuple[str | None, str], tuple[int, WellLayout]] = {}
    rows_read = 0
    for line, record in enumerate(records[first + 1 :], start=first + 2):
        if not any(cell.strip() for cell in record):
            continue
        rows_read += 1
        if any(cell.strip() for cell in record[len(header) :]):
            problems.append(
                f"{source}: line {line}: {len(record)} values for {len(header)} columns"
            )
            continue
        cells = [cell.strip() for cell in record] + [""] * (len(header) - len(record))
        entry = _cp_well(
            columns,
            cells,
            line,
            delimiter=delimiter,
            plate_format=plate_format,
            problems=problems,
        )
        if entry is None:
            continue
        slot = (entry.plate, entry.well)
        if slot not in wells:
            wells[slot] = (line, entry)
            continue
        first_line, earlier = wells[slot]
        for name in ANNOTATIONS:
            if name in chosen and getattr(entry, name) != getattr(earlier, name):
                plate = f"plate {entry.plate}, " if entry.plate else ""
                now, before = getattr(entry, name), getattr(earlier, name)
                problems.append(
                    f"{columns.where(line, name)}: {plate}well {entry.well} has {name} "
                    f"{now!r} but line {first_line} gave {before!r}"
                )
    if problems:
        raise LayoutError(problems)
    entries = tuple(entry for _line, entry in wells.values())
    notes = []
    if rows_read > len(entries):
        notes.append(f"{rows_read} rows collapsed into {len(entries)} wells (one row per image)")
    if "concentration" in chosen:
        notes.append(
            f"concentrations from {columns.name('concentration')} are kept as given "
            "(units are not converted)"
        )
    if "plate" not in chosen:
        notes.append("no plate column: every row applies to every plate")
    mapped = sorted(
        ((columns.name(name), name) for name in chosen), key=lambda item: header.index(item[0])
    )
    report = LayoutReport(
        format="cellprofiler",
        source=source,
        delimiter=delimiter,
        mapped=tuple(mapped),
        ignored=tuple(ignored),
        rows=rows_read,
        wells=len(entries),
        notes=tuple(notes),
    )
    return LayoutReading(PlateLayout(wells=entries, source=source), report)
