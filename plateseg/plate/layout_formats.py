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

from plateseg.errors import InputError
from plateseg.plate.layout_model import PLATE_FORMATS, parse_concentration, row_number

__all__ = ["ANNOTATIONS", "cell_concentration", "check_on_plate", "parse_role", "trimmed"]

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


def cell_concentration(text: str, where: str, delimiter: str) -> float | None:
    """A concentration cell: ``None`` when blank; a decimal comma in a ``;`` file."""
    value = text.strip()
    if value.lower() in _BLANK_NUMBERS:
        return None
    if delimiter == ";":
        value = value.replace(",", ".")
    return parse_concentration(value, where)


def trimmed(record: list[str]) -> list[str]:
    """The record's cells stripped, without empty cells at its end."""
    cells = [cell.strip() for cell in record]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def check_on_plate(row: str, column: int, plate_format: int | None, where: str, text: str) -> None:
    """An ``InputError`` at ``where`` when the well is not on a plate of ``plate_format``."""
    size = plate_format or 1536
    rows, columns = PLATE_FORMATS[size]
    if row_number(row) > rows or column > columns:
        raise InputError(f"{where}: {text!r} is not on a {size}-well plate")
