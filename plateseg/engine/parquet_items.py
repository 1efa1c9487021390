"""ItemReader ``InputType: PARQUET``: one item per row of an Apache Parquet file.

Source: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
(``InputType`` accepts ``PARQUET``; section "Reading input from Parquet files": a row
group may be at most 256 MB and the footer at most 5 MB, larger ones fail the read).

Each row becomes a JSON object keyed by column name, in column order. The page does
not say how typed columns become JSON; the engine chooses, and says so here:
integers, floats, booleans, strings and nulls stay as they are; lists and structs nest
as arrays and objects, a map column becomes an object (keys as strings); a timestamp
becomes integer epoch milliseconds (UTC); a date, a time of day and a duration become
ISO 8601 strings (``2025-01-31``, ``12:30:00``, seconds as a number for durations);
a decimal becomes a JSON number; binary becomes base64 text; NaN and ±infinity, which
JSON cannot hold, become ``null``.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from plateseg.errors import StatesError

__all__ = ["MAX_FOOTER_BYTES", "MAX_ROW_GROUP_BYTES", "read_parquet"]

#: AWS's limits on the Parquet files an ItemReader reads.
MAX_ROW_GROUP_BYTES = 256 * 1024 * 1024
MAX_FOOTER_BYTES = 5 * 1024 * 1024


def _failed(message: str) -> StatesError:
    return StatesError("States.ItemReaderFailed", message)


def _json_value(value: Any) -> Any:
    """A value as pyarrow's ``to_pylist`` gives it → its JSON form (see the module doc)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def read_parquet(body: bytes, where: str, limit: int | None) -> list[dict[str, Any]]:
    """The rows of the Parquet file ``body`` (read from ``where``) as JSON objects.

    Parameters
    ----------
    limit : int or None
        ``MaxItems``: stop after this many rows (later row groups are not read).

    Raises
    ------
    StatesError
        ``States.ItemReaderFailed`` when ``body`` is not a Parquet file, or its footer
        or a row group is over AWS's limit.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(body))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _failed(f"{where} is not a Parquet file: {exc}") from None
    metadata = parquet.metadata
    if metadata.serialized_size > MAX_FOOTER_BYTES:
        raise _failed(
            f"{where}: the Parquet footer is {metadata.serialized_size} bytes, "
            f"over the {MAX_FOOTER_BYTES} bytes Step Functions reads"
        )
    for index in range(metadata.num_row_groups):
        size = metadata.row_group(index).total_byte_size
        if size > MAX_ROW_GROUP_BYTES:
            raise _failed(
                f"{where}: Parquet row group {index} is {size} bytes, over the "
                f"{MAX_ROW_GROUP_BYTES} bytes Step Functions reads"
            )
    items: list[dict[str, Any]] = []
    try:
        for index in range(metadata.num_row_groups):
            for row in parquet.read_row_group(index).to_pylist(maps_as_pydicts="lossy"):
                items.append({str(k): _json_value(v) for k, v in row.items()})
                if limit is not None and len(items) >= limit:
                    return items
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _failed(f"{where}: cannot read Parquet rows: {exc}") from None
    return items
