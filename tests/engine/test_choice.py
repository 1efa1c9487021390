from __future__ import annotations

from typing import Any

import pytest

from plateseg.engine.choice import evaluate_rule, parse_rule
from plateseg.errors import StatesError

DATA = {
    "n": 5,
    "m": 7,
    "s": "apple",
    "b": True,
    "t": "2024-05-01T12:00:00Z",
    "later": "2024-06-01T00:00:00+00:00",
    "nothing": None,
    "file": "B03_s1_w1.tif",
}


def check(rule: dict[str, Any]) -> bool:
    problems: list[str] = []
    parsed = parse_rule({**rule, "Next": "X"}, "/c", problems, True)
    assert problems == []
    return evaluate_rule(parsed, DATA, {})


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.n", "NumericEquals": 5}, True),
        ({"Variable": "$.n", "NumericGreaterThan": 5}, False),
        ({"Variable": "$.n", "NumericLessThanEquals": 5}, True),
        ({"Variable": "$.n", "NumericLessThanPath": "$.m"}, True),
        ({"Variable": "$.s", "StringEquals": "apple"}, True),
        ({"Variable": "$.s", "StringGreaterThan": "apricot"}, False),
        ({"Variable": "$.s", "StringEqualsPath": "$.s"}, True),
        ({"Variable": "$.file", "StringMatches": "B03_*_w1.tif"}, True),
        ({"Variable": "$.file", "StringMatches": "*_w2.tif"}, False),
        ({"Variable": "$.b", "BooleanEquals": True}, True),
        ({"Variable": "$.t", "TimestampLessThan": "2024-05-01T13:00:00Z"}, True),
        ({"Variable": "$.t", "TimestampGreaterThanPath": "$.later"}, False),
        ({"Variable": "$.s", "NumericEquals": 5}, False),
        ({"Variable": "$.nothing", "IsNull": True}, True),
        ({"Variable": "$.absent", "IsPresent": False}, True),
        ({"Variable": "$.n", "IsPresent": True}, True),
        ({"Variable": "$.n", "IsNumeric": True}, True),
        ({"Variable": "$.b", "IsNumeric": True}, False),
        ({"Variable": "$.s", "IsString": True}, True),
        ({"Variable": "$.b", "IsBoolean": True}, True),
        ({"Variable": "$.t", "IsTimestamp": True}, True),
        ({"Variable": "$.s", "IsTimestamp": True}, False),
        (
            {
                "And": [
                    {"Variable": "$.n", "NumericEquals": 5},
                    {"Variable": "$.s", "StringEquals": "apple"},
                ]
            },
            True,
        ),
        (
            {
                "Or": [
                    {"Variable": "$.n", "NumericEquals": 1},
                    {"Variable": "$.b", "BooleanEquals": False},
                ]
            },
            False,
        ),
        ({"Not": {"Variable": "$.n", "NumericEquals": 1}}, True),
    ],
)
def test_rules(rule: dict[str, Any], expected: bool) -> None:
    assert check(rule) is expected


def test_missing_variable_is_runtime_error() -> None:
    with pytest.raises(StatesError) as info:
        check({"Variable": "$.absent", "NumericEquals": 1})
    assert info.value.name == "States.Runtime"


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"Variable": "$.n"}, "exactly one operator"),
        ({"Variable": "$.n", "NumericEquals": "5"}, "wrong type"),
        ({"Variable": "$.n", "NumericEqualsPath": "n"}, "not a JSONPath"),
        ({"Variable": "$.n", "IsNull": "yes"}, "true or false"),
        ({"Variable": "$.n", "Bogus": 1}, "unsupported"),
    ],
)
def test_rule_problems(rule: dict[str, Any], fragment: str) -> None:
    problems: list[str] = []
    parse_rule({**rule, "Next": "X"}, "/States/C/Choices/0", problems, True)
    assert any(fragment in p for p in problems), problems
