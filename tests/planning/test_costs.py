"""Pricing: hand-computed bills from the dated price table."""

from __future__ import annotations

import pytest

from plateseg.errors import InputError
from plateseg.planning import PRICES_DATE, lambda_cost_usd, run_cost_usd
from plateseg.planning.costs import RunQuantities, express_cost_usd, price_run
from plateseg.planning.prices import PRICES


def test_prices_carry_their_date() -> None:
    assert PRICES_DATE == "2026-11-23"
    assert PRICES.lambda_gb_second_arm64 < PRICES.lambda_gb_second_x86


def test_lambda_cost_is_gb_seconds_plus_requests() -> None:
    # 10 s at 1,024 MB = 10 GB-s; 5 requests
    expected = 10 * 0.0000166667 + 5 * 0.20 / 1e6
    assert lambda_cost_usd(10_000, 1024, 5) == pytest.approx(expected)


def test_arm64_is_cheaper_per_gb_second() -> None:
    x86 = lambda_cost_usd(3_600_000, 2048, 0)
    arm = lambda_cost_usd(3_600_000, 2048, 0, arch="arm64")
    assert x86 == pytest.approx(7200 * 0.0000166667)
    assert arm == pytest.approx(7200 * 0.0000133334)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"billed_ms": -1.0, "memory_mb": 1024, "requests": 1}, "billed_ms"),
        ({"billed_ms": 1.0, "memory_mb": 64, "requests": 1}, "memory_mb = 64"),
        ({"billed_ms": 1.0, "memory_mb": 1024, "requests": 1, "arch": "sparc"}, "sparc"),
    ],
)
def test_lambda_cost_refuses_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        lambda_cost_usd(**kwargs)  # type: ignore[arg-type]


def test_express_rounds_duration_up_to_100_ms_and_memory_to_64_mb() -> None:
    # 1.01 s -> 1.1 s; 64 MB = 0.0625 GB
    one = 1e-6 + 1.1 * 0.0625 * 0.00001667
    assert express_cost_usd(1, 1.01) == pytest.approx(one)
    assert express_cost_usd(10, 1.01) == pytest.approx(10 * one)
    assert express_cost_usd(1, 1.0, memory_mb=65) == pytest.approx(1e-6 + 1.0 * 0.125 * 0.00001667)


def test_standard_children_cost_three_transitions_each() -> None:
    q = RunQuantities(
        fields=100,
        batches=10,
        segment_billed_seconds=0.0,
        segment_memory_mb=1024,
        small_function_seconds=0.0,
        child_seconds=1.0,
    )
    bill = price_run(q)
    # 5 parent transitions + 10 children x (1 in the parent + 2 inside)
    assert bill.step_functions == pytest.approx(35 * 0.025 / 1000)
    assert bill.s3_requests == 0.0
    express = price_run(RunQuantities(**{**q.__dict__, "execution_type": "EXPRESS"}))
    assert express.step_functions == pytest.approx(15 * 0.025 / 1000 + express_cost_usd(10, 1.0))


def test_run_cost_adds_every_item_of_the_bill() -> None:
    # 1,000 images, 100 batches, 1,900 s of Segment at 2 GB
    segment = 1900 * 2 * 0.0000166667 + 100 * 0.2e-6
    other = 10 * 1 * 0.0000166667 + 2 * 0.2e-6
    sfn = (5 + 100 + 200) * 0.025e-3
    # PUTs: the label mask per image, Parquet part + checkpoint per batch
    s3 = (2000 + 5) * 0.0004e-3 + (1000 + 200 + 5) * 0.005e-3
    assert run_cost_usd(1000, 100, 1900.0, 2048) == pytest.approx(segment + other + sfn + s3)


def test_run_cost_express_is_cheaper_for_short_batches() -> None:
    standard = run_cost_usd(1000, 1000, 1000.0, 2048)
    express = run_cost_usd(1000, 1000, 1000.0, 2048, "EXPRESS")
    assert express < standard


def test_run_cost_refuses_unknown_execution_type() -> None:
    with pytest.raises(InputError, match="BATCH"):
        run_cost_usd(10, 1, 1.0, 2048, "BATCH")
