"""Retry and Catch: which retrier or catcher matches an error, and how long to wait.

AWS rules followed here:

* retriers and catchers are tried in order; the first whose ``ErrorEquals`` matches
  wins, and an exhausted retrier does not fall through to the next one;
* ``States.ALL`` matches every error except ``States.Runtime`` (never catchable) and
  ``States.DataLimitExceeded`` (by name only, unless a task's result raised it); alone, last;
* ``States.TaskFailed`` matches any error a task raised except ``States.Timeout``;
* delay of retry *n* (from 1) is ``IntervalSeconds * BackoffRate**(n-1)``, capped by
  ``MaxDelaySeconds``; ``JitterStrategy: FULL`` draws uniformly from ``[0, delay]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from plateseg.errors import StatesError

__all__ = [
    "Catcher",
    "Retrier",
    "TaskFailure",
    "error_matches",
    "find_catcher",
    "find_retrier",
    "parse_catchers",
    "parse_retriers",
    "retry_delay",
]

_NOT_ALL = frozenset({"States.Runtime", "States.DataLimitExceeded"})


class TaskFailure(StatesError):
    """An error raised by a task's resource (a Lambda's exception, a timeout, a crash)."""


@dataclass(frozen=True)
class Retrier:
    """One ``Retry`` entry."""

    error_equals: tuple[str, ...]
    interval_seconds: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter: str = "NONE"


@dataclass(frozen=True)
class Catcher:
    """One ``Catch`` entry; ``result_path`` ``None`` discards the error output."""

    error_equals: tuple[str, ...]
    next: str
    result_path: str | None = "$"
    assign: Any = None
    output: Any = None
    has_output: bool = False


def error_matches(patterns: Sequence[str], error: StatesError) -> bool:
    """Whether an ``ErrorEquals`` list matches ``error``."""
    if error.name in StatesError.UNCATCHABLE:
        return False
    for pattern in patterns:
        if pattern == error.name:
            return True
        if pattern == "States.ALL" and (
            error.name not in _NOT_ALL or isinstance(error, TaskFailure)
        ):
            return True
        if (
            pattern == "States.TaskFailed"
            and isinstance(error, TaskFailure)
            and error.name != "States.Timeout"
        ):
            return True
    return False


def find_retrier(retriers: Sequence[Retrier], error: StatesError) -> int | None:
    """Index of the first retrier matching ``error``, or ``None``."""
    for index, retrier in enumerate(retriers):
        if error_matches(retrier.error_equals, error):
            return index
    return None


def find_catcher(catchers: Sequence[Catcher], error: StatesError) -> Catcher | None:
    """The first catcher matching ``error``, or ``None``."""
    for catcher in catchers:
        if error_matches(catcher.error_equals, error):
            return catcher
    return None


def retry_delay(
    retrier: Retrier, attempt: int, uniform: Callable[[float, float], float] | None = None
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = first retry).

    Parameters
    ----------
    retrier : Retrier
    attempt : int
        1-based retry number.
    uniform : callable, optional
        ``uniform(low, high)`` random source for ``FULL`` jitter.
    """
    delay = retrier.interval_seconds * retrier.backoff_rate ** (attempt - 1)
    if retrier.max_delay_seconds is not None:
        delay = min(delay, retrier.max_delay_seconds)
    if retrier.jitter == "FULL":
        import random

        delay = (uniform or random.uniform)(0.0, delay)
    return delay


_RETRY_FIELDS = {
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "Comment",
}
_CATCH_FIELDS = {
    "JSONPath": {"ErrorEquals", "Next", "ResultPath", "Comment", "Assign"},
    "JSONata": {"ErrorEquals", "Next", "Output", "Comment", "Assign"},
}


def _error_equals(entry: dict[str, Any], where: str, problems: list[str]) -> tuple[str, ...]:
    names = entry.get("ErrorEquals")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        problems.append(f"{where}/ErrorEquals: must be a non-empty array of error names")
        return ()
    if "States.ALL" in names and len(names) > 1:
        problems.append(f"{where}/ErrorEquals: States.ALL must appear alone")
    return tuple(names)


def _number(entry: dict[str, Any], key: str, where: str, low: float, problems: list[str]) -> Any:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        problems.append(f"{where}/{key}: must be a number >= {low}, got {value!r}")
        return None
    return value


def parse_retriers(raw: Any, where: str, problems: list[str]) -> tuple[Retrier, ...]:
    """Parse a ``Retry`` array, appending problems (with JSON pointers) to ``problems``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{where}: Retry must be an array")
        return ()
    out = []
    for index, entry in enumerate(raw):
        at = f"{where}/{index}"
        if not isinstance(entry, dict):
            problems.append(f"{at}: a retrier must be an object")
            continue
        problems.extend(
            f"{at}/{key}: unsupported field" for key in entry if key not in _RETRY_FIELDS
        )
        names = _error_equals(entry, at, problems)
        if "States.ALL" in names and index != len(raw) - 1:
            problems.append(f"{at}: a States.ALL retrier must be the last one")
        kwargs: dict[str, Any] = {}
        for key, arg, low in (
            ("IntervalSeconds", "interval_seconds", 1),
            ("MaxAttempts", "max_attempts", 0),
            ("BackoffRate", "backoff_rate", 1),
            ("MaxDelaySeconds", "max_delay_seconds", 1),
        ):
            if key in entry:
                value = _number(entry, key, at, low, problems)
                if value is not None:
                    kwargs[arg] = value
        jitter = entry.get("JitterStrategy", "NONE")
        if jitter not in ("FULL", "NONE"):
            problems.append(f"{at}/JitterStrategy: must be FULL or NONE, got {jitter!r}")
        out.append(Retrier(error_equals=names, jitter=jitter, **kwargs))
    return tuple(out)


def parse_catchers(
    raw: Any, where: str, problems: list[str], language: str = "JSONPath"
) -> tuple[Catcher, ...]:
    """Parse a ``Catch`` array, appending problems to ``problems``.

    A JSONPath catcher may have ``ResultPath`` and ``Assign``; a JSONata one ``Output``
    and ``Assign`` (checked by the caller with the state's other expressions).
    """
    from plateseg.engine.paths import path_problem

    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{where}: Catch must be an array")
        return ()
    out = []
    for index, entry in enumerate(raw):
        at = f"{where}/{index}"
        if not isinstance(entry, dict):
            problems.append(f"{at}: a catcher must be an object")
            continue
        problems.extend(
            f"{at}/{key}: unsupported field in a {language} catcher"
            for key in entry
            if key not in _CATCH_FIELDS[language]
        )
        names = _error_equals(entry, at, problems)
        if "States.ALL" in names and index != len(raw) - 1:
            problems.append(f"{at}: a States.ALL catcher must be the last one")
        target = entry.get("Next")
        if not isinstance(target, str):
            problems.append(f"{at}/Next: a catcher needs a Next state name")
            target = ""
        result_path = entry.get("ResultPath", "$")
        if result_path is not None:
            problem = path_problem(result_path, reference=True, context=False)
            if problem:
                problems.append(f"{at}/ResultPath: {problem}")
        out.append(
            Catcher(
                error_equals=names,
                next=target,
                result_path=result_path,
                assign=entry.get("Assign"),
                output=entry.get("Output"),
                has_output="Output" in entry,
            )
        )
    return tuple(out)
