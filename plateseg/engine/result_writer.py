"""Distributed Map ResultWriter: ``WriterConfig`` transformations and the files in S3.

Source: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html

``WriterConfig.Transformation`` says what each child execution contributes:

- ``NONE``: its whole execution record (``ExecutionArn``, ``Input``, ``Output`` as a JSON
  string, dates, status …) — the default when results are exported to S3 and there is
  no ``WriterConfig``;
- ``COMPACT``: its output — the default when there is no ``ResultWriter`` (the Map
  state's result is then the array of outputs);
- ``FLATTEN``: its output, and an output that is an array contributes its elements
  (one level).

A child execution that failed (or never started) contributes its record unchanged
whatever the transformation ("the results would be equivalent to having set
Transformation to NONE"). ``WriterConfig.OutputType`` formats the files: ``JSON``
(one array per file) or ``JSONL`` (one JSON value per line).

Which fields a ResultWriter has decides where the results go: ``WriterConfig`` alone
formats them as the Map state's result (no S3 object is written); ``Resource`` and
``Parameters`` (``Arguments`` in JSONata) export them to S3; all three format and
export. Exported results follow AWS's layout::

    <Prefix>/<MapRunId>/manifest.json
    <Prefix>/<MapRunId>/SUCCEEDED_0.json   (.jsonl with OutputType JSONL)
    <Prefix>/<MapRunId>/FAILED_0.json
    <Prefix>/<MapRunId>/PENDING_0.json     (children never started: threshold, abort)

a status's results split over several files past :data:`RESULT_FILE_LIMIT` bytes (AWS
splits at 5 GB), and the Map state's result is ``{"MapRunArn", "ResultWriterDetails":
{"Bucket", "Key"}}`` with the manifest's key.

Where the page is silent the engine chooses, and says so here: without a
``Transformation`` a ``WriterConfig`` that exports uses ``NONE`` and one that only
formats uses ``COMPACT`` (the two documented defaults); as the Map state's result a
``JSONL`` output type still gives an array (a state's output is one JSON value); JSONL
result files are named ``<STATUS>_<n>.jsonl``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from plateseg.engine.templates import evaluate_template
from plateseg.errors import PlatesegError, StatesError

__all__ = [
    "OUTPUT_TYPES",
    "RESULT_FILE_LIMIT",
    "TRANSFORMATIONS",
    "exports",
    "transform_results",
    "transformation",
    "write_results",
]

#: Largest result file written before starting the next one (bytes).
RESULT_FILE_LIMIT = 64 * 1024 * 1024

OUTPUT_TYPES = ("JSON", "JSONL")
TRANSFORMATIONS = ("NONE", "COMPACT", "FLATTEN")

Buckets = Callable[[str], Any]

_JSON = json.JSONEncoder(separators=(",", ":"))


def exports(writer: Mapping[str, Any] | None) -> bool:
    """Whether the ResultWriter writes to S3 (it has a ``Resource``)."""
    return writer is not None and "Resource" in writer


def transformation(writer: Mapping[str, Any] | None) -> str:
    """The ``Transformation`` in force: the ``WriterConfig`` one or the documented default."""
    if writer is None:
        return "COMPACT"
    config = writer.get("WriterConfig") or {}
    default = "NONE" if exports(writer) else "COMPACT"
    return str(config.get("Transformation", default))


def _output_type(writer: Mapping[str, Any]) -> str:
    return str((writer.get("WriterConfig") or {}).get("OutputType", "JSON"))


def transform_results(results: Iterable[Mapping[str, Any]], how: str) -> list[Any]:
    """What each child execution contributes under transformation ``how``, in order.

    Parameters
    ----------
    results : iterable of mapping
        ``{"Status", "record", "output"}`` per child execution: its status, its
        execution record and (when it succeeded) its output.
    how : str
        ``NONE``, ``COMPACT`` or ``FLATTEN``.
    """
    out: list[Any] = []
    for result in results:
        if result["Status"] != "SUCCEEDED" or how == "NONE":
            out.append(result["record"])
        elif how == "FLATTEN" and isinstance(result["output"], list):
            out.extend(result["output"])
        else:
            out.append(result["output"])
    return out


def _files(values: Sequence[Any], output_type: str, limit: int) -> list[bytes]:
    """Encode ``values`` as JSON arrays or JSON Lines, starting a new file past ``limit``."""
    jsonl = output_type == "JSONL"
    files: list[bytes] = []
    current: list[bytes] = []
    size = 0 if jsonl else 2
    for value in values:
        encoded = _JSON.encode(value).encode()
        if current and size + len(encoded) + 1 > limit:
            files.append(_join(current, jsonl))
            current, size = [], 0 if jsonl else 2
        current.append(encoded)
        size += len(encoded) + 1
    if current:
        files.append(_join(current, jsonl))
    return files


def _join(encoded: list[bytes], jsonl: bool) -> bytes:
    if jsonl:
        return b"".join(line + b"\n" for line in encoded)
    return b"[" + b",".join(encoded) + b"]"


def write_results(
    writer: Mapping[str, Any],
    data: Any,
    context: Any,
    buckets: Buckets,
    map_run_arn: str,
    map_run_id: str,
    results: Mapping[str, Sequence[Mapping[str, Any]]],
    file_limit: int = RESULT_FILE_LIMIT,
) -> dict[str, Any]:
    """Write the manifest and result files; return the Map's result.

    Parameters
    ----------
    writer : mapping
        The ``ResultWriter`` field (its ``Parameters`` are evaluated on ``data``).
    results : mapping
        ``{"SUCCEEDED": [...], "FAILED": [...], "PENDING": [...]}``: per child
        execution ``{"Status", "record", "output"}``, in item order; a status without
        results gets no file.

    Returns
    -------
    dict
        ``{"MapRunArn": ..., "ResultWriterDetails": {"Bucket": ..., "Key": ...}}``.

    Raises
    ------
    StatesError
        ``States.ResultWriterFailed`` when the bucket or prefix is not a string or the
        store refuses a write.
    """
    params = evaluate_template(writer.get("Parameters", {}), data, context)
    bucket = params.get("Bucket") if isinstance(params, dict) else None
    prefix = params.get("Prefix", "") if isinstance(params, dict) else None
    if not isinstance(bucket, str) or not isinstance(prefix, str):
        raise StatesError(
            "States.ResultWriterFailed",
            f"ResultWriter Bucket and Prefix must be strings, got {params!r}",
        )
    how, output_type = transformation(writer), _output_type(writer)
    extension = "jsonl" if output_type == "JSONL" else "json"
    base = f"{prefix.strip('/')}/{map_run_id}" if prefix.strip("/") else map_run_id
    manifest_key = f"{base}/manifest.json"
    result_files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    try:
        store = buckets(bucket)
        store.delete_prefix(f"{base}/")
        for status in ("SUCCEEDED", "FAILED", "PENDING"):
            values = transform_results(results.get(status, []), how)
            for index, body in enumerate(_files(values, output_type, file_limit)):
                key = f"{base}/{status}_{index}.{extension}"
                content_type = "application/jsonl" if extension == "jsonl" else "application/json"
                store.put_bytes(key, body, content_type=content_type)
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
