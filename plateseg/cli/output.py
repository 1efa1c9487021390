"""Terminal output shared by the commands: consoles, JSON arguments, plate grids.

Both consoles print text as it is (``markup=False``): experiment ids, file and plate
names, layout wells and error messages are user data, and ``Plate [old]`` or a well
``[/b]`` must reach the terminal unchanged, never as Rich markup. Styled output is
built with :class:`rich.text.Text` (``Text.assemble(("error:", "bold red"), " ", msg)``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from plateseg.contracts import DEFAULT_SEGMENTER
from plateseg.errors import InputError

__all__ = ["RECIPE_HELP", "console", "err_console", "load_json_argument", "plate_grid"]

console = Console(highlight=False, markup=False)
err_console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)

#: Help of every ``--recipe`` option, naming the segmenter a recipe without one gets.
RECIPE_HELP = f"Recipe as JSON or @FILE (default: segmenter {DEFAULT_SEGMENTER!r})."


def load_json_argument(value: str, what: str) -> Any:
    """Parse ``value`` as inline JSON or, with a leading ``@``, as a JSON file.

    Raises
    ------
    InputError
        Naming the option and the problem (missing file, bad JSON with position).
    """
    source = "inline JSON"
    text = value
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{what}: cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{what}: {source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _well_sort_key(well: str) -> tuple[str, int]:
    row = "".join(ch for ch in well if ch.isalpha())
    col = "".join(ch for ch in well if ch.isdigit())
    return (row, int(col or 0))


def plate_grid(title: str, values: dict[str, Any], fmt: str = "{}") -> Table:
    """A plate-shaped table: rows A…, columns 1…, one value per well (blank if none).

    Parameters
    ----------
    title : str
        Table title, e.g. the plate and metric.
    values : dict of str to Any
        Well (``"B03"``) → value.
    fmt : str
        Format of each value.
    """
    rows = sorted({_well_sort_key(w)[0] for w in values}, key=lambda r: (len(r), r))
    cols = sorted({_well_sort_key(w)[1] for w in values})
    table = Table(title=title, show_lines=False, pad_edge=False)
    table.add_column("", style="bold")
    for col in cols:
        table.add_column(str(col), justify="right")
    for row in rows:
        cells = []
        for col in cols:
            value = values.get(f"{row}{col:02d}")
            cells.append("" if value is None else fmt.format(value))
        table.add_row(row, *cells)
    return table
