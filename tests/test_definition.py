"""The one ASL definition: its placeholders, tunables and retry contract."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plateseg.definition import DEFINITION_PATH, load_definition, local_substitutions
from plateseg.errors import DefinitionError, transient_error_names
from plateseg.map_settings import MapSettings, apply_tunables, placeholders, substitute


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(DEFINITION_PATH.read_text())
    return parsed


def test_local_runner_supplies_exactly_the_placeholders_of_the_file() -> None:
    assert placeholders(DEFINITION_PATH.read_text()) == set(local_substitutions())


def test_loaded_definition_has_no_placeholders_left() -> None:
    text = json.dumps(load_definition())
    assert "${" not in text


def test_a_missing_substitution_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="BucketName"):
        substitute("${BucketName}", {})


def test_every_transient_error_is_retried_by_every_lambda_task(raw: dict[str, Any]) -> None:
    tasks = [raw["States"]["Lookup"], raw["States"]["Aggregate"]]
    tasks.append(raw["States"]["Segment"]["ItemProcessor"]["States"]["SegmentBatch"])
    for task in tasks:
        retried = {name for retrier in task["Retry"] for name in retrier["ErrorEquals"]}
        assert transient_error_names() <= retried, task.get("Resource")


def test_segment_is_a_distributed_map_with_batching_and_result_writer(raw: dict[str, Any]) -> None:
    segment = raw["States"]["Segment"]
    assert segment["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert segment["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert segment["ItemReader"]["ReaderConfig"]["InputType"] == "JSON"
    batcher = segment["ItemBatcher"]
    assert isinstance(batcher["MaxItemsPerBatch"], int)
    assert isinstance(batcher["MaxInputBytesPerBatch"], int)
    assert set(batcher["BatchInput"]) == {"run_id.$", "experiment_id.$", "bucket", "recipe.$"}
    assert isinstance(segment["MaxConcurrency"], int)
    assert isinstance(segment["ToleratedFailurePercentage"], int)
    assert segment["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"


def test_retries_back_off_exponentially_with_jitter(raw: dict[str, Any]) -> None:
    task = raw["States"]["Segment"]["ItemProcessor"]["States"]["SegmentBatch"]
    (retrier,) = task["Retry"]
    assert retrier["BackoffRate"] > 1
    assert retrier["JitterStrategy"] == "FULL"
    assert retrier["MaxAttempts"] >= 2


def test_no_images_ends_in_a_fail_state_with_the_lookup_message(raw: dict[str, Any]) -> None:
    choice = raw["States"]["HasImages"]
    assert choice["Default"] == "NoImages"
    fail = raw["States"]["NoImages"]
    assert fail == {"Type": "Fail", "Error": "NoImagesFound", "CausePath": "$.lookup.message"}


def test_the_loaded_run_settings_equal_the_maps_own_fields(raw: dict[str, Any]) -> None:
    # The file holds no settings block: the renderer writes the Map's fields and what
    # Aggregate records from one MapSettings (issue 15 item 1).
    assert "run_settings" not in raw["States"]["Aggregate"]["Parameters"]
    loaded = load_definition()
    recorded = loaded["States"]["Aggregate"]["Parameters"]["run_settings"]
    segment = loaded["States"]["Segment"]
    assert recorded == {
        "max_concurrency": segment["MaxConcurrency"],
        "items_per_batch": segment["ItemBatcher"]["MaxItemsPerBatch"],
        "tolerated_failure_percentage": segment["ToleratedFailurePercentage"],
        "child_execution_type": segment["ItemProcessor"]["ProcessorConfig"]["ExecutionType"],
        "segment_memory_mb": MapSettings().segment_memory_mb,
    }
    assert MapSettings.model_validate(recorded) == MapSettings()


def test_tunables_change_the_map_and_what_aggregate_records_alike(raw: dict[str, Any]) -> None:
    tuned = apply_tunables(
        raw, MapSettings(items_per_batch=9, max_concurrency=3, tolerated_failure_percentage=0)
    )
    assert tuned["States"]["Aggregate"]["Parameters"]["run_settings"] == {
        "max_concurrency": 3,
        "items_per_batch": 9,
        "tolerated_failure_percentage": 0,
        "child_execution_type": "STANDARD",
        "segment_memory_mb": 2048,
    }
    assert raw == json.loads(DEFINITION_PATH.read_text())  # the input is left as it was
