"""What two runs of the same work may differ in when their database rows are compared.

Timestamps (``*_at``), the cost estimate and ``child_seconds`` in ``parameters_json``
are clock readings (the run is priced on how long its children took); every other column
must be equal for the results to count as identical.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def is_clock_column(name: str) -> bool:
    """A column read from the clock: left out of row comparisons."""
    return name.endswith("_at") or name == "cost_estimate_usd"


def without_clock(columns: Sequence[str], row: Sequence[Any]) -> tuple[Any, ...]:
    """``row`` with the clock readings inside JSON columns removed."""
    return tuple(_value(column, value) for column, value in zip(columns, row, strict=True))


def _value(column: str, value: Any) -> Any:
    if column == "parameters_json" and isinstance(value, str):
        parameters = json.loads(value)
        parameters.pop("child_seconds", None)
        return json.dumps(parameters, sort_keys=True)
    return value
