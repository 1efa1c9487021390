"""JSONPath reads on state data and the ``$$`` context, and ResultPath writes.

Reference paths (``$``, ``$.a.b``, ``$.a[0]``, ``$['x']``) take a fast hand-written
route; anything else (wildcards, filters, slices, recursive descent) goes to
``jsonpath-ng`` and, as in AWS, yields the array of every match. A path that starts
with a variable name (``$order.items[0]``) reads a workflow variable: the context
object passed in carries the scope (``context.variables``).

>>> read_path({"a": {"b": [1, 2]}}, "$.a.b[1]")
2
>>> write_result({"a": 1}, "$.x.y", 5)
{'a': 1, 'x': {'y': 5}}
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from typing import Any

from plateseg.errors import StatesError

__all__ = [
    "PAYLOAD_LIMIT_BYTES",
    "check_payload_size",
    "over_payload_limit",
    "parse_reference_path",
    "path_problem",
    "payload_size",
    "read_path",
    "variable_of",
    "write_result",
]

#: Step Functions' limit on a state's input or output: 256 KiB of UTF-8 JSON.
PAYLOAD_LIMIT_BYTES = 256 * 1024

_SEGMENT = re.compile(
    r"""\.(?P<name>[^.\[\]*@?()\s'"]+)"""
    r"""|\[(?P<index>\d+)\]"""
    r"""|\['(?P<sq>(?:[^'\\]|\\.)*)'\]"""
    r"""|\["(?P<dq>(?:[^"\\]|\\.)*)"\]"""
)

Segment = str | int

#: ``$name`` at the start of a path: a workflow variable (not ``$.``, ``$[`` or ``$$``).
_VARIABLE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)")


def variable_of(path: str) -> tuple[str, str] | None:
    """``("name", "$.rest")`` for a variable path ``$name.rest``, else ``None``."""
    match = _VARIABLE.match(path)
    if match is None:
        return None
    return match.group(1), "$" + path[match.end() :]


@lru_cache(maxsize=4096)
def parse_reference_path(path: str) -> tuple[Segment, ...] | None:
    """Split a reference path into keys and indexes; ``None`` if it is not one.

    Parameters
    ----------
    path : str
        A JSONPath starting with ``$`` (the ``$$`` prefix is handled by the caller).

    Returns
    -------
    tuple of str and int, or None
        ``("a", 0, "b")`` for ``$.a[0].b``; ``()`` for ``$``.
    """
    if not path.startswith("$"):
        return None
    segments: list[Segment] = []
    pos = 1
    while pos < len(path):
        match = _SEGMENT.match(path, pos)
        if match is None:
            return None
        if match.group("name") is not None:
            segments.append(match.group("name"))
        elif match.group("index") is not None:
            segments.append(int(match.group("index")))
        else:
            quoted = match.group("sq") if match.group("sq") is not None else match.group("dq")
            segments.append(re.sub(r"\\(.)", r"\1", quoted))
        pos = match.end()
    return tuple(segments)


@lru_cache(maxsize=512)
def _compiled(path: str) -> Any:
    from jsonpath_ng.ext import parse

    return parse(path)


def path_problem(
    path: Any, *, reference: bool = False, context: bool = True, variables: bool = False
) -> str | None:
    """Why ``path`` is not a usable JSONPath, or ``None`` if it is.

    Parameters
    ----------
    path : Any
        The value found in the definition.
    reference : bool
        Require a reference path (ResultPath, Choice ``Variable`` may be any path).
    context : bool
        Allow ``$$`` context paths.
    variables : bool
        Allow paths that start with a workflow variable (``$name…``).
    """
    if not isinstance(path, str) or not path.startswith("$"):
        return f"{path!r} is not a JSONPath (it must start with '$')"
    body = path
    variable = variable_of(path)
    if variable is not None:
        if not variables:
            return f"{path!r}: a workflow variable cannot be read here"
        body = variable[1]
    if path.startswith("$$"):
        if not context:
            return f"{path!r}: a context path ('$$') is not allowed here"
        body = path[1:]
    if parse_reference_path(body) is not None:
        return None
    if reference:
        return f"{path!r} is not a reference path (only '.name', '[n]' and ['name'] steps)"
    try:
        _compiled(body)
    except Exception as exc:
        return f"{path!r} is not a valid JSONPath: {exc}"
    return None


def _preview(data: Any, limit: int = 200) -> str:
    text = json.dumps(data, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: ``read_path``'s default: no ``$$`` context object was passed.
_NO_CONTEXT: Any = object()


def read_path(data: Any, path: str, *, context: Any = _NO_CONTEXT, field: str = "path") -> Any:
    """Select the value at ``path`` in ``data`` (or in ``context`` for ``$$`` paths).

    ``$$`` alone selects the whole context object, as AWS does for ``InputPath``,
    ``OutputPath``, ``ItemsPath`` and the other path fields.

    Raises
    ------
    StatesError
        ``States.Runtime`` when a reference path selects nothing, or when a ``$$`` path
        is read where the caller passed no context object.
    """
    target = data
    body = path
    variable = variable_of(path) if path[1:2].isalpha() or path[1:2] == "_" else None
    if variable is not None:
        scope = getattr(context, "variables", None)
        try:
            target = scope.lookup(variable[0]) if scope is not None else None
            if scope is None:
                raise KeyError(variable[0])
        except KeyError:
            raise StatesError(
                "States.Runtime",
                f"The variable '${variable[0]}' read by the field '{field}' is not assigned",
            ) from None
        body = variable[1]
    elif path.startswith("$$"):
        if context is _NO_CONTEXT:
            raise StatesError(
                "States.Runtime",
                f"The context path '{path}' specified for the field '{field}' "
                "cannot be read here: the local engine has no context object for it",
            )
        target, body = context, path[1:]
    segments = parse_reference_path(body)
    if segments is None:
        return [match.value for match in _compiled(body).find(target)]
    value = target
    for segment in segments:
        by_index = isinstance(segment, int) and isinstance(value, list) and segment < len(value)
        by_key = isinstance(segment, str) and isinstance(value, dict) and segment in value
        if by_index or by_key:
            value = value[segment]
        else:
            raise StatesError(
                "States.Runtime",
                f"The JSONPath '{path}' specified for the field '{field}' could not be found "
                f"in the input '{_preview(target)}'",
            )
    return value


def write_result(raw_input: Any, result_path: str, result: Any) -> Any:
    """Place ``result`` into a copy of ``raw_input`` at ``result_path``.

    Intermediate objects are created as needed; ``$`` replaces the whole input.

    Raises
    ------
    StatesError
        ``States.ResultPathMatchFailure`` when the path crosses a value that is not an
        object (or an array index past the end), as AWS names that failure.
    """
    segments = parse_reference_path(result_path)
    if segments is None:
        raise StatesError(
            "States.ResultPathMatchFailure", f"ResultPath {result_path!r} is not a reference path"
        )
    if not segments:
        return result
    output = copy.deepcopy(raw_input)
    node = output
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if isinstance(segment, int):
            if not isinstance(node, list) or segment >= len(node):
                raise _unwritable(result_path, raw_input)
            if last:
                node[segment] = result
            else:
                node = node[segment]
            continue
        if not isinstance(node, dict):
            raise _unwritable(result_path, raw_input)
        if last:
            node[segment] = result
        else:
            if segment not in node or node[segment] is None:
                node[segment] = {}
            node = node[segment]
    return output


def _unwritable(path: str, raw_input: Any) -> StatesError:
    return StatesError(
        "States.ResultPathMatchFailure",
        f"Unable to apply ResultPath '{path}' to input '{_preview(raw_input)}': "
        "the path crosses a value that is not an object or an index past an array's end",
    )


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def payload_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON, the measure of the payload limit."""
    if value is None or isinstance(value, bool | int | float):
        return len(json.dumps(value)) if isinstance(value, float) else len(str(value))
    return len(_COMPACT.encode(value).encode("utf-8"))


def over_payload_limit(value: Any) -> int | None:
    """The size of ``value`` in bytes if it is over 256 KiB, else ``None``."""
    if isinstance(value, str) and 6 * len(value) + 2 <= PAYLOAD_LIMIT_BYTES:
        return None  # even if every character were escaped as \uXXXX it would fit
    size = payload_size(value)
    return size if size > PAYLOAD_LIMIT_BYTES else None


def check_payload_size(value: Any, where: str) -> None:
    """Raise ``States.DataLimitExceeded`` if ``value`` is over 256 KiB."""
    size = over_payload_limit(value)
    if size is not None:
        raise StatesError(
            "States.DataLimitExceeded",
            f"The {where} has a size of {size} bytes, which exceeds the maximum "
            f"of {PAYLOAD_LIMIT_BYTES} bytes.",
        )
