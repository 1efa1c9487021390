"""Property tests (hypothesis) for JSONPath reads, ResultPath writes and templates."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plateseg.engine.paths import payload_size, read_path, write_result
from plateseg.engine.templates import evaluate_template

KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ_", min_size=1, max_size=6)
SCALARS = st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=5)
PATHS = st.lists(KEYS, min_size=1, max_size=4)

FAST = settings(max_examples=75, deadline=None)


def nest(keys: list[str], leaf: Any) -> dict[str, Any]:
    value: Any = leaf
    for key in reversed(keys):
        value = {key: value}
    return value  # type: ignore[no-any-return]


@FAST
@given(keys=PATHS, leaf=JSON)
def test_read_path_finds_the_nested_value(keys: list[str], leaf: Any) -> None:
    assert read_path(nest(keys, leaf), "$." + ".".join(keys)) == leaf


@FAST
@given(data=OBJECTS, keys=PATHS, result=JSON)
def test_result_path_write_then_read(data: dict[str, Any], keys: list[str], result: Any) -> None:
    # A path through non-objects is a States.Runtime error; keep to writable paths.
    node: Any = data
    for key in keys[:-1]:
        if node is None:  # missing or null: created as an object
            break
        assume(isinstance(node, dict))
        node = node.get(key)
    assume(node is None or isinstance(node, dict))
    before = copy.deepcopy(data)
    written = write_result(data, "$." + ".".join(keys), result)
    assert read_path(written, "$." + ".".join(keys)) == result
    assert data == before  # the raw input is not mutated
    for key in data:
        if key != keys[0]:
            assert written[key] == data[key]


@FAST
@given(data=JSON, result=JSON)
def test_result_path_dollar_replaces_everything(data: Any, result: Any) -> None:
    assert write_result(data, "$", result) == result


@FAST
@given(template=st.dictionaries(KEYS, JSON, max_size=5), data=OBJECTS)
def test_template_without_paths_is_itself(template: dict[str, Any], data: Any) -> None:
    assert evaluate_template(template, data, {}) == template


@FAST
@given(data=OBJECTS.filter(bool), static=st.dictionaries(KEYS, SCALARS, max_size=3))
def test_template_path_keys_select_and_drop_the_suffix(
    data: dict[str, Any], static: dict[str, Any]
) -> None:
    template: dict[str, Any] = {f"{key}.$": f"$.{key}" for key in data}
    template.update({f"lit_{k}": v for k, v in static.items()})
    out = evaluate_template(template, data, {})
    assert {k: out[k] for k in data} == data
    assert {k[4:]: out[k] for k in out if k.startswith("lit_")} == static


@FAST
@given(value=JSON)
def test_payload_size_is_compact_utf8_json(value: Any) -> None:
    expected = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    assert payload_size(value) == expected
