"""Recommendations: sensible choices whose cdk.json values pass the real CDK validator."""

from __future__ import annotations

import json

import pytest

from plateseg.errors import InputError
from plateseg.planning.model import FieldProfile, Setting, predict
from plateseg.planning.recommend import cdk_values, express_retry, grid, recommend
from stacks.config import CONTEXT_KEY, PlatesegConfig

DEFAULT_CDK = {"stage": "dev"}


def validated(values: dict[str, object]) -> PlatesegConfig:
    """Merge into a cdk.json context and validate with stacks.config, as synth does."""
    context = json.loads(json.dumps({CONTEXT_KEY: {**DEFAULT_CDK, **values}}))
    return PlatesegConfig.from_context(context[CONTEXT_KEY])


@pytest.mark.parametrize(
    ("seconds", "fields"),
    [(0.1, 192), (1.0, 10_000), (8.0, 5_000), (60.0, 500), (0.5, 3)],
)
def test_every_recommendation_passes_cdk_validation(seconds: float, fields: int) -> None:
    profile = FieldProfile(seconds, cold_start_seconds=2.0, peak_mb=300.0)
    choice = recommend(grid(fields, profile))
    config = validated(choice.cdk_json)
    s = choice.prediction.setting
    assert config.items_per_batch == s.items_per_batch
    assert config.map_max_concurrency == s.max_concurrency
    assert config.segment_memory_mb == s.memory_mb
    assert config.child_execution_type == s.execution_type
    assert config.segment_timeout_seconds >= choice.prediction.cold_batch_seconds
    assert choice.reason


@pytest.mark.parametrize("objective", ["fastest", "cheapest", "balanced"])
def test_objectives_all_give_valid_x86_settings(objective: str) -> None:
    rows = grid(2_000, FieldProfile(1.0))
    choice = recommend(rows, objective)  # type: ignore[arg-type]
    assert choice.prediction.valid
    assert choice.prediction.setting.arch == "x86_64"
    validated(choice.cdk_json)


def test_balanced_is_within_slack_of_fastest_and_not_dearer() -> None:
    rows = grid(5_000, FieldProfile(1.0))
    fastest = recommend(rows, "fastest").prediction
    balanced = recommend(rows, "balanced", slack=0.10).prediction
    assert balanced.wall_seconds <= fastest.wall_seconds * 1.10 + 1e-9
    assert balanced.cost_usd is not None and fastest.cost_usd is not None
    assert balanced.cost_usd <= fastest.cost_usd
    cheapest = recommend(rows, "cheapest").prediction
    assert cheapest.cost_usd is not None and cheapest.cost_usd <= balanced.cost_usd


def test_long_batches_are_not_recommended_as_express() -> None:
    # 60 s per field: any batch outlasts what EXPRESS with retries allows
    choice = recommend(grid(500, FieldProfile(60.0)))
    assert choice.prediction.setting.execution_type == "STANDARD"


def test_express_values_lower_the_retries_to_fit_five_minutes() -> None:
    profile = FieldProfile(2.0)
    p = predict(1000, profile, Setting(16, 50, execution_type="EXPRESS"), _aws())
    values = cdk_values(p)
    config = validated(values)
    assert config.child_worst_case_seconds() <= 300
    assert values["segment_retry"]["max_attempts"] == express_retry(
        values["segment_timeout_seconds"]
    )


def test_memory_too_small_for_the_peak_is_never_recommended() -> None:
    choice = recommend(grid(1000, FieldProfile(1.0, peak_mb=1500.0)))
    assert choice.prediction.setting.memory_mb >= 1.2 * (150 + 1500)


def test_no_valid_setting_is_a_typed_error() -> None:
    with pytest.raises(InputError, match="no valid AWS setting"):
        recommend(grid(100, FieldProfile(1000.0)))
    with pytest.raises(InputError, match="objective"):
        recommend(grid(100, FieldProfile(1.0)), "quickest")  # type: ignore[arg-type]


def test_express_retry_matches_the_cdk_rule() -> None:
    for timeout in (10, 50, 54, 55, 90, 150, 299):
        attempts = express_retry(timeout)
        assert attempts is not None
        retry = {"max_attempts": attempts}
        config = validated(
            {
                "child_execution_type": "EXPRESS",
                "segment_timeout_seconds": timeout,
                "segment_retry": retry,
            }
        )
        assert config.child_worst_case_seconds() <= 300
        if attempts < 4:  # one more retry would break the rule
            with pytest.raises(ValueError, match="EXPRESS"):
                validated(
                    {
                        "child_execution_type": "EXPRESS",
                        "segment_timeout_seconds": timeout,
                        "segment_retry": {"max_attempts": attempts + 1},
                    }
                )
    assert express_retry(301) is None


def _aws():  # type: ignore[no-untyped-def]
    from plateseg.planning.model import AWS

    return AWS
