"""ItemReader ``InputType: MANIFEST``: items from an Amazon S3 Inventory report.

The ItemReader's object is the report's ``manifest.json``. Step Functions reads each
data file it lists (``files[].key``, gzip-compressed CSV without a header) from the
report's destination bucket and makes one item per row: an object keyed by the field
names of ``fileSchema`` with the row's values, as strings, e.g.
``{"Bucket": "src", "Key": "a.csv", "Size": "3399671", "LastModifiedDate": "…"}``.
Only CSV reports are supported (AWS: "make sure that the output format of your
Amazon S3 inventory report is CSV"); ORC and Parquet fail with
``States.ItemReaderFailed``.

Source: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
(section "S3 inventory manifest file") and the S3 Inventory manifest layout,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory-location.html.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable
from typing import Any

from plateseg.errors import PlatesegError, StatesError

__all__ = ["read_inventory"]


def _failed(message: str) -> StatesError:
    return StatesError("States.ItemReaderFailed", message)


def _bucket_name(value: Any, where: str) -> str:
    """``arn:aws:s3:::name`` (as S3 Inventory writes it) or a plain name → ``name``."""
    if not isinstance(value, str) or not value.strip():
        raise _failed(f"{where}: destinationBucket must be a non-empty string, got {value!r}")
    name = value.rsplit(":::", 1)[-1] if value.startswith("arn:") else value
    if not name or "/" in name:
        raise _failed(f"{where}: destinationBucket {value!r} is not a bucket name or S3 ARN")
    return name


def _parse_manifest(body: bytes, where: str) -> tuple[str, list[str], list[str]]:
    """Return ``(destination bucket, schema field names, data file keys)``."""
    try:
        manifest = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _failed(f"{where} is not an S3 Inventory manifest (not JSON: {exc})") from None
    if not isinstance(manifest, dict):
        raise _failed(f"{where} must hold a JSON object, got {type(manifest).__name__}")
    required = ("destinationBucket", "fileFormat", "fileSchema", "files")
    missing = [key for key in required if key not in manifest]
    if missing:
        raise _failed(f"{where} is not an S3 Inventory manifest: missing {missing}")
    file_format = manifest["fileFormat"]
    if file_format != "CSV":
        raise _failed(
            f"{where}: S3 Inventory fileFormat {file_format!r} is not supported; "
            "Step Functions reads CSV inventory reports only"
        )
    schema = manifest["fileSchema"]
    if not isinstance(schema, str) or not schema.strip():
        raise _failed(f"{where}: fileSchema must be a non-empty string, got {schema!r}")
    fields = [name.strip() for name in schema.split(",")]
    if any(not name for name in fields) or len(set(fields)) != len(fields):
        raise _failed(f"{where}: fileSchema {schema!r} has empty or duplicate field names")
    files = manifest["files"]
    if not isinstance(files, list):
        raise _failed(f"{where}: files must be an array, got {type(files).__name__}")
    keys = []
    for number, entry in enumerate(files):
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not key:
            raise _failed(f"{where}: files[{number}] needs a string key, got {entry!r}")
        keys.append(key)
    return _bucket_name(manifest["destinationBucket"], where), fields, keys


def _rows(body: bytes, where: str) -> list[list[str]]:
    try:
        text = gzip.decompress(body).decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise _failed(f"{where} is not gzip-compressed UTF-8 CSV: {exc}") from None
    try:
        return [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise _failed(f"{where}: malformed CSV: {exc}") from None


def read_inventory(
    body: bytes, where: str, buckets: Callable[[str], Any], limit: int | None
) -> list[dict[str, str]]:
    """Items of the S3 Inventory report whose ``manifest.json`` is ``body``.

    Parameters
    ----------
    body : bytes
        The manifest's bytes, read from ``where`` (an ``s3://bucket/key`` label).
    buckets : callable
        Bucket name → store; data files are read from the manifest's destination bucket.
    limit : int or None
        ``MaxItems``: stop after this many items (later files are not read).

    Raises
    ------
    StatesError
        ``States.ItemReaderFailed`` for a malformed manifest, a non-CSV report, or a
        data file that is missing or not gzip CSV.
    """
    bucket, fields, keys = _parse_manifest(body, where)
    width = len(fields)
    items: list[dict[str, str]] = []
    for key in keys:
        location = f"s3://{bucket}/{key}"
        try:
            data = buckets(bucket).get_bytes(key)
        except PlatesegError as exc:
            raise _failed(f"cannot read inventory data file {location}: {exc}") from exc
        for row in _rows(data, location):
            # As for CSV items: missing trailing fields become "", extra ones are skipped.
            items.append(dict(zip(fields, row[:width] + [""] * (width - len(row)), strict=True)))
            if limit is not None and len(items) >= limit:
                return items
    return items
