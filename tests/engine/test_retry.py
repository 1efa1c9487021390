from __future__ import annotations

import pytest

from plateseg.engine.retry import (
    Catcher,
    Retrier,
    TaskFailure,
    error_matches,
    find_catcher,
    find_retrier,
    parse_retriers,
    retry_delay,
)
from plateseg.errors import StatesError


def test_exponential_backoff_and_cap() -> None:
    retrier = Retrier(("X",), interval_seconds=2, backoff_rate=3.0, max_delay_seconds=30)
    assert [retry_delay(retrier, n) for n in (1, 2, 3, 4)] == [2, 6, 18, 30]


def test_defaults_are_one_second_doubling() -> None:
    retrier = parse_retriers([{"ErrorEquals": ["X"]}], "/r", [])[0]
    assert (retrier.interval_seconds, retrier.max_attempts, retrier.backoff_rate) == (1.0, 3, 2.0)
    assert [retry_delay(retrier, n) for n in (1, 2, 3)] == [1, 2, 4]


def test_full_jitter_draws_between_zero_and_delay() -> None:
    retrier = Retrier(("X",), interval_seconds=4, jitter="FULL")
    calls: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        calls.append((low, high))
        return high / 4

    assert retry_delay(retrier, 2, uniform) == 2.0
    assert calls == [(0.0, 8.0)]


def test_states_all_skips_runtime_and_data_limit() -> None:
    assert error_matches(["States.ALL"], StatesError("Custom", ""))
    assert not error_matches(["States.ALL"], StatesError("States.Runtime", ""))
    assert not error_matches(["States.ALL"], StatesError("States.DataLimitExceeded", ""))
    assert error_matches(["States.DataLimitExceeded"], StatesError("States.DataLimitExceeded", ""))
    assert not error_matches(["States.Runtime"], StatesError("States.Runtime", ""))


def test_task_failed_matches_task_errors_but_not_timeout() -> None:
    assert error_matches(["States.TaskFailed"], TaskFailure("ValueError", "{}"))
    assert not error_matches(["States.TaskFailed"], TaskFailure("States.Timeout", ""))
    assert not error_matches(["States.TaskFailed"], StatesError("States.NoChoiceMatched", ""))


def test_first_matching_retrier_and_catcher_win() -> None:
    retriers = (Retrier(("A",)), Retrier(("B", "C")), Retrier(("States.ALL",)))
    assert find_retrier(retriers, StatesError("C", "")) == 1
    assert find_retrier(retriers, StatesError("Z", "")) == 2
    catchers = (Catcher(("A",), "HandleA"), Catcher(("States.ALL",), "Any"))
    assert find_catcher(catchers, StatesError("A", "")).next == "HandleA"  # type: ignore[union-attr]
    assert find_catcher(catchers, StatesError("States.Runtime", "")) is None


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"ErrorEquals": []}, "non-empty"),
        ({"ErrorEquals": ["States.ALL", "X"]}, "alone"),
        ({"ErrorEquals": ["X"], "BackoffRate": 0.5}, "BackoffRate"),
        ({"ErrorEquals": ["X"], "JitterStrategy": "HALF"}, "JitterStrategy"),
        ({"ErrorEquals": ["X"], "Bogus": 1}, "unsupported field"),
    ],
)
def test_bad_retriers_are_reported(entry: dict, fragment: str) -> None:
    problems: list[str] = []
    parse_retriers([entry], "/States/T/Retry", problems)
    assert any(fragment in p and p.startswith("/States/T/Retry/0") for p in problems), problems
