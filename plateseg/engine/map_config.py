"""Structural checks of a Map state's configuration (reader, batcher, writer, limits).

Called by :mod:`plateseg.engine.definition`; each problem names its JSON pointer. The AWS
limits of the Map settings come from their owner, :mod:`plateseg.map_settings`. Sources:
https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html and
https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html.

Refused by name (the engine does not run them): ``ReaderConfig.ManifestType`` — Athena
data manifests (``ATHENA_DATA``), whose file layout the engine does not know from
AWS's documentation; S3 Inventory reports are read with ``InputType: MANIFEST``.
"""

from __future__ import annotations

from typing import Any

from plateseg.engine.paths import path_problem
from plateseg.engine.result_writer import OUTPUT_TYPES, TRANSFORMATIONS
from plateseg.engine.templates import template_problems
from plateseg.map_settings import MAX_BATCH_BYTES, MAX_CONCURRENCY

__all__ = ["MAX_ITEMS_LIMIT", "check_map_config"]

#: The most items a Distributed Map reads (``MaxItems`` up to this; more are not read), and
#: AWS's bound on ``MaxItemsPerBatch`` (plateseg's own Map settings cap it lower).
MAX_ITEMS_LIMIT = 100_000_000

_S3 = "arn:aws:states:::s3:"
_READER_FIELDS = {"Resource", "ReaderConfig", "Parameters"}
_READER_CONFIG = {
    "InputType",
    "MaxItems",
    "MaxItemsPath",
    "CSVHeaderLocation",
    "CSVHeaders",
    "CSVDelimiter",
    "ItemsPointer",
    "Transformation",
}
_INPUT_TYPES = ("JSON", "JSONL", "CSV", "PARQUET", "MANIFEST")
#: What ``LOAD_AND_FLATTEN`` can read from each listed object.
_LOADABLE = ("JSON", "JSONL", "CSV", "PARQUET")
_BATCHER_FIELDS = {
    "MaxItemsPerBatch",
    "MaxItemsPerBatchPath",
    "MaxInputBytesPerBatch",
    "MaxInputBytesPerBatchPath",
    "BatchInput",
}
_WRITER_FIELDS = {"Resource", "Parameters", "WriterConfig"}
_DISTRIBUTED_ONLY = (
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "Label",
)


def _unknown(raw: dict[str, Any], allowed: set[str], at: str, problems: list[str]) -> None:
    problems.extend(f"{at}/{key}: unsupported field" for key in raw if key not in allowed)


def _int_field(
    raw: dict[str, Any], key: str, at: str, low: int, high: int, problems: list[str]
) -> None:
    if key in raw:
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"{at}/{key}: must be an integer from {low} to {high}, got {value!r}")
    path_key = f"{key}Path"
    if path_key in raw:
        if key in raw:
            problems.append(f"{at}: {key} and {path_key} are mutually exclusive")
        problem = path_problem(raw[path_key])
        if problem:
            problems.append(f"{at}/{path_key}: {problem}")


def _check_reader(reader: Any, at: str, problems: list[str]) -> None:
    if not isinstance(reader, dict):
        problems.append(f"{at}: ItemReader must be an object")
        return
    _unknown(reader, _READER_FIELDS, at, problems)
    resource = reader.get("Resource")
    if resource not in (f"{_S3}getObject", f"{_S3}listObjectsV2"):
        problems.append(
            f"{at}/Resource: unsupported ItemReader resource {resource!r} "
            f"(supported: {_S3}getObject, {_S3}listObjectsV2)"
        )
    params = reader.get("Parameters")
    if not isinstance(params, dict) or not ({"Bucket", "Bucket.$"} & set(params)):
        problems.append(f"{at}/Parameters: needs Bucket")
    else:
        problems.extend(template_problems(params, f"{at}/Parameters"))
        if resource == f"{_S3}getObject" and not ({"Key", "Key.$"} & set(params)):
            problems.append(f"{at}/Parameters: s3:getObject needs Key")
    config = reader.get("ReaderConfig", {})
    if not isinstance(config, dict):
        problems.append(f"{at}/ReaderConfig: must be an object")
        return
    at_config = f"{at}/ReaderConfig"
    if "ManifestType" in config:
        problems.append(
            f"{at_config}/ManifestType: not supported by the local engine (Athena data "
            "manifests are not run); for an S3 Inventory report use InputType MANIFEST"
        )
    _unknown(
        {k: v for k, v in config.items() if k != "ManifestType"},
        _READER_CONFIG,
        at_config,
        problems,
    )
    kind = config.get("InputType")
    load = config.get("Transformation", "NONE")
    if load not in ("NONE", "LOAD_AND_FLATTEN"):
        problems.append(
            f"{at_config}/Transformation: must be NONE or LOAD_AND_FLATTEN, got {load!r}"
        )
    elif load == "LOAD_AND_FLATTEN" and resource != f"{_S3}listObjectsV2":
        problems.append(
            f"{at_config}/Transformation: LOAD_AND_FLATTEN loads the objects s3:listObjectsV2 "
            "lists; it does not apply to s3:getObject"
        )
    elif load == "LOAD_AND_FLATTEN" and kind not in _LOADABLE:
        problems.append(
            f"{at_config}/InputType: LOAD_AND_FLATTEN needs the listed objects' InputType, "
            f"one of {', '.join(_LOADABLE)}, got {kind!r}"
        )
    if resource == f"{_S3}getObject" and kind not in _INPUT_TYPES:
        problems.append(
            f"{at_config}/InputType: must be one of {', '.join(_INPUT_TYPES)}, got {kind!r}"
        )
    if "ItemsPointer" in config:
        pointer = config["ItemsPointer"]
        if kind != "JSON":
            problems.append(
                f"{at_config}/ItemsPointer: selects an array inside a JSON object; it needs "
                f"InputType JSON, got {kind!r}"
            )
        elif resource == f"{_S3}listObjectsV2" and load != "LOAD_AND_FLATTEN":
            problems.append(
                f"{at_config}/ItemsPointer: s3:listObjectsV2 reads no JSON unless "
                "Transformation is LOAD_AND_FLATTEN"
            )
        elif not isinstance(pointer, str) or not (pointer == "" or pointer.startswith("/")):
            problems.append(
                f'{at_config}/ItemsPointer: must be a JSON Pointer ("" or starting with '
                f"'/', e.g. \"/data/items\"), got {pointer!r}"
            )
    if kind == "CSV":
        location = config.get("CSVHeaderLocation")
        if location not in ("FIRST_ROW", "GIVEN"):
            problems.append(f"{at_config}/CSVHeaderLocation: must be FIRST_ROW or GIVEN")
        headers = config.get("CSVHeaders")
        if location == "GIVEN" and not (isinstance(headers, list) and headers):
            problems.append(f"{at_config}/CSVHeaders: GIVEN needs a list of headers")
    # AWS: 0 (like no MaxItems) reads every item.
    _int_field(config, "MaxItems", at_config, 0, MAX_ITEMS_LIMIT, problems)


def _check_batcher(batcher: Any, at: str, problems: list[str]) -> None:
    if not isinstance(batcher, dict):
        problems.append(f"{at}: ItemBatcher must be an object")
        return
    _unknown(batcher, _BATCHER_FIELDS, at, problems)
    if not (set(batcher) & (_BATCHER_FIELDS - {"BatchInput"})):
        problems.append(f"{at}: needs MaxItemsPerBatch or MaxInputBytesPerBatch")
    _int_field(batcher, "MaxItemsPerBatch", at, 1, MAX_ITEMS_LIMIT, problems)
    _int_field(batcher, "MaxInputBytesPerBatch", at, 1, MAX_BATCH_BYTES, problems)
    if "BatchInput" in batcher:
        problems.extend(template_problems(batcher["BatchInput"], f"{at}/BatchInput"))


def _check_writer(writer: Any, at: str, problems: list[str]) -> None:
    """AWS's field combinations: ``WriterConfig`` alone (format the Map's result),
    ``Resource`` and ``Parameters`` (export to S3), or all three (format and export)."""
    if not isinstance(writer, dict):
        problems.append(f"{at}: ResultWriter must be an object")
        return
    _unknown(writer, _WRITER_FIELDS, at, problems)
    has_resource, has_params = "Resource" in writer, "Parameters" in writer
    if not (has_resource or has_params or "WriterConfig" in writer):
        problems.append(f"{at}: needs WriterConfig, or Resource and Parameters, or all three")
    elif has_resource != has_params:
        problems.append(f"{at}: Resource and Parameters go together (export to S3)")
    if has_resource and writer.get("Resource") != f"{_S3}putObject":
        problems.append(f"{at}/Resource: ResultWriter supports only {_S3}putObject")
    if has_params:
        params = writer.get("Parameters")
        if not isinstance(params, dict) or not ({"Bucket", "Bucket.$"} & set(params)):
            problems.append(f"{at}/Parameters: needs Bucket (and optionally Prefix)")
        else:
            allowed = {"Bucket", "Bucket.$", "Prefix", "Prefix.$"}
            _unknown(params, allowed, f"{at}/Parameters", problems)
            problems.extend(template_problems(params, f"{at}/Parameters"))
    if "WriterConfig" in writer:
        config = writer["WriterConfig"]
        at_config = f"{at}/WriterConfig"
        if not isinstance(config, dict):
            problems.append(f"{at_config}: must be an object")
            return
        _unknown(config, {"OutputType", "Transformation"}, at_config, problems)
        if config.get("OutputType") not in OUTPUT_TYPES:
            problems.append(
                f"{at_config}/OutputType: needs one of {', '.join(OUTPUT_TYPES)}, "
                f"got {config.get('OutputType')!r}"
            )
        if "Transformation" in config and config["Transformation"] not in TRANSFORMATIONS:
            problems.append(
                f"{at_config}/Transformation: must be one of {', '.join(TRANSFORMATIONS)}, "
                f"got {config['Transformation']!r}"
            )


def check_map_config(raw: dict[str, Any], at: str, mode: str, problems: list[str]) -> None:
    """Append every problem of a Map state's configuration to ``problems``."""
    if mode != "DISTRIBUTED":
        for key in _DISTRIBUTED_ONLY:
            if key in raw:
                problems.append(f"{at}/{key}: only a DISTRIBUTED Map may have {key}")
    if "ItemReader" in raw:
        # An ItemsPath beside ItemReader is accepted and ignored, as AWS does: it only
        # applies to items passed in the state's input.
        _check_reader(raw["ItemReader"], f"{at}/ItemReader", problems)
    if "ItemBatcher" in raw:
        _check_batcher(raw["ItemBatcher"], f"{at}/ItemBatcher", problems)
    if "ResultWriter" in raw:
        _check_writer(raw["ResultWriter"], f"{at}/ResultWriter", problems)
    _int_field(raw, "MaxConcurrency", at, 0, MAX_CONCURRENCY, problems)
    _int_field(raw, "ToleratedFailureCount", at, 0, 100_000_000, problems)
    if "ToleratedFailurePercentage" in raw:
        value = raw["ToleratedFailurePercentage"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            problems.append(f"{at}/ToleratedFailurePercentage: must be a number from 0 to 100")
    if "ToleratedFailurePercentagePath" in raw:
        if "ToleratedFailurePercentage" in raw:
            problems.append(f"{at}: ToleratedFailurePercentage and its Path are exclusive")
        problem = path_problem(raw["ToleratedFailurePercentagePath"])
        if problem:
            problems.append(f"{at}/ToleratedFailurePercentagePath: {problem}")
    label = raw.get("Label")
    if label is not None and (
        not isinstance(label, str)
        or not 0 < len(label) <= 40
        or any(c in label for c in ' <>{}[]?*"#%\\^|~`$&,;:/')
    ):
        problems.append(f"{at}/Label: must be 1-40 characters without spaces or special chars")
