"""Differential test: golden cases moto's Step Functions interpreter runs, both engines.

moto 5.2 (``execute_state_machine``) is an older port of LocalStack's interpreter. On
the cases below — data flow, context object, intrinsics' ordinary behaviour, Pass,
Succeed, Fail, Wait, Parallel and INLINE Map — its output (or error name) must equal
ours. It is left out where it is known to differ from AWS: Choice states ending in a
non-object output (its ``describe_execution`` output is not JSON), intrinsic failures
(it reports ``States.Runtime`` where AWS reports ``States.IntrinsicFailure``),
``States.NoChoiceMatched``, ``$$.Execution.Name`` and ``$$.State.RetryCount`` (absent),
a ResultPath into a non-object (a Python ``TypeError`` reported as ``States.Runtime``),
fractional ``MathAdd`` arguments, Distributed Map (no ItemBatcher, no tolerated
failures), Tasks (Lambda needs Docker) and Wait states that really wait (moto sleeps).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plateseg.engine import Clock, LocalEngine

GOLDEN = Path(__file__).parent / "golden"
MOTO_AGREES = [
    "array_build",
    "array_contains_false",
    "array_contains_true",
    "array_get_item",
    "array_length",
    "array_length_empty",
    "array_partition",
    "array_partition_empty",
    "array_range_end_not_hit",
    "array_range_inclusive_end",
    "array_unique",
    "base64_decode",
    "base64_encode",
    "choice_input_output_paths",
    "context_execution_input",
    "context_map_item_index_value",
    "context_state_machine_id_is_arn",
    "context_state_name",
    "context_unknown_field_is_runtime",
    "fail_caught_by_parent_parallel",
    "fail_error_cause",
    "fail_error_path_cause_path",
    "fail_error_path_intrinsic",
    "format_basic",
    "hash_md5",
    "hash_sha1",
    "hash_sha256",
    "inputpath_array_index",
    "inputpath_no_match_is_runtime",
    "inputpath_null_gives_empty_object",
    "inputpath_selects_subtree",
    "intrinsic_context_argument",
    "json_merge_shallow",
    "json_to_string",
    "map_inline_empty_array",
    "map_inline_item_selector",
    "map_inline_items_path",
    "map_inline_iteration_failure",
    "map_inline_iterator_legacy_field",
    "map_inline_max_concurrency_one_keeps_order",
    "map_inline_parameters_legacy",
    "map_inline_result_path",
    "math_add",
    "math_random_in_range",
    "math_random_seeded_reproducible_type",
    "nested_intrinsics",
    "outputpath_after_resultpath",
    "outputpath_no_match_is_runtime",
    "outputpath_null_gives_empty_object",
    "outputpath_selects",
    "parallel_branch_failure_fails_state",
    "parallel_outputs_in_branch_order",
    "parallel_resultpath_and_selector",
    "parameters_after_inputpath",
    "parameters_array_of_templates",
    "parameters_jsonpath_filter_returns_array",
    "parameters_nested_objects",
    "parameters_path_no_match_runtime",
    "parameters_static_and_path",
    "parameters_wildcard",
    "pass_parameters_is_result",
    "pass_result_replaces_parameters",
    "pass_without_result_passes_input",
    "resultpath_adds_field",
    "resultpath_creates_intermediate_objects",
    "resultpath_null_discards_result",
    "resultpath_overwrites_existing",
    "resultpath_uses_raw_input_not_inputpath",
    "string_split",
    "string_split_drops_empty_tokens",
    "string_split_multiple_delimiters",
    "string_to_json",
    "succeed_ends_early",
    "succeed_passes_input",
    "uuid_shape",
    "wait_output_path",
    "wait_seconds_path_not_number_runtime",
]


@pytest.fixture(scope="module")
def moto_sfn() -> Iterator[Any]:
    """A Step Functions client backed by moto's interpreter."""
    import boto3
    from moto import mock_aws

    config: Any = {"stepfunctions": {"execute_state_machine": True}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with mock_aws(config=config):
            yield boto3.client("stepfunctions", region_name="us-east-1")


def run_moto(sfn: Any, name: str, definition: Any, execution_input: Any) -> tuple[str, Any]:
    arn = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/differential",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))
    deadline = time.monotonic() + 30
    while (found := sfn.describe_execution(executionArn=execution["executionArn"]))[
        "status"
    ] == "RUNNING":
        assert time.monotonic() < deadline, f"moto did not finish {name}"
        time.sleep(0.01)
    if found["status"] == "SUCCEEDED":
        return "SUCCEEDED", json.loads(found["output"])
    return found["status"], found.get("error")


def run_ours(definition: Any, execution_input: Any) -> tuple[str, Any]:
    with LocalEngine(functions={}, clock=Clock(time_scale=0), workers=1) as engine:
        result = engine.run(definition, execution_input)
    return result.status, result.output if result.status == "SUCCEEDED" else result.error


def test_the_subset_is_large_enough() -> None:
    assert len(MOTO_AGREES) >= 50
    assert all((GOLDEN / f"{name}.json").exists() for name in MOTO_AGREES)


@pytest.mark.parametrize("name", MOTO_AGREES)
def test_same_outcome_as_moto(moto_sfn: Any, name: str) -> None:
    case = json.loads((GOLDEN / f"{name}.json").read_text())
    ours = run_ours(case["definition"], case["input"])
    theirs = run_moto(moto_sfn, name, case["definition"], case["input"])
    assert ours == theirs
