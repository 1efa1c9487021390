"""ASL intrinsic functions: ``States.Format('{} x', $.a)`` and friends.

An intrinsic is parsed once (:func:`parse_intrinsic`, cached) into a small tree of
:class:`Call`, :class:`Literal` and :class:`PathArg`; unknown names and malformed calls
are :class:`~plateseg.errors.DefinitionError`. Evaluation failures (wrong argument
types, out-of-range index) raise ``States.IntrinsicFailure``, the ASL error name for it.

>>> evaluate_intrinsic("States.Format('{}-{}', $.a, 2)", {"a": "x"}, {})
'x-2'
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from plateseg.engine.paths import path_problem, read_path
from plateseg.errors import DefinitionError, StatesError

__all__ = ["FUNCTIONS", "Call", "Literal", "PathArg", "evaluate_intrinsic", "parse_intrinsic"]


@dataclass(frozen=True)
class Literal:
    """A constant argument; ``raw`` keeps a string's escapes for ``States.Format``."""

    value: Any
    raw: str | None = None


@dataclass(frozen=True)
class PathArg:
    """A ``$``/``$$`` path argument."""

    path: str


@dataclass(frozen=True)
class Call:
    """``States.Name(args...)``."""

    name: str
    args: tuple[Literal | PathArg | Call, ...]


_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_NAME = re.compile(r"States\.[A-Za-z0-9]+")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> DefinitionError:
        return DefinitionError(f"intrinsic {self.text!r}: {why} at character {self.pos}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\n":
            self.pos += 1

    def call(self) -> Call:
        match = _NAME.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected 'States.<Function>('")
        name = match.group(0)
        if name not in FUNCTIONS:
            raise DefinitionError(
                f"intrinsic {self.text!r}: unknown or unsupported function {name!r}"
            )
        self.pos = match.end()
        self.skip()
        if self.text[self.pos : self.pos + 1] != "(":
            raise self.fail("expected '('")
        self.pos += 1
        args: list[Literal | PathArg | Call] = []
        self.skip()
        if self.text[self.pos : self.pos + 1] == ")":
            self.pos += 1
        else:
            while True:
                self.skip()
                args.append(self.argument())
                self.skip()
                char = self.text[self.pos : self.pos + 1]
                self.pos += 1
                if char == ")":
                    break
                if char != ",":
                    raise self.fail("expected ',' or ')'")
        low, high, _ = FUNCTIONS[name]
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise DefinitionError(
                f"intrinsic {self.text!r}: {name} takes {want} arguments, got {len(args)}"
            )
        return Call(name, tuple(args))

    def argument(self) -> Literal | PathArg | Call:
        rest = self.text[self.pos :]
        if rest.startswith("States."):
            return self.call()
        if rest.startswith("'"):
            return self.string()
        if rest.startswith("$"):
            return self.path()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if rest.startswith(word):
                self.pos += len(word)
                return Literal(value)
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            number = match.group(0)
            return Literal(float(number) if match.group(1) or match.group(2) else int(number))
        raise self.fail("expected a string, number, boolean, null, path or intrinsic")

    def string(self) -> Literal:
        start = self.pos = self.pos + 1
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == "'":
                raw = self.text[start : self.pos]
                self.pos += 1
                return Literal("".join(chars), raw)
            chars.append(char)
            self.pos += 1
        raise self.fail("unterminated string")

    def path(self) -> PathArg:
        start, depth, quote = self.pos, 0, ""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char in "[(":
                depth += 1
            elif char in "])":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            self.pos += 1
        path = self.text[start : self.pos].strip()
        problem = path_problem(path, variables=True)
        if problem:
            raise DefinitionError(f"intrinsic {self.text!r}: {problem}")
        return PathArg(path)


@lru_cache(maxsize=1024)
def parse_intrinsic(text: str) -> Call:
    """Parse an intrinsic function call.

    Raises
    ------
    DefinitionError
        Unknown function, wrong argument count, or malformed syntax.
    """
    parser = _Parser(text.strip())
    call = parser.call()
    parser.skip()
    if parser.pos != len(parser.text):
        raise parser.fail("unexpected text after the call")
    return call


def evaluate_intrinsic(text: str, data: Any, context: Any, field: str = "intrinsic") -> Any:
    """Evaluate an intrinsic call against state ``data`` and the ``$$`` ``context``."""
    return _evaluate(parse_intrinsic(text), data, context, field)


def _evaluate(node: Literal | PathArg | Call, data: Any, context: Any, field: str) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, PathArg):
        return read_path(data, node.path, context=context, field=field)
    values = [_evaluate(arg, data, context, field) for arg in node.args]
    function = FUNCTIONS[node.name][2]
    try:
        if node.name == "States.Format":
            first = node.args[0]
            template = first.raw if isinstance(first, Literal) and first.raw is not None else None
            return _format(values, template)
        return function(*values)
    except StatesError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, OverflowError) as exc:
        raise StatesError("States.IntrinsicFailure", f"{node.name}: {exc}") from None


def _fail(message: str) -> StatesError:
    return StatesError("States.IntrinsicFailure", message)


def _need(value: Any, kind: type | tuple[type, ...], name: str, what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
        raise _fail(f"{name}: {what}, got {json.dumps(value, default=str)[:80]}")
    return value


def _format(values: list[Any], raw: str | None) -> str:
    template = _need(values[0], str, "States.Format", "the template must be a string")
    args = values[1:]
    source = raw if raw is not None else template
    pieces: list[str] = []
    used = 0
    i = 0
    while i < len(source):
        char = source[i]
        if raw is not None and char == "\\" and i + 1 < len(source):
            pieces.append(source[i + 1])
            i += 2
            continue
        if source.startswith("{}", i):
            if used >= len(args):
                raise _fail("States.Format: more '{}' placeholders than arguments")
            pieces.append(_format_text(args[used]))
            used += 1
            i += 2
            continue
        pieces.append(char)
        i += 1
    if used != len(args):
        raise _fail(f"States.Format: {len(args)} arguments for {used} '{{}}' placeholders")
    return "".join(pieces)


def _format_text(value: Any) -> str:
    """How ``States.Format`` writes an argument, as AWS records it.

    Strings as they are; numbers, booleans and null as JSON; objects and arrays in
    Java's ``Map``/``List`` form, unquoted: ``{"Arg1": 1, "Arg2": []}`` → ``{Arg1=1, Arg2=[]}``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_format_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_format_text(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _json_key(value: Any) -> str:
    """Identity of a JSON value for ArrayContains/ArrayUnique: type-exact, key order free.

    ``true`` is not ``1`` and ``1`` is not ``1.0`` (as Jackson's nodes compare in AWS).
    """
    return json.dumps(value, sort_keys=True)


def _array_partition(array: Any, size: Any) -> list[list[Any]]:
    _need(array, list, "States.ArrayPartition", "the first argument must be an array")
    if _need(size, int, "States.ArrayPartition", "the chunk size must be an integer") <= 0:
        raise _fail("States.ArrayPartition: the chunk size must be positive")
    return [array[i : i + size] for i in range(0, len(array), size)]


def _array_range(start: Any, end: Any, step: Any) -> list[int]:
    for value in (start, end, step):
        _need(value, int, "States.ArrayRange", "arguments must be integers")
    if step == 0:
        raise _fail("States.ArrayRange: the step must not be 0")
    items = list(range(start, end + (1 if step > 0 else -1), step))
    if len(items) > 1000:
        raise _fail("States.ArrayRange: the result would have more than 1000 items")
    return items


def _array_get_item(array: Any, index: Any) -> Any:
    _need(array, list, "States.ArrayGetItem", "the first argument must be an array")
    _need(index, int, "States.ArrayGetItem", "the index must be an integer")
    if not 0 <= index < len(array):
        raise _fail(f"States.ArrayGetItem: index {index} is out of range for {len(array)} items")
    return array[index]


def _array_unique(array: Any) -> list[Any]:
    _need(array, list, "States.ArrayUnique", "the argument must be an array")
    seen: set[str] = set()
    out = []
    for item in array:
        key = _json_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


_HASHES = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


def _hash(data: Any, algorithm: Any) -> str:
    if algorithm not in _HASHES:
        raise _fail(f"States.Hash: algorithm must be one of {sorted(_HASHES)}, got {algorithm!r}")
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return hashlib.new(_HASHES[algorithm], text.encode()).hexdigest()


def _json_merge(left: Any, right: Any, deep: Any) -> dict[str, Any]:
    _need(left, dict, "States.JsonMerge", "both arguments must be objects")
    _need(right, dict, "States.JsonMerge", "both arguments must be objects")
    if deep is not False:
        raise _fail("States.JsonMerge: only shallow merging (false) is supported, as in AWS")
    return {**left, **right}


def _round_half_up(value: int | float) -> int:
    """Java's ``Math.round``: the nearest integer, halves toward positive infinity.

    >>> [_round_half_up(v) for v in (1.49, 1.5, -1.49, -1.5, -1.51, 2.5)]
    [1, 2, -1, -1, -2, 3]
    """
    if isinstance(value, int):
        return value
    whole = math.floor(value)
    return whole + 1 if value - whole >= 0.5 else whole


def _math_add(a: Any, b: Any) -> int:
    """Sum of two numbers, each first rounded as AWS (Java) rounds: (1.5, 1.51) → 4."""
    _need(a, (int, float), "States.MathAdd", "arguments must be numbers")
    _need(b, (int, float), "States.MathAdd", "arguments must be numbers")
    return _round_half_up(a) + _round_half_up(b)


def _math_random(start: Any, end: Any, seed: Any = None) -> int:
    _need(start, int, "States.MathRandom", "start and end must be integers")
    _need(end, int, "States.MathRandom", "start and end must be integers")
    if end <= start:
        raise _fail("States.MathRandom: end must be greater than start")
    rng = random.Random(seed) if seed is not None else random.Random()
    return rng.randrange(start, end)


def _string_split(text: Any, delimiters: Any) -> list[str]:
    _need(text, str, "States.StringSplit", "arguments must be strings")
    _need(delimiters, str, "States.StringSplit", "arguments must be strings")
    if not delimiters:
        return [text] if text else []
    pattern = "[" + re.escape(delimiters) + "]"
    return [part for part in re.split(pattern, text) if part]


def _not_json(word: str) -> Any:
    raise _fail(f"States.StringToJson: not JSON: {word} is not a JSON value")


def _string_to_json(text: Any) -> Any:
    """Parse a JSON string; an empty or blank string gives ``null``, as in AWS."""
    _need(text, str, "States.StringToJson", "the argument must be a string")
    if not text.strip():
        return None
    try:
        return json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise _fail(f"States.StringToJson: not JSON: {exc.msg}") from None


def _b64decode(text: Any) -> str:
    _need(text, str, "States.Base64Decode", "the argument must be a string")
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(f"States.Base64Decode: {exc}") from None


def _array_length(array: Any) -> int:
    return len(_need(array, list, "States.ArrayLength", "the argument must be an array"))


def _array_contains(array: Any, value: Any) -> bool:
    _need(array, list, "States.ArrayContains", "the first argument must be an array")
    key = _json_key(value)
    return any(_json_key(item) == key for item in array)


def _b64encode(text: Any) -> str:
    _need(text, str, "States.Base64Encode", "the argument must be a string")
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


#: name → (min args, max args, implementation)
FUNCTIONS: dict[str, tuple[int, int, Callable[..., Any]]] = {
    "States.Format": (1, 10_000, lambda *a: _format(list(a), None)),
    "States.StringToJson": (1, 1, _string_to_json),
    "States.JsonToString": (1, 1, lambda v: json.dumps(v, separators=(",", ":"))),
    "States.Array": (0, 10_000, lambda *a: list(a)),
    "States.ArrayPartition": (2, 2, _array_partition),
    "States.ArrayContains": (2, 2, _array_contains),
    "States.ArrayRange": (3, 3, _array_range),
    "States.ArrayGetItem": (2, 2, _array_get_item),
    "States.ArrayLength": (1, 1, _array_length),
    "States.ArrayUnique": (1, 1, _array_unique),
    "States.Base64Encode": (1, 1, _b64encode),
    "States.Base64Decode": (1, 1, _b64decode),
    "States.Hash": (2, 2, _hash),
    "States.JsonMerge": (3, 3, _json_merge),
    "States.MathRandom": (2, 3, _math_random),
    "States.MathAdd": (2, 2, _math_add),
    "States.StringSplit": (2, 2, _string_split),
    "States.UUID": (0, 0, lambda: str(uuid.uuid4())),
}
