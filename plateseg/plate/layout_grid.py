"""Read a plate-map grid sheet (one 8x12, 16x24 or 32x48 grid per annotation, stacked)
as a plate layout (the format is described in :mod:`plateseg.plate.layout_formats`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from plateseg.errors import InputError
from plateseg.plate.layout_formats import (
    cell_concentration,
    parse_role,
    trimmed,
)
from plateseg.plate.layout_model import (
    PLATE_FORMATS,
    LayoutError,
    LayoutReading,
    LayoutReport,
    PlateLayout,
    WellLayout,
    row_letters,
    row_number,
)

__all__ = ["grid_size", "parse_grid"]

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


def grid_size(record: list[str]) -> int | None:
    """The plate format (96, 384, 1536) of a grid header row (cells after the first are
    ``1..12``, ``1..24`` or ``1..48``), or ``None`` when the row is not one."""
    cells = trimmed(record)[1:]
    size = _GRID_COLUMNS.get(len(cells))
    if size is None:
        return None
    try:
        numbers = [int(cell) for cell in cells]
    except ValueError:
        return None
    return size if numbers == list(range(1, len(cells) + 1)) else None


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
        cells = trimmed(record)
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
        return cell_concentration(text, where, delimiter)
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
