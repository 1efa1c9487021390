"""JSONata expressions (``"{% … %}"``) of JSONata states, evaluated with jsonata-python.

A string is an expression when it starts with ``{%`` and ends with ``%}``; any other
string is a literal. Expressions see ``$states`` (``input``, ``context``, and where
the field allows them ``result`` and ``errorOutput``), the workflow variables, and the
functions Step Functions adds to JSONata 2.0: ``$partition``, ``$range``, ``$hash``,
``$random`` (with an optional seed), ``$uuid`` and ``$parse``. ``$eval`` is not
available (AWS: use ``$parse``).

Every failure while evaluating — a JSONata error, an expression that returns nothing
(undefined), a result of the wrong type for its field — is
``States.QueryEvaluationError``, naming the expression and the field as AWS does:
``The JSONata expression '$states.input.x' specified for the field 'Arguments/x'
returned nothing (undefined).``

>>> evaluate_template({"n": "{% $states.input.a + 1 %}", "k": [1, "{% $x %}"]},
...                   {"states": {"input": {"a": 1}}, "x": "v"}, "Output")
{'n': 2, 'k': [1, 'v']}
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import uuid
from typing import Any

from jsonata import Jsonata
from jsonata.utils import Utils

from plateseg.errors import StatesError

__all__ = [
    "QUERY_ERROR",
    "evaluate_expression",
    "evaluate_template",
    "expression_problems",
    "is_expression",
    "query_error",
]

QUERY_ERROR = "States.QueryEvaluationError"


def is_expression(value: Any) -> bool:
    """Whether ``value`` is a JSONata expression string ``"{% … %}"``."""
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


def _body(text: str) -> str:
    return text[2:-2].strip()


def query_error(cause: str) -> StatesError:
    """A ``States.QueryEvaluationError`` with ``cause``."""
    return StatesError(QUERY_ERROR, cause)


# --- the functions Step Functions adds to JSONata ---------------------------------------

_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384"}
_HASHES["SHA-512"] = "sha512"


def _is_int(value: Any) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, int | float) and float(value).is_integer()
    )


def _partition(array: Any, size: Any) -> list[Any]:
    if not isinstance(array, list):
        raise query_error("$partition: the first argument must be an array")
    if not _is_int(size) or size <= 0:
        raise query_error(f"$partition: the chunk size must be a positive integer, got {size!r}")
    step = int(size)
    return [array[i : i + step] for i in range(0, len(array), step)]


def _range(start: Any, end: Any, step: Any) -> list[int]:
    if not all(_is_int(v) for v in (start, end, step)):
        raise query_error("$range: start, end and step must be integers")
    start, end, step = int(start), int(end), int(step)
    if step == 0:
        raise query_error("$range: the step must not be 0")
    items = list(range(start, end + (1 if step > 0 else -1), step))
    if len(items) > 1000:
        raise query_error("$range: the result would have more than 1000 items")
    return items


def _hash(data: Any, algorithm: Any) -> str:
    if algorithm not in _HASHES:
        raise query_error(f"$hash: algorithm must be one of {sorted(_HASHES)}, got {algorithm!r}")
    if not isinstance(data, str):
        raise query_error("$hash: the value to hash must be a string")
    return hashlib.new(_HASHES[algorithm], data.encode()).hexdigest()


def _random(seed: Any = None) -> float:
    if seed is None:
        return random.random()
    if not _is_int(seed):
        raise query_error(f"$random: the seed must be an integer, got {seed!r}")
    return random.Random(int(seed)).random()


def _uuid() -> str:
    return str(uuid.uuid4())


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise query_error("$parse: the argument must be a string holding JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise query_error(f"$parse: the string is not JSON ({exc.msg})") from None


def _no_eval(*_args: Any) -> Any:
    raise query_error("$eval is not available in Step Functions: use $parse")


class _Native(Jsonata.JFunctionCallable):
    def __init__(self, function: Any) -> None:
        self.function = function

    def call(self, input: Any, args: Any) -> Any:
        return self.function(*(args or []))


#: name → (callable, JSONata signature)
_FUNCTIONS: dict[str, tuple[Any, str | None]] = {
    "partition": (_partition, "<an:a>"),
    "range": (_range, "<nnn:a>"),
    "hash": (_hash, "<js:s>"),
    "random": (_random, None),
    "uuid": (_uuid, "<:s>"),
    "parse": (_parse, "<s:j>"),
    "eval": (_no_eval, None),
}
_BOUND = {name: Jsonata.JFunction(_Native(fn), sig) for name, (fn, sig) in _FUNCTIONS.items()}


# --- compiling and evaluating ------------------------------------------------------------

_local = threading.local()


def _compiled(body: str) -> Jsonata:
    """The parsed expression, cached per thread (a ``Jsonata`` object is not thread-safe)."""
    cache: dict[str, Jsonata] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    expression = cache.get(body)
    if expression is None:
        expression = Jsonata(body)
        expression.set_output_convert_nulls(False)
        for name, function in _BOUND.items():  # once per expression, not per evaluation
            expression.register_function(name, function)
        if len(cache) > 2048:
            cache.clear()
        cache[body] = expression
    return expression


def expression_problems(value: Any, pointer: str) -> list[str]:
    """Every JSONata syntax error in ``value`` (a template or one expression)."""
    if isinstance(value, dict):
        return [
            p
            for key, item in value.items()
            for p in expression_problems(item, f"{pointer}/{_escape(key)}")
        ]
    if isinstance(value, list):
        return [
            p for i, item in enumerate(value) for p in expression_problems(item, f"{pointer}/{i}")
        ]
    if not is_expression(value):
        return []
    body = _body(value)
    if not body:
        return [f"{pointer}: an empty JSONata expression"]
    try:
        _compiled(body)
    except Exception as exc:  # jsonata raises JException and, at times, plain errors
        return [f"{pointer}: not a valid JSONata expression {body!r}: {exc}"]
    return []


def evaluate_expression(text: str, bindings: dict[str, Any], field: str) -> Any:
    """Evaluate one ``"{% … %}"`` string; a result of nothing is an error.

    Parameters
    ----------
    text : str
        The expression with its ``{% %}`` delimiters.
    bindings : dict
        ``states`` and the workflow variables.
    field : str
        Where the expression is, as AWS names it (``Arguments/Payload``).

    Raises
    ------
    StatesError
        ``States.QueryEvaluationError``.
    """
    body = _body(text)
    try:
        expression = _compiled(body)
        Jsonata.CURRENT.jsonata = expression  # $now() and $millis() read this instance
        result = expression.evaluate(None, bindings)
    except StatesError as err:
        raise query_error(
            f"The JSONata expression '{body}' specified for the field '{field}' failed: {err.cause}"
        ) from None
    except Exception as exc:  # JException, and Python errors jsonata lets through
        code = getattr(exc, "error", None)
        reason = f"{code}: {exc}" if code else f"{type(exc).__name__}: {exc}"
        raise query_error(
            f"The JSONata expression '{body}' specified for the field '{field}' "
            f"threw an error during evaluation. {reason}"
        ) from None
    if result is None:
        raise query_error(
            f"The JSONata expression '{body}' specified for the field '{field}' "
            "returned nothing (undefined)."
        )
    return Utils.convert_nulls(result)


def evaluate_template(template: Any, bindings: dict[str, Any], field: str) -> Any:
    """Evaluate every expression in ``template`` (objects and arrays at any depth)."""
    if isinstance(template, str):
        return (
            evaluate_expression(template, bindings, field) if is_expression(template) else template
        )
    if isinstance(template, dict):
        return {
            key: evaluate_template(value, bindings, f"{field}/{key}")
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [
            evaluate_template(value, bindings, f"{field}/{index}")
            for index, value in enumerate(template)
        ]
    return template


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
