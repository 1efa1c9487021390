from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import pytest

from plateseg.engine.intrinsics import evaluate_intrinsic, parse_intrinsic
from plateseg.errors import DefinitionError, StatesError

DATA = {"s": "a,b,,c", "n": 3, "arr": [1, 2, 2, 3], "obj": {"k": 1}, "name": "Ann"}


def run(text: str, data: Any = DATA) -> Any:
    return evaluate_intrinsic(text, data, {"Execution": {"Name": "exec"}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("States.Format('Hello, {}!', $.name)", "Hello, Ann!"),
        ("States.Format('{} {} {}', 1, true, null)", "1 true null"),
        (r"States.Format('literal \{\} and {}', $$.Execution.Name)", "literal {} and exec"),
        (r"States.Format('it\'s {}', 'x')", "it's x"),
        ("States.StringToJson('{\"a\": [1]}')", {"a": [1]}),
        ("States.JsonToString($.obj)", '{"k":1}'),
        ("States.Array(1, 'two', $.n)", [1, "two", 3]),
        ("States.ArrayPartition($.arr, 3)", [[1, 2, 2], [3]]),
        ("States.ArrayContains($.arr, 3)", True),
        ("States.ArrayContains($.arr, 9)", False),
        ("States.ArrayRange(1, 9, 2)", [1, 3, 5, 7, 9]),
        ("States.ArrayGetItem($.arr, 3)", 3),
        ("States.ArrayLength($.arr)", 4),
        ("States.ArrayUnique($.arr)", [1, 2, 3]),
        ("States.MathAdd($.n, -5)", -2),
        ("States.StringSplit($.s, ',')", ["a", "b", "c"]),
        ("States.StringSplit('a.b+c', '.+')", ["a", "b", "c"]),
        ("States.Base64Encode('hi there')", base64.b64encode(b"hi there").decode()),
        ("States.Base64Decode('aGkgdGhlcmU=')", "hi there"),
        ("States.Hash('abc', 'SHA-256')", hashlib.sha256(b"abc").hexdigest()),
        ("States.Hash('abc', 'MD5')", hashlib.md5(b"abc").hexdigest()),
        ("States.JsonMerge($.obj, States.StringToJson('{\"z\": 2}'), false)", {"k": 1, "z": 2}),
        ("States.ArrayLength(States.Array(1, 2))", 2),
    ],
)
def test_intrinsic_values(text: str, expected: Any) -> None:
    assert run(text) == expected


def test_uuid_is_version_4() -> None:
    assert uuid.UUID(run("States.UUID()")).version == 4


def test_math_random_range_and_seed() -> None:
    values = {run("States.MathRandom(5, 8)") for _ in range(50)}
    assert values <= {5, 6, 7}
    assert run("States.MathRandom(0, 1000, 42)") == run("States.MathRandom(0, 1000, 42)")


@pytest.mark.parametrize(
    "text",
    [
        "States.Nope(1)",
        "States.ArrayLength(1, 2)",
        "States.Format('x'",
        "States.UUID() trailing",
        "Format('x')",
    ],
)
def test_bad_intrinsics_are_definition_errors(text: str) -> None:
    with pytest.raises(DefinitionError):
        parse_intrinsic(text)


@pytest.mark.parametrize(
    "text",
    [
        "States.ArrayGetItem($.arr, 10)",
        "States.Format('{} {}', 1)",
        "States.StringToJson('not json')",
        "States.JsonMerge($.obj, $.obj, true)",
        "States.ArrayRange(0, 5000, 1)",
        "States.Hash('x', 'SHA-3')",
    ],
)
def test_runtime_failures_are_intrinsic_failure(text: str) -> None:
    with pytest.raises(StatesError) as info:
        run(text)
    assert info.value.name == "States.IntrinsicFailure"
