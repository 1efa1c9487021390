"""The synthesized stacks: state machine from the one ASL file, least privilege, storage.

The default app (``cdk.json`` context) is synthesized once for the module; one test
synthesizes a second app with one tunable changed. All tests run on one xdist worker.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from plateseg.definition import DEFINITION_PATH, local_substitutions
from plateseg.map_settings import apply_tunables
from plateseg.settings import Settings
from stacks.config import ConfigError, PlatesegConfig
from stacks.pipeline_stack import (
    ASL_PATH,
    HANDLERS,
    IMAGE_ASSET_EXCLUDE,
    REPO_ROOT,
    SUBSTITUTION_KEYS,
    DefinitionShapeError,
    check_substitutions,
    load_asl,
)
from stacks.storage import StorageStack
from tests.stacks.conftest import Synthesized, only_resource, render, rendered_definition

pytestmark = pytest.mark.xdist_group("cdk")

SynthesizeFn = Callable[..., Synthesized]


def _asl_text() -> str:
    return ASL_PATH.read_text(encoding="utf-8")


def _statements(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to one role."""
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        properties = policy["Properties"]
        if {"Ref": role_logical_id} in properties.get("Roles", []):
            statements.extend(properties["PolicyDocument"]["Statement"])
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _state_machine_role(template: Template) -> str:
    role_arn = only_resource(template, "AWS::StepFunctions::StateMachine")["RoleArn"]
    logical_id: str = role_arn["Fn::GetAtt"][0]
    return logical_id


def _functions_by_command(template: Template) -> dict[str, tuple[str, dict[str, Any]]]:
    """Image command → (logical id, properties) of every Lambda function."""
    return {
        resource["Properties"]["ImageConfig"]["Command"][0]: (logical_id, resource["Properties"])
        for logical_id, resource in template.find_resources("AWS::Lambda::Function").items()
        if "ImageConfig" in resource["Properties"]
    }


def _expected_definition(tunables: Mapping[str, Any]) -> dict[str, Any]:
    """The ASL file with the tunables written in by hand (independent of apply_tunables)."""
    expected: dict[str, Any] = json.loads(_asl_text())
    segment = expected["States"]["Segment"]
    segment["MaxConcurrency"] = tunables["map_max_concurrency"]
    segment["ToleratedFailurePercentage"] = tunables["tolerated_failure_percentage"]
    segment["ItemBatcher"]["MaxItemsPerBatch"] = tunables["items_per_batch"]
    segment["ItemBatcher"]["MaxInputBytesPerBatch"] = tunables["max_bytes_per_batch"]
    segment["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = tunables.get(
        "child_execution_type", "STANDARD"
    )
    retry = tunables["segment_retry"]
    retrier = segment["ItemProcessor"]["States"]["SegmentBatch"]["Retry"][0]
    retrier["IntervalSeconds"] = retry["interval_seconds"]
    retrier["MaxAttempts"] = retry["max_attempts"]
    retrier["BackoffRate"] = retry["backoff_rate"]
    retrier["MaxDelaySeconds"] = retry["max_delay_seconds"]
    retrier["JitterStrategy"] = retry["jitter"]
    expected["States"]["Aggregate"]["Parameters"]["run_settings"] = {
        "max_concurrency": tunables["map_max_concurrency"],
        "items_per_batch": tunables["items_per_batch"],
        "tolerated_failure_percentage": tunables["tolerated_failure_percentage"],
        "child_execution_type": tunables.get("child_execution_type", "STANDARD"),
        "segment_memory_mb": tunables["segment_memory_mb"],
    }
    return expected


def _differences(a: Any, b: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths (keys, list indexes as text) at which two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            diff
            for key in sorted(set(a) | set(b))
            for diff in _differences(a.get(key), b.get(key), (*path, key))
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            diff
            for index, (x, y) in enumerate(zip(a, b, strict=True))
            for diff in _differences(x, y, (*path, str(index)))
        ]
    return [] if a == b else [path]


# --- one definition, placeholders in step ----------------------------------------------


def test_stack_loads_the_definition_the_local_engine_runs() -> None:
    assert ASL_PATH.resolve() == DEFINITION_PATH.resolve()


def test_file_placeholders_equal_the_keys_the_stack_supplies() -> None:
    assert set(re.findall(r"\$\{(\w+)\}", _asl_text())) == SUBSTITUTION_KEYS


def test_file_placeholders_equal_the_keys_the_local_runner_supplies(tmp_path: Path) -> None:
    local = local_substitutions(Settings(home=tmp_path))
    assert set(re.findall(r"\$\{(\w+)\}", _asl_text())) == set(local)


def test_template_substitutions_cover_exactly_the_file_placeholders(
    synthesized: Synthesized,
) -> None:
    machine = only_resource(synthesized.pipeline, "AWS::StepFunctions::StateMachine")
    assert set(machine["DefinitionSubstitutions"]) == set(re.findall(r"\$\{(\w+)\}", _asl_text()))


def test_rendered_definition_is_the_file_with_the_tunables_applied(
    synthesized: Synthesized, cdk_context: dict[str, Any]
) -> None:
    expected = _expected_definition(cdk_context["plateseg"])
    assert rendered_definition(synthesized.pipeline) == expected


def test_changing_one_tunable_changes_only_max_concurrency_and_its_record(
    synthesized: Synthesized, synthesize: SynthesizeFn, cdk_context: dict[str, Any]
) -> None:
    context = copy.deepcopy(cdk_context)
    context["plateseg"]["map_max_concurrency"] -= 7
    changed = rendered_definition(synthesize(context, nag=False).pipeline)

    before = rendered_definition(synthesized.pipeline)
    assert _differences(before, changed) == [
        ("States", "Aggregate", "Parameters", "run_settings", "max_concurrency"),
        ("States", "Segment", "MaxConcurrency"),
    ]
    assert changed["States"]["Segment"]["MaxConcurrency"] == (
        cdk_context["plateseg"]["map_max_concurrency"] - 7
    )


def test_invalid_tunable_names_the_key_and_the_range(
    cdk_app: ModuleType, cdk_context: dict[str, Any], tmp_path: Path
) -> None:
    context = copy.deepcopy(cdk_context)
    context["plateseg"]["map_max_concurrency"] = 0
    expected = r"plateseg\.map_max_concurrency = 0: .*1 <= value <= 10000"
    with pytest.raises(ConfigError, match=expected):
        cdk_app.build_app(context=context, outdir=str(tmp_path))


def test_definition_without_a_distributed_map_is_refused(
    cdk_context: dict[str, Any],
) -> None:
    asl = load_asl()
    asl["States"]["Segment"]["ItemProcessor"]["ProcessorConfig"]["Mode"] = "INLINE"
    with pytest.raises(DefinitionShapeError, match="Distributed Map"):
        apply_tunables(asl, PlatesegConfig.from_context(cdk_context["plateseg"]))


def test_a_placeholder_the_stack_does_not_fill_is_refused_at_synth() -> None:
    asl = load_asl()
    asl["States"]["Lookup"]["Parameters"]["table"] = "${TableName}"
    values = dict.fromkeys(SUBSTITUTION_KEYS, "x")
    with pytest.raises(DefinitionShapeError, match="TableName"):
        check_substitutions(asl, values)


# --- storage ---------------------------------------------------------------------------


def _buckets(synthesized: Synthesized) -> list[dict[str, Any]]:
    assert synthesized.storage is not None
    found = synthesized.storage.find_resources("AWS::S3::Bucket").values()
    assert len(found) == 2  # the store and its access-log bucket
    return [bucket["Properties"] for bucket in found]


def _store(synthesized: Synthesized) -> dict[str, Any]:
    return next(b for b in _buckets(synthesized) if "LoggingConfiguration" in b)


def test_buckets_are_encrypted(synthesized: Synthesized) -> None:
    for bucket in _buckets(synthesized):
        rules = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert [r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules] == ["AES256"]


def test_buckets_block_all_public_access(synthesized: Synthesized) -> None:
    for bucket in _buckets(synthesized):
        assert bucket["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }


def test_store_logs_access_and_expires_intermediate_run_versions(
    synthesized: Synthesized,
) -> None:
    store = _store(synthesized)
    runs = [r for r in store["LifecycleConfiguration"]["Rules"] if r.get("Prefix") == "runs/"]
    assert store["LoggingConfiguration"]["LogFilePrefix"] == "store/"
    assert [(r["NoncurrentVersionExpiration"]["NoncurrentDays"], r["Status"]) for r in runs] == [
        (7, "Enabled")
    ]


def test_bucket_policy_denies_requests_without_tls(synthesized: Synthesized) -> None:
    assert synthesized.storage is not None
    synthesized.storage.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_store_is_versioned(synthesized: Synthesized) -> None:
    assert _store(synthesized)["VersioningConfiguration"] == {"Status": "Enabled"}


def test_prod_bucket_is_retained(tmp_path: Path, cdk_context: dict[str, Any]) -> None:
    app = cdk.App(outdir=str(tmp_path), context=cdk_context)
    stack = StorageStack(app, "storage", config=PlatesegConfig(stage="prod"))
    buckets = Template.from_stack(stack).find_resources("AWS::S3::Bucket")
    assert [b["DeletionPolicy"] for b in buckets.values()] == ["Retain", "Retain"]


# --- the state machine's role ----------------------------------------------------------


def test_state_machine_invokes_exactly_the_three_functions(synthesized: Synthesized) -> None:
    template = synthesized.pipeline
    invoke = [
        resource
        for statement in _statements(template, _state_machine_role(template))
        if "lambda:InvokeFunction" in _actions(statement)
        for resource in _resources(statement)
    ]
    functions = {logical_id for logical_id, _ in _functions_by_command(template).values()}
    assert sorted(invoke, key=str) == sorted(
        ({"Fn::GetAtt": [logical_id, "Arn"]} for logical_id in functions), key=str
    )


def test_state_machine_starts_only_its_own_executions(synthesized: Synthesized) -> None:
    template = synthesized.pipeline
    name = only_resource(template, "AWS::StepFunctions::StateMachine")["StateMachineName"]
    start = [
        render(resource)
        for statement in _statements(template, _state_machine_role(template))
        if "states:StartExecution" in _actions(statement)
        for resource in _resources(statement)
    ]
    assert start == [
        f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:stateMachine:{name}"
    ]


def test_state_machine_reads_and_writes_only_under_runs(synthesized: Synthesized) -> None:
    template = synthesized.pipeline
    s3_resources = {
        render(resource)
        for statement in _statements(template, _state_machine_role(template))
        if any(action.startswith("s3:") for action in _actions(statement))
        for resource in _resources(statement)
    }
    assert s3_resources and all(resource.endswith("/runs/*") for resource in s3_resources)


def test_state_machine_logs_everything_and_traces(synthesized: Synthesized) -> None:
    machine = only_resource(synthesized.pipeline, "AWS::StepFunctions::StateMachine")
    assert (machine["LoggingConfiguration"]["Level"], machine["TracingConfiguration"]) == (
        "ALL",
        {"Enabled": True},
    )


# --- functions -------------------------------------------------------------------------


def test_functions_are_container_images_with_their_handler_commands(
    synthesized: Synthesized,
) -> None:
    functions = _functions_by_command(synthesized.pipeline)
    assert {command: props["PackageType"] for command, (_, props) in functions.items()} == {
        handler: "Image" for handler in HANDLERS.values()
    }


def test_functions_share_one_image(synthesized: Synthesized) -> None:
    images = {
        json.dumps(props["Code"]["ImageUri"], sort_keys=True)
        for _, props in _functions_by_command(synthesized.pipeline).values()
    }
    assert len(images) == 1


def test_functions_write_only_under_runs(synthesized: Synthesized) -> None:
    template = synthesized.pipeline
    written = {
        render(resource)
        for _, props in _functions_by_command(template).values()
        for statement in _statements(template, props["Role"]["Fn::GetAtt"][0])
        if "s3:PutObject" in _actions(statement)
        for resource in _resources(statement)
    }
    assert written and all(resource.endswith("/runs/*") for resource in written)


def test_segment_reads_its_batch_checkpoints_under_runs(synthesized: Synthesized) -> None:
    template = synthesized.pipeline
    _, segment = _functions_by_command(template)[HANDLERS["Segment"]]
    read = {
        render(resource)
        for statement in _statements(template, segment["Role"]["Fn::GetAtt"][0])
        if "s3:GetObject*" in _actions(statement)
        for resource in _resources(statement)
    }
    assert any(resource.endswith("/runs/*") for resource in read), read


def test_functions_know_the_store_bucket(synthesized: Synthesized) -> None:
    template = synthesized.pipeline
    bucket = render(
        only_resource(template, "AWS::StepFunctions::StateMachine")["DefinitionSubstitutions"][
            "BucketName"
        ]
    )
    stores = {
        render(props["Environment"]["Variables"]["PLATESEG_STORE"])
        for _, props in _functions_by_command(template).values()
    }
    assert stores == {f"s3://{bucket}"}


def test_segment_function_is_sized_from_the_config(
    synthesized: Synthesized, cdk_context: dict[str, Any]
) -> None:
    _, segment = _functions_by_command(synthesized.pipeline)[HANDLERS["Segment"]]
    tunables = cdk_context["plateseg"]
    assert (segment["MemorySize"], segment["Timeout"]) == (
        tunables["segment_memory_mb"],
        tunables["segment_timeout_seconds"],
    )


def test_image_build_context_holds_only_what_the_dockerfile_copies(
    synthesized: Synthesized,
) -> None:
    contexts = [p.parent.parent for p in synthesized.outdir.glob("asset.*/lambdas/Dockerfile")]
    assert [sorted(p.name for p in context.iterdir()) for context in contexts] == [
        ["lambdas", "plateseg", "pyproject.toml", "requirements.lock"]
    ]


def test_stack_outputs_name_the_state_machine_and_the_bucket(synthesized: Synthesized) -> None:
    outputs = synthesized.pipeline.to_json()["Outputs"]
    assert {"StateMachineArn", "BucketName"} <= set(outputs)


def test_every_dockerfile_copy_source_is_in_the_staged_build_context(
    synthesized: Synthesized,
) -> None:
    dockerfiles = list(synthesized.outdir.glob("asset.*/lambdas/Dockerfile"))
    sources = [
        line.split()[1].rstrip("/")
        for line in dockerfiles[0].read_text(encoding="utf-8").splitlines()
        if line.startswith("COPY ")
    ]
    assert sources and all((dockerfiles[0].parent.parent / s).exists() for s in sources)


def test_dockerignore_for_manual_builds_matches_the_staged_exclude() -> None:
    ignore = REPO_ROOT / "lambdas" / "Dockerfile.dockerignore"
    patterns = [
        line.strip()
        for line in ignore.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns == IMAGE_ASSET_EXCLUDE
