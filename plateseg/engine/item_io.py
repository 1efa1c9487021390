"""Distributed Map ItemReader: the items of ``s3:getObject`` and ``s3:listObjectsV2``.

Source: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html

``getObject`` reads one object as its ``ReaderConfig.InputType`` says: a JSON array (or,
with ``ItemsPointer``, the array a JSON Pointer selects inside a JSON object), JSON
Lines, CSV (by :func:`split_csv`), Parquet (:mod:`plateseg.engine.parquet_items`), or
an S3 Inventory report (``MANIFEST``, :mod:`plateseg.engine.inventory`).
``listObjectsV2`` lists a prefix: each object's metadata is an item, or with
``ReaderConfig.Transformation: LOAD_AND_FLATTEN`` each listed object is read as
``InputType`` says and its items follow one another in key order. ``MaxItems`` counts
items, whichever way they are read. Results are written by
:mod:`plateseg.engine.result_writer`.

The stores come from the engine's ``buckets`` seam, so a local folder answers for a
bucket.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from plateseg.engine.inventory import read_inventory
from plateseg.engine.map_config import MAX_ITEMS_LIMIT
from plateseg.engine.parquet_items import read_parquet
from plateseg.engine.paths import read_path
from plateseg.engine.templates import evaluate_template
from plateseg.errors import PlatesegError, StatesError

__all__ = ["read_items", "resolve_pointer", "split_csv"]

Buckets = Callable[[str], Any]


#: Step Functions reads CSV headers of up to 10 KiB.
CSV_HEADER_LIMIT = 10 * 1024


def _reader_failed(message: str) -> StatesError:
    return StatesError("States.ItemReaderFailed", message)


def _max_items(config: Mapping[str, Any], data: Any, context: Any) -> int | None:
    """The ``MaxItems`` limit, or ``None`` to read every item.

    As AWS: ``0`` reads every item, a limit above :data:`MAX_ITEMS_LIMIT` reads that
    many; a ``MaxItemsPath`` value that is not an integer fails with
    ``States.Runtime``, a negative one with ``States.ItemReaderFailed``.
    """
    if "MaxItemsPath" in config:
        path = config["MaxItemsPath"]
        value = read_path(data, path, context=context, field="MaxItemsPath")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not float(value).is_integer()
        ):
            raise StatesError(
                "States.Runtime",
                f"The MaxItemsPath field refers to value {value!r} "
                f"which is not a valid integer: {path}",
            )
        if value < 0:
            raise _reader_failed(f"field MaxItems must be positive, got {value!r} from {path}")
    else:
        value = config.get("MaxItems", 0)
    return min(int(value), MAX_ITEMS_LIMIT) or None


def split_csv(text: str, delimiter: str = ",") -> list[list[str]]:
    r"""Split delimited text into records of fields, by Step Functions' CSV rules.

    The rules of https://docs.aws.amazon.com/step-functions/latest/dg/example-csv-parse-dist-map.html:
    newlines end records (outside quotes); a field that starts with ``"`` runs to
    the closing ``"`` and may hold delimiters and newlines; ``""`` inside it is one
    ``"``; a backslash escapes a backslash, a ``"`` or the delimiter, anywhere, and
    before any other character the backslash alone is dropped. Empty lines hold no
    record.

    >>> split_csv('a,b\n"x,y",p\\,q\n')
    [['a', 'b'], ['x,y', 'p,q']]
    >>> split_csv('C:\\\\Program Files\\\\App.exe|say \\"hi\\"', "|")
    [['C:\\Program Files\\App.exe', 'say "hi"']]
    """
    records: list[list[str]] = []
    record: list[str] = []
    field: list[str] = []
    quoted = started = False  # inside "..."; the current record has begun
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        i += 1
        if c == "\\":
            started = True
            if i < n and text[i] in ("\\", '"', delimiter):
                field.append(text[i])
                i += 1
            continue  # before anything else the backslash is dropped
        if quoted:
            if c == '"':
                if i < n and text[i] == '"':
                    field.append('"')
                    i += 1
                else:
                    quoted = False
            else:
                field.append(c)
            continue
        if c in "\r\n":
            if c == "\r" and i < n and text[i] == "\n":
                i += 1
            if started:
                record.append("".join(field))
                records.append(record)
            record, field, started = [], [], False
        elif c == delimiter:
            record.append("".join(field))
            field, started = [], True
        elif c == '"' and not field:
            quoted = started = True
        else:
            field.append(c)
            started = True
    if started:
        record.append("".join(field))
        records.append(record)
    return records


def resolve_pointer(document: Any, pointer: str, where: str) -> Any:
    """The value JSON Pointer ``pointer`` (RFC 6901) selects in ``document``.

    ``""`` selects the whole document; ``/a/0`` the first element of member ``a``;
    ``~1`` and ``~0`` in a token stand for ``/`` and ``~``.

    >>> resolve_pointer({"data": {"items": [1, 2]}}, "/data/items", "x")
    [1, 2]
    >>> resolve_pointer({"a/b": [{"~": 3}]}, "/a~1b/0/~0", "x")
    3

    Raises
    ------
    StatesError
        ``States.ItemReaderFailed`` when a token names nothing.
    """
    value = document
    if pointer == "":
        return value
    for token in pointer[1:].split("/"):
        name = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and name in value:
            value = value[name]
        elif (
            isinstance(value, list)
            and name.isdigit()
            and (name == "0" or not name.startswith("0"))
            and int(name) < len(value)
        ):
            value = value[int(name)]
        else:
            raise _reader_failed(
                f"{where}: ItemsPointer {pointer!r} selects nothing (no {name!r} "
                f"in a JSON {type(value).__name__})"
            )
    return value


def _parse_json(text: str, config: Mapping[str, Any], where: str) -> list[Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _reader_failed(f"{where} is not JSON: {exc.msg} at line {exc.lineno}") from None
    pointer = config.get("ItemsPointer")
    if pointer is not None:
        items = resolve_pointer(document, str(pointer), where)
        if not isinstance(items, list):
            raise _reader_failed(
                f"{where}: ItemsPointer {pointer!r} must select a JSON array, "
                f"got {type(items).__name__}"
            )
        return items
    if not isinstance(document, list):
        hint = (
            " (select an array inside it with ItemsPointer)" if isinstance(document, dict) else ""
        )
        raise _reader_failed(f"{where} must hold a JSON array, got {type(document).__name__}{hint}")
    return document


def _parse_object(
    body: bytes, config: Mapping[str, Any], where: str, limit: int | None
) -> list[Any]:
    """The items of one object's bytes, as ``InputType`` says (not ``MANIFEST``)."""
    kind = config.get("InputType")
    if kind == "PARQUET":
        return read_parquet(body, where, limit)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _reader_failed(f"{where} is not UTF-8 text: {exc}") from None
    if kind == "JSON":
        return _parse_json(text, config, where)
    if kind == "JSONL":
        out = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise _reader_failed(f"{where}:{number}: not JSON: {exc.msg}") from None
        return out
    delimiter = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}.get(
        config.get("CSVDelimiter", "COMMA"), ","
    )
    rows = split_csv(text, delimiter)
    if config.get("CSVHeaderLocation") == "GIVEN":
        headers = [str(h) for h in config.get("CSVHeaders", [])]
    else:
        if not rows:
            return []
        headers, rows = rows[0], rows[1:]
    if len(set(headers)) != len(headers):
        duplicates = sorted({h for h in headers if headers.count(h) > 1})
        raise _reader_failed(f"{where}: duplicate CSV header(s) {duplicates}")
    if len(delimiter.join(headers).encode()) > CSV_HEADER_LIMIT:
        raise _reader_failed(f"{where}: the CSV header is over {CSV_HEADER_LIMIT} bytes")
    # AWS: missing trailing fields become "", fields beyond the header are skipped.
    width = len(headers)
    return [
        dict(zip(headers, row[:width] + [""] * (width - len(row)), strict=True))
        for row in rows
        if row
    ]


def _listed(
    store: Any, bucket: str, prefix: str, config: Mapping[str, Any], limit: int | None
) -> list[Any]:
    """The items of ``listObjectsV2``: object metadata, or with ``LOAD_AND_FLATTEN``
    the items of every listed object, read as ``InputType`` says, in key order.

    The page does not say what ``LOAD_AND_FLATTEN`` does with a folder marker (a key
    ending in ``/``, which holds no data); the engine skips it.
    """
    items: list[Any] = []
    load = config.get("Transformation") == "LOAD_AND_FLATTEN"
    for info in store.list(prefix):
        if load:
            if info.key.endswith("/"):
                continue
            left = None if limit is None else limit - len(items)
            where = f"s3://{bucket}/{info.key}"
            items.extend(_parse_object(store.get_bytes(info.key), config, where, left))
        else:
            items.append(
                {
                    "Etag": info.etag,
                    "Key": info.key,
                    "LastModified": int(info.last_modified.timestamp()),
                    "Size": info.size,
                    "StorageClass": "STANDARD",
                }
            )
        if limit is not None and len(items) >= limit:
            return items[:limit]
    return items


def read_items(reader: Mapping[str, Any], data: Any, context: Any, buckets: Buckets) -> list[Any]:
    """Read a Distributed Map's items as its ItemReader says.

    Parameters
    ----------
    reader : mapping
        The ``ItemReader`` field.
    data : Any
        The Map state's effective input (``Parameters`` paths read from it).
    context : dict
        The ``$$`` context object.
    buckets : callable
        Bucket name → store.

    Raises
    ------
    StatesError
        ``States.ItemReaderFailed`` when an object is missing or malformed.
    """
    params = evaluate_template(reader.get("Parameters", {}), data, context)
    config = reader.get("ReaderConfig", {})
    limit = _max_items(config, data, context)
    bucket = params.get("Bucket")
    if not isinstance(bucket, str):
        raise _reader_failed(f"ItemReader Parameters.Bucket must be a string, got {bucket!r}")
    try:
        store = buckets(bucket)
        if reader["Resource"].endswith(":listObjectsV2"):
            return _listed(store, bucket, str(params.get("Prefix", "")), config, limit)
        key = params.get("Key")
        if not isinstance(key, str):
            raise _reader_failed(f"ItemReader Parameters.Key must be a string, got {key!r}")
        body = store.get_bytes(key)
    except PlatesegError as exc:
        if isinstance(exc, StatesError):
            raise
        raise _reader_failed(f"cannot read items from bucket {bucket!r}: {exc}") from exc
    if config.get("InputType") == "MANIFEST":
        return read_inventory(body, f"s3://{bucket}/{key}", buckets, limit)
    items = _parse_object(body, config, f"s3://{bucket}/{key}", limit)
    return items[:limit] if limit is not None else items
