"""The plate layout's data model, shared by every layout format.

:mod:`plateseg.plate.layout` (the native ``layout.csv``, detection, writing) and
:mod:`plateseg.plate.layout_formats` (CellProfiler metadata CSVs and plate-map grids)
both build these objects; they live here so neither module imports the other's
internals.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from plateseg.errors import InputError

__all__ = [
    "LAYOUT_FORMATS",
    "PLATE_FORMATS",
    "LayoutError",
    "LayoutReading",
    "LayoutReport",
    "PlateLayout",
    "WellLayout",
    "parse_concentration",
    "plate_format_for",
    "row_letters",
    "row_number",
    "split_well",
]

#: Standard plate formats: wells -> (rows, columns).
PLATE_FORMATS: dict[int, tuple[int, int]] = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}

#: The layout file formats :func:`plateseg.plate.layout.parse_any_layout` recognises.
LAYOUT_FORMATS = ("native", "cellprofiler", "grid")

_WELL = re.compile(r"^([A-Za-z]{1,2})0*([0-9]{1,3})$")


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


@dataclass(frozen=True)
class LayoutReport:
    """How a layout file was read: the mapping report shown to whoever uploads it.

    Attributes
    ----------
    format : str
        ``native``, ``cellprofiler`` or ``grid`` (:data:`LAYOUT_FORMATS`).
    source : str
        The file's name or URI.
    delimiter : str
        The CSV delimiter found (``,``, ``;`` or a tab).
    mapped : tuple of (str, str)
        ``(column or grid, layout field)`` for every column or grid that was used.
    ignored : tuple of (str, str)
        ``(column or grid, why)`` for every one that was not.
    rows : int
        Data rows read (native, CellProfiler) or annotated grid cells (grid).
    wells : int
        Wells in the resulting layout (after collapsing one row per image to one per well).
    plate_format : int or None
        96, 384 or 1536 when the file implies it (a grid's shape), else ``None``.
    notes : tuple of str
        Anything else worth saying (rows collapsed, units kept as given, ...).
    """

    format: str
    source: str
    delimiter: str = ","
    mapped: tuple[tuple[str, str], ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()
    rows: int = 0
    wells: int = 0
    plate_format: int | None = None
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class LayoutReading:
    """A parsed layout and the report of how it was read."""

    layout: PlateLayout
    report: LayoutReport


class LayoutError(InputError):
    """A layout file has one or more problems; each names the file, the row or cell and
    what was wrong (``problems``, in file order; the message joins them)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        shown = problems[:20]
        more = f"\n(and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        super().__init__("\n".join(shown) + more)


def row_number(letters: str) -> int:
    """1-based number of a plate row: ``A`` -> 1, ``H`` -> 8, ``AF`` -> 32."""
    number = 0
    for letter in letters.upper():
        number = number * 26 + (ord(letter) - ord("A") + 1)
    return number


def row_letters(number: int) -> str:
    """Letters of the 1-based plate row ``number``: 1 -> ``A``, 27 -> ``AA``."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


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
        if all(row_number(r) <= rows and c <= columns for r, c in wells):
            return size
    worst = max(wells, key=lambda rc: (row_number(rc[0]), rc[1]))
    raise InputError(f"well {worst[0]}{worst[1]:02d} lies outside a 1536-well plate")


def parse_concentration(text: str, where: str) -> float | None:
    """A concentration cell: a finite number >= 0, or ``None`` when blank.

    Raises
    ------
    InputError
        Not a number, negative or not finite; the message starts with ``where``.
    """
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{where}: {text!r} must be a finite number >= 0")
    return value
