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

>>> layout = parse_layout("well,control\\nA1,neg\\nA12,pos\\n")
>>> [(w.well, w.row, w.column, w.control) for w in layout.wells]
[('A01', 'A', 1, 'neg'), ('A12', 'A', 12, 'pos')]
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass

from plateseg.errors import InputError, ObjectNotFoundError
from plateseg.store import Store
from plateseg.store.keys import layout_key

__all__ = [
    "PLATE_FORMATS",
    "PlateLayout",
    "WellLayout",
    "parse_layout",
    "plate_format_for",
    "read_layout",
    "read_layout_text",
    "split_well",
]

#: Standard plate formats: wells -> (rows, columns).
PLATE_FORMATS: dict[int, tuple[int, int]] = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}

_WELL = re.compile(r"^([A-Za-z]{1,2})0*([0-9]{1,3})$")
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


@dataclass(frozen=True)
class WellLayout:
    """The annotations of one well (``plate`` is ``None`` when it applies to every plate)."""

    well: str
    row: str
    column: int
    condition: str = ""
    compound: str = ""
    concentration: float | None = None
    control: str = ""
    plate: str | None = None


@dataclass(frozen=True)
class PlateLayout:
    """A parsed layout file: its wells, in file order, and where it came from."""

    wells: tuple[WellLayout, ...]
    source: str = "layout.csv"

    def lookup(self, plate: str, well: str) -> WellLayout | None:
        """The annotations of ``well`` on ``plate`` (a plate-specific row wins)."""
        fallback = None
        for entry in self.wells:
            if entry.well == well:
                if entry.plate == plate:
                    return entry
                if entry.plate is None:
                    fallback = entry
        return fallback

    def index(self) -> dict[tuple[str | None, str], WellLayout]:
        """``{(plate or None, well): WellLayout}`` for fast lookups."""
        return {(entry.plate, entry.well): entry for entry in self.wells}


def _row_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + (ord(letter) - ord("A") + 1)
    return number


def split_well(well: str, where: str = "well") -> tuple[str, int]:
    """Row letters and 1-based column of a well name.

    >>> split_well("B03"), split_well("af12")
    (('B', 3), ('AF', 12))

    Raises
    ------
    InputError
        Not a well name (letters then a number).
    """
    match = _WELL.match(well.strip())
    if match is None or int(match.group(2)) == 0:
        raise InputError(f"{where}: {well!r} is not a well name like 'B03'")
    return match.group(1).upper(), int(match.group(2))


def plate_format_for(wells: list[tuple[str, int]]) -> int:
    """The smallest standard plate format holding every ``(row, column)``.

    >>> plate_format_for([("H", 12)]), plate_format_for([("I", 1)])
    (96, 384)

    Raises
    ------
    InputError
        A well lies outside even a 1536-well plate.
    """
    for size, (rows, columns) in PLATE_FORMATS.items():
        if all(_row_number(r) <= rows and c <= columns for r, c in wells):
            return size
    worst = max(wells, key=lambda rc: (_row_number(rc[0]), rc[1]))
    raise InputError(f"well {worst[0]}{worst[1]:02d} lies outside a 1536-well plate")


def _concentration(text: str, where: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{where}: {text!r} must be a finite number >= 0")
    return value


def parse_layout(
    text: str, *, source: str = "layout.csv", plate_format: int | None = None
) -> PlateLayout:
    """Parse the text of a layout CSV.

    Parameters
    ----------
    text : str
        CSV with a header row.
    source : str
        Name used in error messages (the file's URI).
    plate_format : int, optional
        96, 384 or 1536: wells outside it are errors. By default any well up to
        a 1536-well plate is accepted.

    Raises
    ------
    InputError
        No ``well`` column, an unknown column, a malformed well, concentration or
        control value, a well outside the plate format, or a well listed twice; the
        message names the source, line and column.
    """
    if plate_format is not None and plate_format not in PLATE_FORMATS:
        raise InputError(f"{source}: plate format {plate_format} is not one of 96, 384, 1536")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if header is None:
        raise InputError(f"{source}: the file is empty (expected a header with 'well')")
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
    for line, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(columns):
            raise InputError(
                f"{source}: line {line}: {len(record)} values for {len(columns)} columns"
            )
        values = {key: cell.strip() for key, cell in zip(columns, record, strict=True)}
        where = f"{source}: line {line}, column 'well'"
        row, column = split_well(values["well"], where)
        if _row_number(row) > rows or column > cols:
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
            concentration=_concentration(
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
    return PlateLayout(wells=tuple(wells), source=source)


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


def read_layout(
    store: Store, experiment_id: str, *, plate_format: int | None = None
) -> PlateLayout | None:
    """The experiment's layout from the store, or ``None`` if it has no ``layout.csv``.

    Raises
    ------
    InputError
        The file is not UTF-8 or not a valid layout (see :func:`parse_layout`).
    """
    key = layout_key(experiment_id)
    text = read_layout_text(store, key)
    if text is None:
        return None
    return parse_layout(text, source=store.uri(key), plate_format=plate_format)
