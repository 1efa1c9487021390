"""Map states: INLINE iterations, and DISTRIBUTED runs with reader, batcher, writer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plateseg.engine.map_state import make_batches
from plateseg.engine.paths import payload_size
from plateseg.store import LocalStore, get_json, put_json
from tests.engine.conftest import EngineFactory, machine

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


def work(event: Any, context: Any) -> Any:
    """Fails for items marked bad; otherwise returns the item ids it saw."""
    items = event["Items"] if isinstance(event, dict) and "Items" in event else [event]
    if any(item.get("bad") for item in items):
        raise ValueError(f"bad item in {[i['id'] for i in items]}")
    return {"ids": [item["id"] for item in items], "batch": event.get("BatchInput")}


def processor(mode: str = "DISTRIBUTED") -> dict[str, Any]:
    config = {"Mode": mode, "ExecutionType": "STANDARD"} if mode == "DISTRIBUTED" else {}
    return {
        "ProcessorConfig": config,
        "StartAt": "W",
        "States": {"W": {"Type": "Task", "Resource": f"{ARN}work", "End": True}},
    }


def distributed(**fields: Any) -> dict[str, Any]:
    state = {
        "Type": "Map",
        "ItemProcessor": processor(),
        "End": True,
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "b", "Key.$": "$.key"},
        },
    }
    state.update(fields)
    return machine({"M": state})


def write_items(store: LocalStore, items: list[Any], key: str = "in/items.json") -> str:
    put_json(store, key, items)
    return key


def test_inline_map_order_selector_and_context(make_engine: EngineFactory) -> None:
    definition = machine(
        {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.things",
                "MaxConcurrency": 2,
                "ItemSelector": {
                    "id.$": "$$.Map.Item.Value.name",
                    "i.$": "$$.Map.Item.Index",
                    "tag.$": "$.tag",
                },
                "ItemProcessor": processor("INLINE"),
                "End": True,
            },
        }
    )
    things = [{"name": f"n{i}"} for i in range(6)]
    engine = make_engine({"work": lambda e, c: [e["id"], e["i"], e["tag"]]})
    result = engine.run(definition, {"things": things, "tag": "T"})
    assert result.output == [[f"n{i}", i, "T"] for i in range(6)]


def test_inline_map_failure_fails_state(make_engine: EngineFactory) -> None:
    definition = machine({"M": {"Type": "Map", "ItemProcessor": processor("INLINE"), "End": True}})
    result = make_engine({"work": work}).run(definition, [{"id": 1}, {"id": 2, "bad": True}])
    assert (result.status, result.error) == ("FAILED", "ValueError")


def test_batches_respect_item_and_byte_limits() -> None:
    items = [{"id": i, "pad": "x" * 40} for i in range(10)]
    by_count = make_batches({"MaxItemsPerBatch": 4}, items, {}, {})
    assert [count for _, count in by_count] == [4, 4, 2]
    assert by_count[0][0] == {"Items": items[:4]}
    limit = payload_size({"BatchInput": {"r": 1}, "Items": items[:3]})
    batcher = {"MaxInputBytesPerBatch": limit, "BatchInput": {"r.$": "$.r"}}
    by_bytes = make_batches(batcher, items, {"r": 1}, {})
    assert [count for _, count in by_bytes] == [3, 3, 3, 1]
    assert all(payload_size(batch) <= limit for batch, _ in by_bytes)
    assert by_bytes[0][0]["BatchInput"] == {"r": 1}
    both = make_batches({"MaxItemsPerBatch": 2, "MaxInputBytesPerBatch": limit}, items, {}, {})
    assert [count for _, count in both] == [2, 2, 2, 2, 2]


def test_distributed_map_without_writer_returns_outputs(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    key = write_items(store, [{"id": i} for i in range(7)])
    definition = distributed(
        ItemBatcher={"MaxItemsPerBatch": 3, "BatchInput": {"run.$": "$$.Execution.Name"}},
        ItemSelector={"id.$": "$$.Map.Item.Value.id", "index.$": "$$.Map.Item.Index"},
        MaxConcurrency=2,
    )
    seen: list[Any] = []
    engine = make_engine({"work": lambda e, c: seen.append(e) or work(e, c)})
    result = engine.run(definition, {"key": key}, name="r1")
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [
        {"ids": [0, 1, 2], "batch": {"run": "r1"}},
        {"ids": [3, 4, 5], "batch": {"run": "r1"}},
        {"ids": [6], "batch": {"run": "r1"}},
    ]
    assert {"id": 4, "index": 4} in [i for e in seen for i in e["Items"]]
    run = result.map_runs[0]
    assert run["item_counts"] == {
        "pending": 0,
        "running": 0,
        "succeeded": 7,
        "failed": 0,
        "aborted": 0,
        "total": 7,
    }
    assert run["execution_counts"]["succeeded"] == 3
    started = [e for e in result.events if e.type == "MapRunStarted"]
    assert started[0].details["total"] == 7
    progress = [e.details for e in result.events if e.type == "MapRunProgress"]
    assert progress[0]["pending"] == 7 and progress[-1]["succeeded"] == 7


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({}, "FAILED"),
        ({"ToleratedFailureCount": 1}, "SUCCEEDED"),
        ({"ToleratedFailurePercentage": 10}, "SUCCEEDED"),
        ({"ToleratedFailurePercentage": 9.9}, "FAILED"),
        ({"ToleratedFailureCount": 5, "ToleratedFailurePercentage": 5}, "FAILED"),
    ],
)
def test_tolerated_failure_threshold(
    make_engine: EngineFactory, store: LocalStore, fields: dict[str, Any], status: str
) -> None:
    items = [{"id": i, "bad": i == 3} for i in range(10)]
    key = write_items(store, items)
    result = make_engine({"work": work}).run(distributed(MaxConcurrency=1, **fields), {"key": key})
    assert result.status == status
    counts = result.map_runs[0]["item_counts"]
    assert counts["failed"] == 1
    if status == "FAILED":
        assert result.error == "States.ExceedToleratedFailureThreshold"
        assert counts["aborted"] == 6 and counts["succeeded"] == 3
    else:
        assert counts["succeeded"] == 9
        failed = result.output[3]
        assert failed["Status"] == "FAILED" and failed["Error"] == "ValueError"


def test_result_writer_layout(make_engine: EngineFactory, store: LocalStore) -> None:
    items = [{"id": i, "bad": i == 2} for i in range(5)]
    key = write_items(store, items)
    definition = distributed(
        ItemBatcher={"MaxItemsPerBatch": 2},
        ToleratedFailurePercentage=50,
        Label="Seg",
        ResultWriter={
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "out-bucket", "Prefix.$": "$.prefix"},
        },
    )
    engine = make_engine({"work": work}, state_machine_name="sm")
    result = engine.run(definition, {"key": key, "prefix": "runs/r/map"}, name="ex")
    assert result.status == "SUCCEEDED", result.cause
    map_run_arn = result.output["MapRunArn"]
    run_id = map_run_arn.rsplit(":", 1)[1]
    assert map_run_arn == f"arn:aws:states:us-east-1:000000000000:mapRun:sm/Seg:{run_id}"
    manifest_key = f"runs/r/map/{run_id}/manifest.json"
    assert result.output["ResultWriterDetails"] == {"Bucket": "out-bucket", "Key": manifest_key}
    manifest = get_json(store, manifest_key)
    prefix = f"runs/r/map/{run_id}"
    ok_size = len(store.get_bytes(f"{prefix}/SUCCEEDED_0.json"))
    bad_size = len(store.get_bytes(f"{prefix}/FAILED_0.json"))
    assert manifest == {
        "DestinationBucket": "out-bucket",
        "MapRunArn": map_run_arn,
        "ResultFiles": {
            "FAILED": [{"Key": f"{prefix}/FAILED_0.json", "Size": bad_size}],
            "PENDING": [],
            "SUCCEEDED": [{"Key": f"{prefix}/SUCCEEDED_0.json", "Size": ok_size}],
        },
    }
    succeeded = get_json(store, f"{prefix}/SUCCEEDED_0.json")
    failed = get_json(store, f"{prefix}/FAILED_0.json")
    assert [json.loads(r["Output"])["ids"] for r in succeeded] == [[0, 1], [4]]
    record = succeeded[0]
    assert set(record) == {
        "ExecutionArn",
        "Input",
        "InputDetails",
        "Name",
        "Output",
        "OutputDetails",
        "RedriveCount",
        "RedriveStatus",
        "RedriveStatusReason",
        "StartDate",
        "StateMachineArn",
        "Status",
        "StopDate",
    }
    assert json.loads(record["Input"]) == {"Items": items[:2]}
    assert record["StateMachineArn"] == "arn:aws:states:us-east-1:000000000000:stateMachine:sm/Seg"
    assert record["ExecutionArn"].endswith(f":execution:sm/Seg:{record['Name']}")
    assert (record["Status"], record["InputDetails"]) == ("SUCCEEDED", {"Included": True})
    assert len(failed) == 1 and failed[0]["Status"] == "FAILED"
    assert failed[0]["Error"] == "ValueError" and "Output" not in failed[0]
    assert json.loads(failed[0]["Cause"])["errorMessage"] == "bad item in [2, 3]"
    again = engine.run(definition, {"key": key, "prefix": "runs/r/map"}, name="ex")
    assert again.output == result.output


def test_item_reader_failure(make_engine: EngineFactory) -> None:
    result = make_engine({"work": work}).run(distributed(), {"key": "missing.json"})
    assert result.error == "States.ItemReaderFailed"
    assert "missing.json" in (result.cause or "")


def test_item_reader_jsonl_csv_and_max_items(make_engine: EngineFactory, store: LocalStore) -> None:
    store.put_bytes("in/a.jsonl", b'{"id": 1}\n{"id": 2}\n\n{"id": 3}\n')
    store.put_bytes("in/a.csv", b"id,name\n1,x\n2,y\n")
    engine = make_engine({"work": lambda e, c: e})
    jsonl = distributed()
    jsonl["States"]["M"]["ItemReader"]["ReaderConfig"] = {"InputType": "JSONL", "MaxItems": 2}
    assert engine.run(jsonl, {"key": "in/a.jsonl"}).output == [{"id": 1}, {"id": 2}]
    csv_def = distributed()
    csv_def["States"]["M"]["ItemReader"]["ReaderConfig"] = {
        "InputType": "CSV",
        "CSVHeaderLocation": "FIRST_ROW",
    }
    out = engine.run(csv_def, {"key": "in/a.csv"}).output
    assert out == [{"id": "1", "name": "x"}, {"id": "2", "name": "y"}]
