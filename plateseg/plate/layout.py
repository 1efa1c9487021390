"""Plate layouts: ``experiments/<id>/layout.csv``, the plate map of an experiment.

One row per well, with a header. Columns (names are case-insensitive; only ``well``
is required)::

    plate          optional: the row applies to this plate only (else to every plate)
    well           A01 / A1 / a01 (normalised to A01)
    condition      free text, e.g. "CPD-1 0.3 uM"
    compound       free text, e.g. "CPD-1"
    concentration  a number, or empty
    control        "", "neg" or "pos" ("negative"/"positive" accepted); header
                   aliases: "control_role", "control role", "role"

Errors name the file, the line and the column. Wells outside the plate format
(e.g. ``Q01`` on a 96-well plate) are errors.

Layouts as labs have them are accepted too: :func:`parse_layout` (and so Lookup,
Aggregate and the exports) detects a CellProfiler metadata CSV (``Metadata_*``
columns) or a plate-map grid sheet (8x12 / 16x24 grids, one per annotation) and reads
it into the same :class:`PlateLayout` (:mod:`plateseg.plate.layout_formats` describes
both); :func:`parse_any_layout` also answers the mapping report, :func:`format_layout`
writes any layout back in the native format, :func:`set_well_control` changes one
well's role. The delimiter may be ``,``, ``;`` or a tab.

>>> layout = parse_layout("well,control\\nA1,neg\\nA12,pos\\n")
>>> [(w.well, w.row, w.column, w.control) for w in layout.wells]
[('A01', 'A', 1, 'neg'), ('A12', 'A', 12, 'pos')]
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace

from plateseg.errors import InputError, ObjectNotFoundError
from plateseg.plate.layout_cellprofiler import is_cellprofiler_header, parse_cellprofiler
from plateseg.plate.layout_formats import parse_role
from plateseg.plate.layout_grid import grid_size, parse_grid
from plateseg.plate.layout_model import (
    LAYOUT_FORMATS,
    PLATE_FORMATS,
    LayoutError,
    LayoutReading,
    LayoutReport,
    PlateLayout,
    WellLayout,
    parse_concentration,
    plate_format_for,
    row_number,
    split_well,
)
from plateseg.store import Store
from plateseg.store.keys import layout_key

__all__ = [
    "LAYOUT_FORMATS",
    "PLATE_FORMATS",
    "LayoutError",
    "LayoutReading",
    "LayoutReport",
    "PlateLayout",
    "WellLayout",
    "detect_layout_format",
    "format_layout",
    "parse_any_layout",
    "parse_layout",
    "plate_format_for",
    "read_any_layout",
    "read_layout",
    "read_layout_text",
    "set_well_control",
    "split_well",
]

_CONTROLS = {"": "", "neg": "neg", "negative": "neg", "pos": "pos", "positive": "pos"}
_ALIASES = {
    "plate": "plate",
    "well": "well",
    "condition": "condition",
    "compound": "compound",
    "concentration": "concentration",
    "control": "control",
    "control_role": "control",
    "control role": "control",
    "role": "control",
}
#: The columns of the native format, in the order :func:`format_layout` writes them.
NATIVE_COLUMNS = ("plate", "well", "condition", "compound", "concentration", "control")
#: How many leading non-blank rows detection looks at for a grid header.
_GRID_SCAN = 5


def _delimiter(text: str) -> str:
    """``,``, ``;`` or a tab: the most frequent of them on the first line holding any."""
    for line in text.splitlines():
        counts = {mark: line.count(mark) for mark in (",", ";", "\t")}
        if any(counts.values()):
            return max(counts, key=lambda mark: counts[mark])
    return ","


def _records(text: str, delimiter: str, source: str = "layout.csv") -> list[list[str]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        return list(reader)
    except csv.Error as error:  # a NUL byte, a field over the csv module's size limit
        raise InputError(f"{source}: line {reader.line_num}: not CSV ({error})") from None


def detect_layout_format(text: str) -> tuple[str, str]:
    """``(format, delimiter)`` of a layout file's text.

    ``cellprofiler`` when the first non-blank row has a ``Metadata_*`` column, ``grid``
    when one of the first non-blank rows is a plate-map header (cells ``1..12``,
    ``1..24`` or ``1..48`` after the first), else ``native``. Neither can be a valid
    native file (``Metadata_*`` is not a native column; a native row holds a well name).

    >>> detect_layout_format("Metadata_Well;Metadata_Role\\nA01;neg\\n")
    ('cellprofiler', ';')
    >>> detect_layout_format("well,control\\nA01,neg\\n")
    ('native', ',')
    """
    delimiter = _delimiter(text.lstrip("\ufeff"))
    rows = [
        row for row in _records(text.lstrip("\ufeff"), delimiter) if any(c.strip() for c in row)
    ]
    if rows and is_cellprofiler_header(rows[0]):
        return "cellprofiler", delimiter
    if any(grid_size(row) is not None for row in rows[:_GRID_SCAN]):
        return "grid", delimiter
    return "native", delimiter


def _parse_native(
    records: list[list[str]], *, source: str, delimiter: str, plate_format: int | None
) -> LayoutReading:
    """The native format: header row, one row per well; the first problem is raised."""
    if not records:
        raise InputError(f"{source}: the file is empty (expected a header with 'well')")
    header = records[0]
    columns: list[str] = []
    for number, name in enumerate(header, start=1):
        key = _ALIASES.get(name.strip().lower())
        if key is None:
            known = ", ".join(sorted(set(_ALIASES.values())))
            raise InputError(
                f"{source}: line 1, column {number}: unknown column {name!r} ({known})"
            )
        if key in columns:
            raise InputError(f"{source}: line 1: column {key!r} appears twice")
        columns.append(key)
    if "well" not in columns:
        raise InputError(f"{source}: line 1: no 'well' column in the header {header}")
    rows, cols = PLATE_FORMATS.get(plate_format or 1536, PLATE_FORMATS[1536])
    wells: list[WellLayout] = []
    seen: dict[tuple[str | None, str], int] = {}
    read = 0
    for line, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        read += 1
        if len(record) != len(columns):
            raise InputError(
                f"{source}: line {line}: {len(record)} values for {len(columns)} columns"
            )
        values = {key: cell.strip() for key, cell in zip(columns, record, strict=True)}
        where = f"{source}: line {line}, column 'well'"
        row, column = split_well(values["well"], where)
        if row_number(row) > rows or column > cols:
            size = plate_format or 1536
            raise InputError(f"{where}: {values['well']!r} is not on a {size}-well plate")
        control = values.get("control", "").lower()
        if control not in _CONTROLS:
            raise InputError(
                f"{source}: line {line}, column 'control': {values['control']!r} "
                "is not one of '', 'neg', 'pos'"
            )
        entry = WellLayout(
            well=f"{row}{column:02d}",
            row=row,
            column=column,
            condition=values.get("condition", ""),
            compound=values.get("compound", ""),
            concentration=parse_concentration(
                values.get("concentration", ""), f"{source}: line {line}, column 'concentration'"
            ),
            control=_CONTROLS[control],
            plate=values.get("plate") or None,
        )
        slot = (entry.plate, entry.well)
        if slot in seen:
            raise InputError(
                f"{source}: line {line}: well {entry.well} is already listed on line {seen[slot]}"
            )
        seen[slot] = line
        wells.append(entry)
    report = LayoutReport(
        format="native",
        source=source,
        delimiter=delimiter,
        mapped=tuple((name.strip(), key) for name, key in zip(header, columns, strict=True)),
        rows=read,
        wells=len(wells),
    )
    return LayoutReading(PlateLayout(wells=tuple(wells), source=source), report)


def parse_any_layout(
    text: str, *, source: str = "layout.csv", plate_format: int | None = None
) -> LayoutReading:
    """Parse a layout file in any accepted format, with the report of how it was read.

    The format is detected (:func:`detect_layout_format`): the native ``layout.csv``
    (module doc), a CellProfiler metadata CSV or a plate-map grid sheet
    (:mod:`plateseg.plate.layout_formats` describes both). The delimiter may be ``,``,
    ``;`` or a tab; a UTF-8 byte order mark is skipped.

    >>> reading = parse_any_layout("Metadata_Well,Metadata_Role\\na1,negcon\\na1,negcon\\n")
    >>> reading.report.format, [(w.well, w.control) for w in reading.layout.wells]
    ('cellprofiler', [('A01', 'neg')])

    Parameters
    ----------
    text : str
        The file's text.
    source : str
        Name used in error messages and the report (the file's name or URI).
    plate_format : int, optional
        96, 384 or 1536: wells outside it are errors. By default any well up to
        a 1536-well plate is accepted.

    Raises
    ------
    InputError
        The native format raises its first problem (see :func:`parse_layout`); the
        foreign formats raise :class:`LayoutError` listing every problem, each naming
        the source, the line and the column or cell.
    """
    if plate_format is not None and plate_format not in PLATE_FORMATS:
        raise InputError(f"{source}: plate format {plate_format} is not one of 96, 384, 1536")
    text = text.lstrip("\ufeff")
    records = _records(text, ",", source)  # raises on what no delimiter makes CSV
    kind, delimiter = detect_layout_format(text)
    records = _records(text, delimiter, source)
    if kind == "cellprofiler":
        return parse_cellprofiler(
            records, source=source, delimiter=delimiter, plate_format=plate_format
        )
    if kind == "grid":
        return parse_grid(records, source=source, delimiter=delimiter, plate_format=plate_format)
    return _parse_native(records, source=source, delimiter=delimiter, plate_format=plate_format)


def parse_layout(
    text: str, *, source: str = "layout.csv", plate_format: int | None = None
) -> PlateLayout:
    """Parse the text of a layout file in any accepted format (see :func:`parse_any_layout`).

    Parameters
    ----------
    text : str
        CSV with a header row (native or CellProfiler) or a plate-map grid sheet.
    source : str
        Name used in error messages (the file's URI).
    plate_format : int, optional
        96, 384 or 1536: wells outside it are errors. By default any well up to
        a 1536-well plate is accepted.

    Raises
    ------
    InputError
        Native format: no ``well`` column, an unknown column, a malformed well,
        concentration or control value, a well outside the plate format, or a well listed
        twice; the message names the source, line and column. Other formats: see
        :mod:`plateseg.plate.layout_formats`.
    """
    return parse_any_layout(text, source=source, plate_format=plate_format).layout


def format_layout(layout: PlateLayout) -> str:
    """The native ``layout.csv`` text of a layout (parses back to the same wells).

    >>> print(format_layout(parse_layout("well,control\\nb3,positive\\n")), end="")
    plate,well,condition,compound,concentration,control
    ,B03,,,,pos
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(NATIVE_COLUMNS)
    for entry in layout.wells:
        concentration = "" if entry.concentration is None else repr(entry.concentration)
        writer.writerow(
            [
                entry.plate or "",
                entry.well,
                entry.condition,
                entry.compound,
                concentration,
                entry.control,
            ]
        )
    return buffer.getvalue()


def set_well_control(
    layout: PlateLayout, well: str, control: str, *, plate: str | None = None
) -> PlateLayout:
    """The layout with one well's control role set (``neg``, ``pos``, or ``""``/``none``).

    Without ``plate``, every row of the well (the one for every plate and any
    plate-specific ones) gets the role, and the row for every plate is added when the
    layout names the well only on some plates, so the other plates have the role too;
    with ``plate``, that plate's row does (made from the row for every plate when there
    is none). A well the layout lacks is added.

    >>> layout = set_well_control(PlateLayout(wells=()), "c5", "pos")
    >>> [(w.well, w.control, w.plate) for w in layout.wells]
    [('C05', 'pos', None)]
    >>> layout = set_well_control(layout, "C05", "neg", plate="P2")
    >>> [(w.well, w.control, w.plate) for w in layout.wells]
    [('C05', 'pos', None), ('C05', 'neg', 'P2')]
    >>> only_p2 = PlateLayout(wells=layout.wells[1:])
    >>> [(w.control, w.plate) for w in set_well_control(only_p2, "C05", "pos").wells]
    [('pos', 'P2'), ('pos', None)]

    Raises
    ------
    InputError
        Not a well name, or not a role word.
    """
    row, column = split_well(well, "well")
    plate_format_for([(row, column)])
    plate = (plate.strip() or None) if plate is not None else None
    name = f"{row}{column:02d}"
    role = parse_role(control, "control")
    wells = list(layout.wells)
    changed = False
    for index, entry in enumerate(wells):
        if entry.well == name and (plate is None or entry.plate == plate):
            wells[index] = replace(entry, control=role)
            changed = True
    if plate is None and (None, name) not in layout.index():
        wells.append(WellLayout(well=name, row=row, column=column, plate=None, control=role))
    elif not changed:
        generic = layout.index().get((None, name))
        base = generic or WellLayout(well=name, row=row, column=column, plate=None)
        wells.append(replace(base, control=role, plate=plate))
    return PlateLayout(wells=tuple(wells), source=layout.source)


def read_layout_text(store: Store, key: str) -> str | None:
    """The layout file at ``key`` as text, or ``None`` when there is none.

    Raises
    ------
    InputError
        The file is not UTF-8.
    """
    try:
        data = store.get_bytes(key)
    except ObjectNotFoundError:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{store.uri(key)}: not UTF-8 text ({error.reason})") from None


def read_any_layout(
    store: Store, experiment_id: str, *, plate_format: int | None = None
) -> LayoutReading | None:
    """The experiment's layout and its report, or ``None`` if it has no ``layout.csv``.

    Raises
    ------
    InputError
        The file is not UTF-8 or not a valid layout (see :func:`parse_any_layout`).
    """
    key = layout_key(experiment_id)
    text = read_layout_text(store, key)
    if text is None:
        return None
    return parse_any_layout(text, source=store.uri(key), plate_format=plate_format)


def read_layout(
    store: Store, experiment_id: str, *, plate_format: int | None = None
) -> PlateLayout | None:
    """The experiment's layout from the store, or ``None`` if it has no ``layout.csv``.

    Raises
    ------
    InputError
        The file is not UTF-8 or not a valid layout (see :func:`parse_layout`).
    """
    reading = read_any_layout(store, experiment_id, plate_format=plate_format)
    return None if reading is None else reading.layout
