"""Layouts as labs have them: CellProfiler metadata CSVs and plate-map grid sheets.

:func:`plateseg.plate.layout.parse_any_layout` detects the format of a layout file and
calls the reader here for the two foreign ones; both give the same
:class:`~plateseg.plate.layout_model.PlateLayout` as the native ``layout.csv`` and a
:class:`~plateseg.plate.layout_model.LayoutReport` saying what was mapped and ignored.
Every problem is collected (not only the first) and raised as one
:class:`~plateseg.plate.layout_model.LayoutError`, each naming the file, the line and the
column or cell.

**CellProfiler metadata CSV** — recognised by a header with at least one
``Metadata_*`` (or ``Image_Metadata_*``) column; header names are case-insensitive.
One row per image or field is allowed: rows of one well are collapsed, and two rows of
one well that disagree on an annotation are an error naming both lines::

    Metadata_Plate,Metadata_Well,Metadata_Site,Metadata_Compound,Metadata_Concentration,Metadata_Role,FileName_DNA
    P1,A01,1,DMSO,0,negative,P1_A01_s1_w1.tif
    P1,A01,2,DMSO,0,negative,P1_A01_s2_w1.tif
    P1,A12,1,staurosporine,1,positive,P1_A12_s1_w1.tif

Columns (the name after ``Metadata_``) and the layout field each fills:

- ``Plate``, ``PlateName``, ``Barcode``: plate (blank: the row applies to every plate);
- ``Well`` (A01 / A1 / a1): well; or ``Row`` and ``Column`` / ``Col`` when there is no
  ``Well`` column;
- ``Compound``, ``CompoundName``, ``Treatment``, ``Drug``: compound;
- ``Concentration``, ``Conc``, ``Dose``, ``Concentration_uM`` (``_nM``, ``_mM``),
  ``mmoles_per_liter``: concentration, the number as given (units are not converted);
- ``Control``, ``Role``, ``ControlType``, ``Control_Type``, ``WellRole``, ``WellType``:
  control (see the role words below);
- ``Condition``, ``Description``: condition;
- ``Site``, ``Field``, ``Image``, ``Channel``, ...: ignored (per image, not per well);
  any other ``Metadata_*`` column: ignored (the layout has no free annotations);
  columns without ``Metadata_`` (file names, paths, URLs): ignored.

When several columns map to one field, the first in the table's order is used and the
others are reported as ignored.

**Plate-map grid sheet** — one grid per annotation, as a plate map is drawn in Excel
and saved as CSV. Each grid is a header row whose cells after the first are the column
numbers ``1..12`` (96 wells), ``1..24`` (384) or ``1..48`` (1536), then one line per
plate row, ``A..H`` (``A..P``, ``A..AF``), in order, first cell the row letter. The
grid's annotation is named by a title line just above the header (a line whose only
non-empty cell is the first), or else by the header's first (corner) cell. Blank lines
between grids are allowed; every grid of a file has the same shape::

    compound
    ,1,2,3,4,5,6,7,8,9,10,11,12
    A,DMSO,CPD-1,CPD-1,CPD-1,CPD-1,CPD-1,CPD-1,CPD-1,CPD-1,CPD-1,CPD-1,staurosporine
    ...
    H,DMSO,CPD-2,...,staurosporine

    concentration,1,2,3,4,5,6,7,8,9,10,11,12
    A,0,0.01,0.03,...
    ...

Titles (case-insensitive): ``compound``/``compounds``/``treatment``/``drug``;
``concentration``/``concentrations``/``conc``/``dose``; ``role``/``control``/
``controls``/``control role``/``control type``/``well type``; ``condition``/
``conditions``/``description``. A title may end in ``(plate P2)`` to apply to one plate
only (else the grid applies to every plate). A grid with another title is reported as
ignored. A well becomes a layout row when any grid gives it a value.

**Role words** (both foreign formats; case-insensitive): negative control = ``neg``,
``negative``, ``negative control``, ``negcon``, ``neg_ctrl``, ``ctrl_neg``, ``nc``;
positive control = ``pos``, ``positive``, ``positive control``, ``poscon`` (and
``poscon_*``), ``pos_ctrl``, ``ctrl_pos``, ``pc``; no control = blank, ``none``,
``-``, ``na``, ``n/a``, ``treatment``, ``trt``, ``sample``, ``compound``, ``test``,
``empty``. Anything else is an error naming the cell.

With ``;`` as the delimiter (a European Excel export), a decimal comma in a
concentration (``0,5``) is read as a decimal point. A blank, ``nan``, ``na`` or ``n/a``
concentration is no concentration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from plateseg.errors import InputError
from plateseg.plate.layout_model import (
    PLATE_FORMATS,
    LayoutError,
    LayoutReading,
    LayoutReport,
    PlateLayout,
    WellLayout,
    parse_concentration,
    row_letters,
    row_number,
    split_well,
)

__all__ = [
    "ANNOTATIONS",
    "grid_size",
    "is_cellprofiler_header",
    "parse_cellprofiler",
    "parse_grid",
    "parse_role",
]

#: The per-well annotations a layout holds, in the order they are written.
ANNOTATIONS = ("condition", "compound", "concentration", "control")

_NEG = {
    "neg",
    "negative",
    "negative_control",
    "neg_control",
    "negcon",
    "neg_ctrl",
    "negctrl",
    "ctrl_neg",
    "control_neg",
    "nc",
}
_POS = {
    "pos",
    "positive",
    "positive_control",
    "pos_control",
    "poscon",
    "pos_ctrl",
    "posctrl",
    "ctrl_pos",
    "control_pos",
    "pc",
}
_NONE = {"", "_", "none", "na", "n/a", "treatment", "trt", "sample", "compound", "test", "empty"}
_BLANK_NUMBERS = {"", "nan", "na", "n/a", "-"}

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
_GRID_TITLES = {
    "compound": "compound",
    "compounds": "compound",
    "treatment": "compound",
    "drug": "compound",
    "concentration": "concentration",
    "concentrations": "concentration",
    "conc": "concentration",
    "dose": "concentration",
    "role": "control",
    "roles": "control",
    "control": "control",
    "controls": "control",
    "control role": "control",
    "control_role": "control",
    "control type": "control",
    "control_type": "control",
    "well type": "control",
    "condition": "condition",
    "conditions": "condition",
    "description": "condition",
}
_PLATE_TITLE = re.compile(r"^(.*?)\s*\(\s*plate\s+(.+?)\s*\)$", re.IGNORECASE)
_GRID_COLUMNS = {columns: size for size, (_rows, columns) in PLATE_FORMATS.items()}


def parse_role(text: str, where: str) -> str:
    """``neg``, ``pos`` or ``""`` from a role word of a lab's file (see the module doc).

    Raises
    ------
    InputError
        Not a role word; the message starts with ``where``.
    """
    word = re.sub(r"[\s\-]+", "_", text.strip().lower())
    if word in _NEG:
        return "neg"
    if word in _POS or word.startswith("poscon"):
        return "pos"
    if word in _NONE:
        return ""
    raise InputError(
        f"{where}: {text!r} is not a control role (negative: neg, negative, negcon, nc; "
        "positive: pos, positive, poscon, pc; none: blank, none, treatment, sample)"
    )


def _concentration(text: str, where: str, delimiter: str) -> float | None:
    value = text.strip()
    if value.lower() in _BLANK_NUMBERS:
        return None
    if delimiter == ";":
        value = value.replace(",", ".")
    return parse_concentration(value, where)


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


def _trimmed(record: list[str]) -> list[str]:
    cells = [cell.strip() for cell in record]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def grid_size(record: list[str]) -> int | None:
    """The plate format (96, 384, 1536) of a grid header row (cells after the first are
    ``1..12``, ``1..24`` or ``1..48``), or ``None`` when the row is not one."""
    cells = _trimmed(record)[1:]
    size = _GRID_COLUMNS.get(len(cells))
    if size is None:
        return None
    try:
        numbers = [int(cell) for cell in cells]
    except ValueError:
        return None
    return size if numbers == list(range(1, len(cells) + 1)) else None


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


def _off_plate(row: str, column: int, plate_format: int | None, where: str, text: str) -> None:
    size = plate_format or 1536
    rows, columns = PLATE_FORMATS[size]
    if row_number(row) > rows or column > columns:
        raise InputError(f"{where}: {text!r} is not on a {size}-well plate")


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
        _off_plate(row, column, plate_format, where, text)
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
            concentration = _concentration(
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


@dataclass
class _Grid:
    """One grid of a plate-map sheet: its title, where it starts, its non-empty cells."""

    title: str
    line: int
    size: int
    cells: dict[tuple[str, int], tuple[str, int]]


def _split_grids(records: list[list[str]], source: str, problems: list[str]) -> list[_Grid]:
    """The grids of a plate-map sheet, in file order; structural problems appended."""
    grids: list[_Grid] = []
    title: tuple[str, int] | None = None
    current: _Grid | None = None
    next_row = 1
    for line, record in enumerate(records, start=1):
        cells = _trimmed(record)
        if current is not None:
            rows, columns = PLATE_FORMATS[current.size]
            expected = row_letters(next_row)
            if cells and cells[0].upper() == expected:
                if len(cells) - 1 > columns:
                    problems.append(
                        f"{source}: line {line}: row {expected} of grid {current.title!r} has "
                        f"{len(cells) - 1} values for {columns} columns"
                    )
                for column, text in enumerate(cells[1 : columns + 1], start=1):
                    if text:
                        current.cells[(expected, column)] = (text, line)
                next_row += 1
                if next_row > rows:
                    current = None
                continue
            found = repr(cells[0]) if cells else "a blank line"
            problems.append(
                f"{source}: line {line}: expected row {expected!r} of grid {current.title!r} "
                f"(begun on line {current.line}), found {found}"
            )
            current = None
        if not cells:
            continue
        size = grid_size(record)
        if size is not None:
            if title is None and not cells[0]:
                problems.append(
                    f"{source}: line {line}: a grid without a title (put the annotation's "
                    "name on the line above or in the first cell)"
                )
            name, begun = title if title is not None else (cells[0], line)
            title = None
            if grids and size != grids[0].size:
                problems.append(
                    f"{source}: line {begun}: a {size}-well grid after a {grids[0].size}-well "
                    f"grid (line {grids[0].line}); every grid of a file has one shape"
                )
            current = _Grid(name, begun, size, {})
            grids.append(current)
            next_row = 1
            continue
        if len(cells) == 1 and title is None:
            title = (cells[0], line)
            continue
        if title is not None:
            problems.append(
                f"{source}: line {title[1]}: the title {title[0]!r} is not followed by a grid "
                "header row (1..12, 1..24 or 1..48)"
            )
            title = (cells[0], line) if len(cells) == 1 else None
            if title is not None:
                continue
        problems.append(
            f"{source}: line {line}: expected a title line or a grid header row "
            f"(1..12, 1..24 or 1..48), found {cells[:4]}"
        )
    if current is not None:
        rows, _columns = PLATE_FORMATS[current.size]
        problems.append(
            f"{source}: line {len(records)}: the grid {current.title!r} (line {current.line}) "
            f"ends after {next_row - 1} rows; expected rows A to {row_letters(rows)}"
        )
    if title is not None:
        problems.append(
            f"{source}: line {title[1]}: the title {title[0]!r} is not followed by a grid "
            "header row (1..12, 1..24 or 1..48)"
        )
    return grids


def _grid_field(title: str) -> tuple[str | None, str | None]:
    """``(layout field or None, plate or None)`` of a grid title."""
    plate = None
    match = _PLATE_TITLE.match(title)
    if match is not None:
        title, plate = match.group(1), match.group(2)
    name = " ".join(title.strip().lower().split())
    return _GRID_TITLES.get(name), plate


def _cell_value(field_name: str, text: str, where: str, delimiter: str) -> object:
    if field_name == "control":
        return parse_role(text, where)
    if field_name == "concentration":
        return _concentration(text, where, delimiter)
    return text


def parse_grid(
    records: list[list[str]],
    *,
    source: str,
    delimiter: str = ",",
    plate_format: int | None = None,
) -> LayoutReading:
    """Read a plate-map grid sheet (see the module doc) already split in rows.

    Raises
    ------
    LayoutError
        A malformed sheet (a grid without its title, a missing or extra row, grids of
        different shapes, a second grid for one annotation) or a cell with a bad role or
        concentration; each problem names the source, the line and the cell.
    """
    problems: list[str] = []
    grids = _split_grids(records, source, problems)
    mapped: list[tuple[str, str]] = []
    ignored: list[tuple[str, str]] = []
    by_plate: dict[str | None, dict[str, _Grid]] = {None: {}}
    for grid in grids:
        field_name, plate = _grid_field(grid.title)
        label = f"grid {grid.title!r} (line {grid.line})"
        if field_name is None:
            ignored.append(
                (label, "no layout field for it (compound, concentration, role, condition)")
            )
            continue
        fields = by_plate.setdefault(plate, {})
        if field_name in fields:
            problems.append(
                f"{source}: line {grid.line}: a second {field_name} grid"
                f"{f' for plate {plate}' if plate else ''} (the first is on line "
                f"{fields[field_name].line})"
            )
            continue
        fields[field_name] = grid
        mapped.append((label, field_name))
    size = grids[0].size if grids else None
    if plate_format is not None and size is not None and size > plate_format:
        problems.append(f"{source}: a {size}-well grid for a {plate_format}-well plate")
    values: dict[tuple[str | None, str, int], dict[str, object]] = {}
    used = 0
    for plate, fields in by_plate.items():
        # a plate's own grids win; the grids for every plate fill in the rest
        merged = fields if plate is None else {**by_plate[None], **fields}
        for field_name, grid in merged.items():
            for (row, column), (text, line) in grid.cells.items():
                where = f"{source}: line {line}, cell {row}{column:02d} of grid {grid.title!r}"
                if grid is fields.get(field_name):
                    used += 1
                try:
                    value = _cell_value(field_name, text, where, delimiter)
                except InputError as error:
                    if grid is fields.get(field_name):
                        problems.append(str(error))
                    continue
                values.setdefault((plate, row, column), {})[field_name] = value
    if problems:
        raise LayoutError(problems)
    plates = list(by_plate)
    entries = []
    for (plate, row, column), found in sorted(
        values.items(),
        key=lambda item: (plates.index(item[0][0]), row_number(item[0][1]), item[0][2]),
    ):
        if not any(value not in ("", None) for value in found.values()):
            continue
        concentration = found.get("concentration")
        entries.append(
            WellLayout(
                well=f"{row}{column:02d}",
                row=row,
                column=column,
                condition=str(found.get("condition", "")),
                compound=str(found.get("compound", "")),
                concentration=concentration if isinstance(concentration, float) else None,
                control=str(found.get("control", "")),
                plate=plate,
            )
        )
    notes = []
    if len(by_plate) == 1:
        notes.append("no '(plate …)' in the titles: the grids apply to every plate")
    report = LayoutReport(
        format="grid",
        source=source,
        delimiter=delimiter,
        mapped=tuple(mapped),
        ignored=tuple(ignored),
        rows=used,
        wells=len(entries),
        plate_format=size,
        notes=tuple(notes),
    )
    return LayoutReading(PlateLayout(wells=tuple(entries), source=source), report)
