"""The three Lambda handlers, unchanged, against moto S3 — as they run on AWS Lambda."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas import aggregate, lookup, segment
from plateseg.errors import ExecutionInputError, RecipeError
from plateseg.store import LocalStore, S3Store, get_json
from tests.lambdas.conftest import BUCKET, copy_wells


class FakeContext:
    """The attributes AWS Lambda's context object carries."""

    function_name = "plateseg-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:plateseg-test"
    memory_limit_in_mb = 1024
    aws_request_id = "req-1"
    log_group_name = "/aws/lambda/plateseg-test"
    log_stream_name = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def lookup_event(experiment_id: str = "DEMO-001", **extra: Any) -> dict[str, Any]:
    return {
        "input": {"experiment_id": experiment_id, **extra},
        "execution_name": "exec-1",
        "bucket": BUCKET,
    }


def test_lookup_writes_one_manifest_item_per_field(demo_source: LocalStore, s3: S3Store) -> None:
    copy_wells(demo_source, s3, ["B03", "C04"])
    result = lookup.handler(lookup_event(), FakeContext())
    assert result["item_count"] == 4
    assert result["run_id"] == "exec-1"
    manifest = get_json(s3, result["manifest_key"])
    assert [(i["well"], i["field"]) for i in manifest] == [
        ("B03", 1),
        ("B03", 2),
        ("C04", 1),
        ("C04", 2),
    ]
    assert set(manifest[0]["channels"]) == {"w1", "w2"}
    assert result["result_prefix"] == "runs/exec-1/map"


def test_lookup_honours_the_run_id_of_the_input(demo_source: LocalStore, s3: S3Store) -> None:
    copy_wells(demo_source, s3, ["B03"])
    result = lookup.handler(lookup_event(run_id="my-run"), FakeContext())
    assert result["manifest_key"] == "runs/my-run/manifest.json"


def test_lookup_of_an_empty_experiment_reports_zero_items(s3: S3Store) -> None:
    result = lookup.handler(lookup_event("EMPTY-1"), FakeContext())
    assert result["item_count"] == 0
    assert "EMPTY-1" in result["message"]


@pytest.mark.parametrize("bad_id", ["../etc", "a/b", "EXP*", "a%2Fb", "x" * 300, ""])
def test_lookup_refuses_unsafe_experiment_ids(s3: S3Store, bad_id: str) -> None:
    with pytest.raises(ExecutionInputError, match="experiment id"):
        lookup.handler(lookup_event(bad_id), FakeContext())


def test_lookup_refuses_an_unknown_segmenter(s3: S3Store) -> None:
    with pytest.raises(RecipeError, match="segmenter"):
        lookup.handler(lookup_event(recipe={"segmenter": "magic"}), FakeContext())


def test_segment_handler_rejects_a_malformed_event(s3: S3Store) -> None:
    with pytest.raises(ExecutionInputError, match="segment event"):
        segment.handler({"Items": "nope"}, FakeContext())


def _segment_event(s3: S3Store, run_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "BatchInput": {
            "run_id": run_id,
            "experiment_id": "DEMO-001",
            "bucket": BUCKET,
            "recipe": {"segmenter": "classical", "channels": {"nuclei": "w1", "cells": "w2"}},
        },
        "Items": items,
    }


def test_segment_then_aggregate_writes_the_run(demo_source: LocalStore, s3: S3Store) -> None:
    copy_wells(demo_source, s3, ["B03", "C04"])
    s3.put_bytes("experiments/DEMO-001/P1/P1_C05_s1_w1.tif", b"II*\x00truncated")
    s3.put_bytes("experiments/DEMO-001/P1/P1_C05_s1_w2.tif", b"II*\x00truncated")
    found = lookup.handler(lookup_event(run_id="r1"), FakeContext())
    items = get_json(s3, found["manifest_key"])
    assert len(items) == 5

    out = segment.handler(_segment_event(s3, "r1", items), FakeContext())
    statuses = {image["image_id"]: image["status"] for image in out["images"]}
    assert statuses["P1_C05_1"] == "error"
    assert sum(status == "ok" for status in statuses.values()) == 4
    bad = next(image for image in out["images"] if image["status"] == "error")
    assert "P1_C05_s1_w1.tif" in bad["cause"]
    assert out["parquet_key"].startswith("runs/r1/objects/")
    assert s3.exists(out["parquet_key"])

    # What the Distributed Map's ResultWriter would have written for this one batch.
    prefix = "runs/r1/map/map-run-1"
    record = {
        "ExecutionArn": "arn:aws:states:us-east-1:000000000000:execution:sm/Segment:c1",
        "Input": json.dumps(_segment_event(s3, "r1", items)),
        "InputDetails": {"Included": True},
        "Name": "c1",
        "Output": json.dumps(out),
        "OutputDetails": {"Included": True},
        "Status": "SUCCEEDED",
    }
    s3.put_bytes(f"{prefix}/SUCCEEDED_0.json", json.dumps([record]).encode())
    manifest = {
        "DestinationBucket": BUCKET,
        "MapRunArn": "arn:aws:states:us-east-1:000000000000:mapRun:sm/Segment:map-run-1",
        "ResultFiles": {
            "FAILED": [],
            "PENDING": [],
            "SUCCEEDED": [{"Key": f"{prefix}/SUCCEEDED_0.json", "Size": 1}],
        },
    }
    s3.put_bytes(f"{prefix}/manifest.json", json.dumps(manifest).encode())

    summary = aggregate.handler(
        {
            "run_id": "r1",
            "experiment_id": "DEMO-001",
            "bucket": BUCKET,
            "recipe": found["recipe"],
            "execution_id": "arn:aws:states:us-east-1:000000000000:execution:sm:r1",
            "map_run_arn": manifest["MapRunArn"],
            "result_writer": {"Bucket": BUCKET, "Key": f"{prefix}/manifest.json"},
        },
        FakeContext(),
    )
    assert summary["status"] == "SUCCEEDED_WITH_FAILURES"
    assert summary["images_ok"] == 4 and summary["images_failed"] == 1
    truth = get_json(demo_source, "truth/DEMO-001/counts.json")
    assert summary["objects"] == pytest.approx(
        truth["wells"]["P1_B03"] + truth["wells"]["P1_C04"], rel=0.05
    )
