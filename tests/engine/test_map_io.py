"""Distributed Map I/O: S3 Inventory ItemReader (MANIFEST) and ResultWriter PENDING files.

Sources:
- ItemReader, "S3 inventory manifest file":
  https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
  (the manifest's data files are gzip CSV in the destination bucket; each child gets
  an object keyed by the ``fileSchema`` field names, e.g. ``{"LastModifiedDate": …,
  "Bucket": …, "Size": "3399671", "Key": …}``; only CSV reports are supported).
- S3 Inventory manifest layout:
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory-location.html
- ResultWriter, "Exporting to Amazon S3" (``SUCCEEDED_n.json``, ``FAILED_n.json``,
  ``PENDING_n.json`` listed under ``ResultFiles`` in ``manifest.json``):
  https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html
"""

from __future__ import annotations

import gzip
import json
import threading
from typing import Any

from plateseg.engine import Event
from plateseg.engine.definition import validate
from plateseg.store import LocalStore, get_json
from tests.engine.conftest import EngineFactory, machine
from tests.engine.test_map import distributed, work, write_items

MANIFEST_KEY = "inv/src/cfg/2022-11-16T00-00Z/manifest.json"
SCHEMA = "Bucket, Key, Size, LastModifiedDate"
ROWS = [
    ["src", "csvDataset/", "0", "2022-11-16T00:27:19.000Z"],
    ["src", "csvDataset/titles.csv", "3399671", "2022-11-16T00:29:32.000Z"],
    ["src", "imageDataset/", "0", "2022-11-15T20:00:44.000Z"],
    ["src", "imageDataset/n02085620_10074.jpg", "27034", "2022-11-15T20:02:16.000Z"],
]


def _gz_csv(rows: list[list[str]]) -> bytes:
    text = "".join(",".join(f'"{value}"' for value in row) + "\n" for row in rows)
    return gzip.compress(text.encode())


def write_inventory(store: LocalStore, parts: list[list[list[str]]], **fields: Any) -> None:
    entries = []
    for number, rows in enumerate(parts):
        key = f"inv/src/cfg/data/part-{number}.csv.gz"
        body = _gz_csv(rows)
        store.put_bytes(key, body)
        entries.append({"key": key, "size": len(body), "MD5checksum": "0" * 32})
    manifest = {
        "sourceBucket": "src",
        "destinationBucket": "arn:aws:s3:::inventory-dest",
        "version": "2016-11-30",
        "creationTimestamp": "1668560400000",
        "fileFormat": "CSV",
        "fileSchema": SCHEMA,
        "files": entries,
        **fields,
    }
    store.put_bytes(MANIFEST_KEY, json.dumps(manifest).encode())


def inventory_machine(**config: Any) -> dict[str, Any]:
    definition = distributed()
    reader = definition["States"]["M"]["ItemReader"]
    reader["ReaderConfig"] = {"InputType": "MANIFEST", **config}
    return definition


def test_manifest_items_are_rows_keyed_by_the_schema(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    write_inventory(store, [ROWS[:2], ROWS[2:]])
    result = make_engine({"work": lambda e, c: e}).run(inventory_machine(), {"key": MANIFEST_KEY})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output[1] == {
        "Bucket": "src",
        "Key": "csvDataset/titles.csv",
        "Size": "3399671",
        "LastModifiedDate": "2022-11-16T00:29:32.000Z",
    }
    assert [item["Key"] for item in result.output] == [row[1] for row in ROWS]


def test_manifest_max_items_stops_reading_files(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    write_inventory(store, [ROWS[:2], ROWS[2:]])
    store.delete_prefix("inv/src/cfg/data/part-1")  # never read: MaxItems is reached first
    result = make_engine({"work": lambda e, c: e}).run(
        inventory_machine(MaxItems=2), {"key": MANIFEST_KEY}
    )
    assert result.status == "SUCCEEDED", result.cause
    assert [item["Key"] for item in result.output] == ["csvDataset/", "csvDataset/titles.csv"]


def test_manifest_failures_are_item_reader_failed(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    engine = make_engine({"work": lambda e, c: e})
    cases = [
        ({"fileFormat": "Parquet"}, "fileFormat 'Parquet' is not supported"),
        ({"files": "part-0.csv.gz"}, "files must be an array"),
        ({"files": [{"size": 1}]}, "files[0] needs a string key"),
        ({"fileSchema": "Bucket, , Key"}, "empty or duplicate field names"),
        ({"destinationBucket": 7}, "destinationBucket must be a non-empty string"),
    ]
    for fields, cause in cases:
        write_inventory(store, [ROWS], **fields)
        result = engine.run(inventory_machine(), {"key": MANIFEST_KEY})
        assert (result.error, cause in (result.cause or "")) == ("States.ItemReaderFailed", True)
    store.put_bytes(MANIFEST_KEY, b"not json")
    result = engine.run(inventory_machine(), {"key": MANIFEST_KEY})
    assert result.error == "States.ItemReaderFailed" and "not JSON" in (result.cause or "")
    write_inventory(store, [ROWS])
    store.put_bytes("inv/src/cfg/data/part-0.csv.gz", b"plain,csv\n")
    result = engine.run(inventory_machine(), {"key": MANIFEST_KEY})
    assert result.error == "States.ItemReaderFailed" and "gzip" in (result.cause or "")
    store.delete_prefix("inv/src/cfg/data/")
    result = engine.run(inventory_machine(), {"key": MANIFEST_KEY})
    assert result.error == "States.ItemReaderFailed"
    assert "s3://inventory-dest/inv/src/cfg/data/part-0.csv.gz" in (result.cause or "")


def test_manifest_input_type_is_valid() -> None:
    validate(inventory_machine())  # raises DefinitionError if MANIFEST were refused


WRITER = {
    "Resource": "arn:aws:states:::s3:putObject",
    "Parameters": {"Bucket": "out-bucket", "Prefix": "res"},
}
PENDING_KEYS = {"ExecutionArn", "Input", "InputDetails", "Name", "StateMachineArn", "Status"}


def _manifest(store: LocalStore, map_run_arn: str) -> dict[str, Any]:
    run_id = map_run_arn.rsplit(":", 1)[1]
    manifest: dict[str, Any] = get_json(store, f"res/{run_id}/manifest.json")
    return manifest


def test_items_never_started_after_the_threshold_go_to_pending(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    items = [{"id": i, "bad": i == 3} for i in range(10)]
    key = write_items(store, items)
    definition = distributed(MaxConcurrency=1, ResultWriter=WRITER)
    result = make_engine({"work": work}).run(definition, {"key": key})
    assert result.error == "States.ExceedToleratedFailureThreshold"
    manifest = _manifest(store, result.map_runs[0]["map_run_arn"])
    files = manifest["ResultFiles"]
    assert [len(files[s]) for s in ("SUCCEEDED", "FAILED", "PENDING")] == [1, 1, 1]
    pending_file = files["PENDING"][0]
    assert pending_file["Key"].endswith("/PENDING_0.json")
    pending = get_json(store, pending_file["Key"])
    assert pending_file["Size"] == len(store.get_bytes(pending_file["Key"]))
    assert [json.loads(r["Input"]) for r in pending] == items[4:]
    assert {r["Status"] for r in pending} == {"PENDING"}
    assert set(pending[0]) == PENDING_KEYS
    succeeded = get_json(store, files["SUCCEEDED"][0]["Key"])
    assert [json.loads(r["Input"])["id"] for r in succeeded] == [0, 1, 2]


def test_cancelled_map_run_writes_pending_records(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    items = [{"id": i} for i in range(8)]
    key = write_items(store, items)
    stop = threading.Event()
    arns: list[str] = []

    def listener(event: Event) -> None:
        if event.type == "MapRunStarted":
            arns.append(event.details["map_run_arn"])
        if event.type == "MapRunProgress" and event.details["succeeded"] >= 3:
            stop.set()

    definition = distributed(MaxConcurrency=1, ResultWriter=WRITER)
    result = make_engine({"work": work}).run(
        definition, {"key": key}, cancel=stop, listener=listener
    )
    assert result.status == "ABORTED"
    files = _manifest(store, arns[0])["ResultFiles"]
    done = get_json(store, files["SUCCEEDED"][0]["Key"])
    pending = get_json(store, files["PENDING"][0]["Key"])
    assert files["FAILED"] == []
    started = sorted(json.loads(r["Input"])["id"] for r in done)
    assert started + [json.loads(r["Input"])["id"] for r in pending] == list(range(8))
    assert len(pending) >= 1 and set(pending[0]) == PENDING_KEYS


def test_no_pending_file_when_every_item_ran(make_engine: EngineFactory, store: LocalStore) -> None:
    key = write_items(store, [{"id": i} for i in range(3)])
    definition = machine({"M": distributed(ResultWriter=WRITER)["States"]["M"]})
    result = make_engine({"work": work}).run(definition, {"key": key})
    assert result.status == "SUCCEEDED", result.cause
    assert _manifest(store, result.output["MapRunArn"])["ResultFiles"]["PENDING"] == []
