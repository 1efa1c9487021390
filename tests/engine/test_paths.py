from __future__ import annotations

import pytest

from plateseg.engine.paths import (
    PAYLOAD_LIMIT_BYTES,
    check_payload_size,
    parse_reference_path,
    path_problem,
    read_path,
    write_result,
)
from plateseg.engine.templates import evaluate_template
from plateseg.errors import StatesError

DATA = {"a": {"b": [10, 20, {"c": "x"}]}, "odd key": 1, "items": [{"n": 1}, {"n": 2}]}


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("$", ()),
        ("$.a.b", ("a", "b")),
        ("$.a[0]", ("a", 0)),
        ("$['odd key']", ("odd key",)),
        ('$["x"].y[12]', ("x", "y", 12)),
        ("$.items[*].n", None),
        ("$..n", None),
    ],
)
def test_parse_reference_path(path: str, segments: tuple | None) -> None:
    assert parse_reference_path(path) == segments


def test_read_reference_paths() -> None:
    assert read_path(DATA, "$") is DATA
    assert read_path(DATA, "$.a.b[2].c") == "x"
    assert read_path(DATA, "$['odd key']") == 1


def test_read_context_path() -> None:
    context = {"Execution": {"Name": "run-1"}}
    assert read_path({}, "$$.Execution.Name", context=context) == "run-1"


def test_read_complex_path_returns_every_match() -> None:
    assert read_path(DATA, "$.items[*].n") == [1, 2]
    assert read_path(DATA, "$.items[?(@.n > 1)]") == [{"n": 2}]


@pytest.mark.parametrize("path", ["$.missing", "$.a.b[7]", "$.a.b.c"])
def test_missing_path_is_states_runtime(path: str) -> None:
    with pytest.raises(StatesError) as info:
        read_path(DATA, path, field="InputPath")
    assert info.value.name == "States.Runtime"
    assert path in info.value.cause and "InputPath" in info.value.cause


def test_write_result_creates_intermediate_objects_and_copies() -> None:
    raw = {"a": 1}
    out = write_result(raw, "$.x.y", {"r": True})
    assert out == {"a": 1, "x": {"y": {"r": True}}}
    assert raw == {"a": 1}


def test_write_result_dollar_replaces_and_index_writes() -> None:
    assert write_result({"a": 1}, "$", 5) == 5
    assert write_result({"l": [0, 1]}, "$.l[1]", "y") == {"l": [0, "y"]}


def test_write_result_through_scalar_is_result_path_match_failure() -> None:
    with pytest.raises(StatesError) as info:
        write_result({"a": 1}, "$.a.b", 2)
    assert info.value.name == "States.ResultPathMatchFailure"


def test_template_paths_intrinsics_and_nesting() -> None:
    template = {
        "plain": "text",
        "picked.$": "$.a.b[1]",
        "name.$": "$$.Execution.Name",
        "nested": [{"n.$": "$.items[0].n"}, 3],
        "fmt.$": "States.Format('{}/{}', $.a.b[0], $$.Execution.Name)",
    }
    out = evaluate_template(template, DATA, {"Execution": {"Name": "e"}})
    assert out == {
        "plain": "text",
        "picked": 20,
        "name": "e",
        "nested": [{"n": 1}, 3],
        "fmt": "10/e",
    }


def test_template_missing_path_fails() -> None:
    with pytest.raises(StatesError) as info:
        evaluate_template({"x.$": "$.nope"}, {}, {})
    assert info.value.name == "States.Runtime" and "x.$" in info.value.cause


def test_path_problem_messages() -> None:
    assert path_problem("$.a") is None
    assert "start with '$'" in (path_problem("a.b") or "")
    assert "reference path" in (path_problem("$.a[*]", reference=True) or "")
    assert "context path" in (path_problem("$$.Execution", context=False) or "")


def test_payload_limit() -> None:
    check_payload_size("x" * (PAYLOAD_LIMIT_BYTES - 2), "output")
    with pytest.raises(StatesError) as info:
        check_payload_size("é" * (PAYLOAD_LIMIT_BYTES // 2), "output of state 'S'")
    assert info.value.name == "States.DataLimitExceeded"
    assert "output of state 'S'" in info.value.cause
