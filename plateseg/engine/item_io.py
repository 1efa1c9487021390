"""Distributed Map I/O: ItemReader (S3 getObject / listObjectsV2) and ResultWriter.

``getObject`` reads a JSON array, JSON Lines, CSV, or (``InputType: MANIFEST``) an
S3 Inventory report through :mod:`plateseg.engine.inventory`.

The stores come from the engine's ``buckets`` seam, so a local folder answers for a
bucket. ResultWriter writes AWS's layout::

    <Prefix>/<MapRunId>/manifest.json
    <Prefix>/<MapRunId>/SUCCEEDED_0.json   (JSON array of child-execution records)
    <Prefix>/<MapRunId>/FAILED_0.json
    <Prefix>/<MapRunId>/PENDING_0.json     (children never started: threshold, abort)

splitting a status's records over several files past :data:`RESULT_FILE_LIMIT` bytes
(AWS splits at 5 GB).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from plateseg.engine.inventory import read_inventory
from plateseg.engine.map_config import MAX_ITEMS_LIMIT
from plateseg.engine.paths import read_path
from plateseg.engine.templates import evaluate_template
from plateseg.errors import PlatesegError, StatesError

__all__ = ["RESULT_FILE_LIMIT", "read_items", "split_csv", "write_results"]

#: Largest result file written before starting the next one (bytes of JSON).
RESULT_FILE_LIMIT = 64 * 1024 * 1024

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


def _parse_object(body: bytes, config: Mapping[str, Any], where: str) -> list[Any]:
    kind = config.get("InputType")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _reader_failed(f"{where} is not UTF-8 text: {exc}") from None
    if kind == "JSON":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _reader_failed(f"{where} is not JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(items, list):
            raise _reader_failed(f"{where} must hold a JSON array, got {type(items).__name__}")
        return items
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
        ``States.ItemReaderFailed`` when the object is missing or malformed.
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
            items: list[Any] = []
            for info in store.list(str(params.get("Prefix", ""))):
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
                    break
            return items
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
    items = _parse_object(body, config, f"s3://{bucket}/{key}")
    return items[:limit] if limit is not None else items


def _chunks(records: list[dict[str, Any]], limit: int) -> list[bytes]:
    files: list[bytes] = []
    current: list[bytes] = []
    size = 2
    for record in records:
        encoded = json.dumps(record, separators=(",", ":")).encode()
        if current and size + len(encoded) + 1 > limit:
            files.append(b"[" + b",".join(current) + b"]")
            current, size = [], 2
        current.append(encoded)
        size += len(encoded) + 1
    if current:
        files.append(b"[" + b",".join(current) + b"]")
    return files


def write_results(
    writer: Mapping[str, Any],
    data: Any,
    context: Any,
    buckets: Buckets,
    map_run_arn: str,
    map_run_id: str,
    records: Mapping[str, list[dict[str, Any]]],
    file_limit: int = RESULT_FILE_LIMIT,
) -> dict[str, Any]:
    """Write the manifest and result files; return the Map's result.

    Parameters
    ----------
    records : mapping
        ``{"SUCCEEDED": [...], "FAILED": [...], "PENDING": [...]}`` child-execution
        records in item order; a status without records gets no file.

    Returns
    -------
    dict
        ``{"MapRunArn": ..., "ResultWriterDetails": {"Bucket": ..., "Key": ...}}``.

    Raises
    ------
    StatesError
        ``States.ResultWriterFailed`` when the store refuses a write.
    """
    params = evaluate_template(writer.get("Parameters", {}), data, context)
    bucket = params.get("Bucket")
    prefix = params.get("Prefix", "")
    if not isinstance(bucket, str) or not isinstance(prefix, str):
        raise StatesError(
            "States.ResultWriterFailed",
            f"ResultWriter Bucket and Prefix must be strings, got {params!r}",
        )
    base = f"{prefix.strip('/')}/{map_run_id}" if prefix.strip("/") else map_run_id
    manifest_key = f"{base}/manifest.json"
    result_files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    try:
        store = buckets(bucket)
        store.delete_prefix(f"{base}/")
        for status in ("SUCCEEDED", "FAILED", "PENDING"):
            for index, body in enumerate(_chunks(list(records.get(status, [])), file_limit)):
                key = f"{base}/{status}_{index}.json"
                store.put_bytes(key, body, content_type="application/json")
                result_files[status].append({"Key": key, "Size": len(body)})
        manifest = {
            "DestinationBucket": bucket,
            "MapRunArn": map_run_arn,
            "ResultFiles": result_files,
        }
        store.put_bytes(
            manifest_key, json.dumps(manifest).encode(), content_type="application/json"
        )
    except PlatesegError as exc:
        raise StatesError(
            "States.ResultWriterFailed", f"cannot write Map Run results to bucket {bucket!r}: {exc}"
        ) from exc
    return {
        "MapRunArn": map_run_arn,
        "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
    }
