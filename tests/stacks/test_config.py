"""The typed deployment config: defaults, validation, errors naming key and range."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stacks.config import CONTEXT_KEY, ConfigError, PlatesegConfig

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


def test_missing_context_means_the_defaults() -> None:
    assert PlatesegConfig.from_context(None) == PlatesegConfig()


def test_cdk_json_context_is_valid() -> None:
    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"][CONTEXT_KEY]
    defaults = PlatesegConfig().model_dump()
    expected = {**defaults, **context}
    expected["segment_retry"] = {**defaults["segment_retry"], **context.get("segment_retry", {})}
    assert PlatesegConfig.from_context(context).model_dump() == expected


def test_nested_retry_values_are_read() -> None:
    config = PlatesegConfig.from_context({"segment_retry": {"max_attempts": 0, "jitter": "NONE"}})
    assert (config.segment_retry.max_attempts, config.segment_retry.jitter) == (0, "NONE")


def test_config_is_frozen() -> None:
    config = PlatesegConfig()
    with pytest.raises(ValidationError):
        config.map_max_concurrency = 5


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"map_max_concurrency": 0}, r"plateseg\.map_max_concurrency = 0: .*1 <= value <= 10000"),
        ({"map_max_concurrency": 10001}, r"map_max_concurrency = 10001: .*<= 10000"),
        ({"items_per_batch": 1001}, r"plateseg\.items_per_batch = 1001: .*1 <= value <= 1000"),
        ({"max_bytes_per_batch": 262145}, r"max_bytes_per_batch = 262145: .*<= 262144"),
        ({"tolerated_failure_percentage": -1}, r"tolerated_failure_percentage = -1: .*0\.0 <="),
        ({"segment_memory_mb": 64}, r"segment_memory_mb = 64: .*128 <= value <= 10240"),
        ({"segment_timeout_seconds": 901}, r"segment_timeout_seconds = 901: .*<= 900"),
        ({"stage": "qa"}, r"plateseg\.stage = 'qa': .*one of 'dev', 'prod'"),
        ({"segment_retry": {"jitter": "HALF"}}, r"retry\.jitter = 'HALF': .*'FULL', 'NONE'"),
        ({"segment_retry": {"backoff_rate": 0.5}}, r"retry\.backoff_rate = 0\.5: .*1\.0 <="),
        ({"map_max_concurrency": "10"}, r"map_max_concurrency = '10': .*valid integer"),
        ({"map_max_concurrency": True}, r"map_max_concurrency = True: .*valid integer"),
        ({"max_concurrency": 5}, r"plateseg\.max_concurrency: unknown key; allowed keys: stage"),
        ({"segment_retry": {"delay": 1}}, r"retry\.delay: unknown key; allowed keys: inter"),
        ({"segment_retry": 3}, r"plateseg\.segment_retry = 3: .*an object with keys"),
    ],
)
def test_bad_value_names_the_key_and_what_is_allowed(
    context: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        PlatesegConfig.from_context(context)


def test_every_bad_key_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        PlatesegConfig.from_context({"items_per_batch": 0, "segment_memory_mb": 1})
    assert [p.split(" = ")[0] for p in caught.value.problems] == [
        "plateseg.items_per_batch",
        "plateseg.segment_memory_mb",
    ]


def test_retry_delay_cap_below_interval_is_refused() -> None:
    retry = {"interval_seconds": 10, "max_delay_seconds": 5}
    with pytest.raises(ConfigError, match=r"max_delay_seconds \(5\) must be at least interval_sec"):
        PlatesegConfig.from_context({"segment_retry": retry})


def test_context_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"plateseg = \[1\]: must be an object"):
        PlatesegConfig.from_context([1])


def test_express_children_must_fit_five_minutes() -> None:
    with pytest.raises(ConfigError, match=r"EXPRESS'.*may run 4530 s.*stop at 300 s"):
        PlatesegConfig.from_context({"child_execution_type": "EXPRESS"})


def test_express_children_that_fit_are_accepted() -> None:
    retry = {"max_attempts": 2, "interval_seconds": 2, "backoff_rate": 2.0}
    config = PlatesegConfig.from_context(
        {"child_execution_type": "EXPRESS", "segment_timeout_seconds": 90, "segment_retry": retry}
    )
    assert config.child_worst_case_seconds() == 3 * 90 + 2 + 4


def test_reserved_concurrency_below_map_concurrency_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"segment_reserved_concurrency \(50\) is below map_max"):
        PlatesegConfig.from_context({"segment_reserved_concurrency": 50})


@pytest.mark.parametrize(
    ("stage", "explicit", "expected"),
    [("dev", None, "DESTROY"), ("prod", None, "RETAIN"), ("prod", "SNAPSHOT", "SNAPSHOT")],
)
def test_removal_policy_follows_the_stage_unless_set(
    stage: str, explicit: str | None, expected: str
) -> None:
    config = PlatesegConfig.from_context({"stage": stage, "removal_policy": explicit})
    assert config.removal == expected


def test_multi_az_and_deletion_protection_follow_the_stage_unless_set() -> None:
    prod = PlatesegConfig.from_context({"stage": "prod"})
    dev = PlatesegConfig.from_context({"database": {"multi_az": True}})
    assert (prod.multi_az, prod.deletion_protection) == (True, True)
    assert (dev.multi_az, dev.deletion_protection) == (True, False)


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"database": {"instance_class": "db.t4g.micro"}}, r"database\.instance_class = 'db\.t4g"),
        ({"database": {"backup_retention_days": 36}}, r"backup_retention_days = 36: .*<= 35"),
        (
            {"database": {"existing": {"secret_arn": "nope"}}},
            r"database\.existing\.secret_arn = 'nope'",
        ),
        ({"existing_bucket_name": "Bad_Name"}, r"existing_bucket_name = 'Bad_Name'"),
        ({"alarm_email": "not-an-address"}, r"alarm_email = 'not-an-address'"),
    ],
)
def test_new_keys_name_the_key(context: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        PlatesegConfig.from_context(context)


def test_existing_database_subnets_pair_with_zones() -> None:
    existing = {
        "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
        "vpc_id": "vpc-0123456789abcdef0",
        "availability_zones": ["eu-west-1a"],
        "subnet_ids": ["subnet-1", "subnet-2"],
        "security_group_id": "sg-0123456789abcdef0",
    }
    with pytest.raises(ConfigError, match=r"subnet_ids \(2\) and availability_zones \(1\)"):
        PlatesegConfig.from_context({"database": {"existing": existing}})
