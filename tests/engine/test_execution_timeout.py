"""Top-level ``TimeoutSeconds`` ends the execution with ``States.Timeout`` (TIMED_OUT).

AWS: https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html
(``TimeoutSeconds``: "If the execution runs longer than the specified time, the
execution fails with a States.Timeout Error name"); the execution's status is
``TIMED_OUT`` (LocalStack's AWS-recorded snapshot ``TestTimeouts::test_global_timeout``,
tests/aws/services/stepfunctions/v2/timeouts/test_timeouts.snapshot.json).
The deadline is counted in ASL seconds, so it holds under a scaled clock too.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from plateseg.engine import Clock, Journal
from plateseg.errors import DefinitionError
from tests.engine.conftest import EngineFactory, RecordingClock, machine

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


def timed(states: dict[str, Any], seconds: Any = 10) -> dict[str, Any]:
    return {**machine(states), "TimeoutSeconds": seconds}


def wait(seconds: int, then: str | None = None) -> dict[str, Any]:
    flow: dict[str, Any] = {"Next": then} if then else {"End": True}
    return {"Type": "Wait", "Seconds": seconds, **flow}


def test_a_wait_past_the_deadline_times_out_under_a_clock_that_never_sleeps(
    make_engine: EngineFactory, clock: RecordingClock
) -> None:
    result = make_engine().run(timed({"W": wait(100)}), {})
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")
    assert "TimeoutSeconds (10 seconds)" in (result.cause or "")
    assert result.events[-1].type == "ExecutionTimedOut"
    assert len(clock.sleeps) == 1 and 9.9 < clock.sleeps[0] <= 10  # slept to the deadline only


def test_waits_add_up_across_states(make_engine: EngineFactory) -> None:
    result = make_engine().run(timed({"A": wait(6, "B"), "B": wait(6)}), {})
    assert result.status == "TIMED_OUT"


def test_within_the_deadline_the_execution_succeeds(make_engine: EngineFactory) -> None:
    result = make_engine().run(timed({"A": wait(4, "B"), "B": wait(5)}), {"x": 1})
    assert (result.status, result.output) == ("SUCCEEDED", {"x": 1})


def test_without_timeout_seconds_nothing_times_out(make_engine: EngineFactory) -> None:
    assert make_engine().run(machine({"W": wait(10**6)}), {}).status == "SUCCEEDED"


def test_a_scaled_real_clock_times_out_in_scaled_time(make_engine: EngineFactory) -> None:
    engine = make_engine(clock=Clock(time_scale=0.001))
    started = time.monotonic()
    result = engine.run(timed({"W": wait(3600)}, seconds=5), {})
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")
    assert time.monotonic() - started < 1.0  # 5 ASL seconds are 5 ms here


def test_catch_and_retry_do_not_handle_the_execution_timeout(make_engine: EngineFactory) -> None:
    branch = {"StartAt": "W", "States": {"W": wait(100)}}
    definition = timed(
        {
            "Par": {
                "Type": "Parallel",
                "Branches": [branch],
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}],
                "Catch": [
                    {"ErrorEquals": ["States.Timeout"], "Next": "Caught"},
                    {"ErrorEquals": ["States.ALL"], "Next": "Caught"},
                ],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        }
    )
    result = make_engine().run(definition, {})
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")
    assert "Caught" not in {e.details.get("name") for e in result.events}


def test_retry_back_off_counts_and_is_cut_at_the_deadline(
    make_engine: EngineFactory, clock: RecordingClock
) -> None:
    def always_fails(event: Any, context: Any) -> Any:
        raise ValueError("no")

    retry = {
        "ErrorEquals": ["States.ALL"],
        "IntervalSeconds": 4,
        "MaxAttempts": 9,
        "BackoffRate": 1,
    }
    definition = timed(
        {"T": {"Type": "Task", "Resource": f"{ARN}fails", "Retry": [retry], "End": True}}
    )
    result = make_engine({"fails": always_fails}).run(definition, {})
    assert result.status == "TIMED_OUT"
    assert clock.sleeps[:2] == [4, 4] and len(clock.sleeps) == 3 and clock.sleeps[2] <= 2


def test_parallel_branches_waiting_side_by_side_do_not_add_up(make_engine: EngineFactory) -> None:
    branch = {"StartAt": "W", "States": {"W": wait(6)}}
    parallel = {"Type": "Parallel", "Branches": [branch, branch, branch]}
    ok = make_engine().run(timed({"Par": {**parallel, "End": True}}), {})
    assert ok.status == "SUCCEEDED"
    # ... but the Parallel ends with its slowest branch: 6 s then 5 s is past 10 s.
    late = make_engine().run(timed({"Par": {**parallel, "Next": "W"}, "W": wait(5)}), {})
    assert late.status == "TIMED_OUT"


def test_a_running_lambda_is_given_up_at_the_deadline(make_engine: EngineFactory) -> None:
    release = threading.Event()

    def slow(event: Any, context: Any) -> Any:
        release.wait(5)
        return 1

    task = {
        "Type": "Task",
        "Resource": f"{ARN}slow",
        "TimeoutSeconds": 60,
        "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}],
        "End": True,
    }
    engine = make_engine({"slow": slow}, clock=Clock(time_scale=1))
    started = time.monotonic()
    result = engine.run(timed({"T": task, "Caught": {"Type": "Pass", "End": True}}, 1), {})
    took = time.monotonic() - started
    release.set()
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")
    assert took < 3  # the execution ended at its 1 s deadline, not after the task's 5 s


def test_a_distributed_map_child_past_the_deadline_times_out_the_execution(
    make_engine: EngineFactory,
) -> None:
    definition = timed(
        {
            "M": {
                "Type": "Map",
                "ToleratedFailurePercentage": 100,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "W",
                    "States": {"W": wait(30)},
                },
                "End": True,
            }
        }
    )
    result = make_engine().run(definition, [1, 2, 3])
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")


def test_the_journal_records_timed_out(make_engine: EngineFactory, tmp_path: Any) -> None:
    with Journal(tmp_path / "journal.sqlite") as journal:
        result = make_engine().run(timed({"W": wait(100)}), {}, name="t", journal=journal)
        recorded = journal.execution()
    assert result.status == "TIMED_OUT"
    assert recorded is not None and recorded["status"] == "TIMED_OUT"


@pytest.mark.parametrize("seconds", [0, -1, 1.5, "10", True, None])
def test_timeout_seconds_must_be_a_positive_integer(seconds: Any) -> None:
    from plateseg.engine import validate

    with pytest.raises(DefinitionError, match="/TimeoutSeconds: must be a positive integer"):
        validate(timed({"P": {"Type": "Pass", "End": True}}, seconds))


def test_timeout_seconds_of_a_branch_is_refused_by_name() -> None:
    from plateseg.engine import validate

    branch = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}, "TimeoutSeconds": 5}
    definition = machine({"Par": {"Type": "Parallel", "Branches": [branch], "End": True}})
    with pytest.raises(DefinitionError, match="/States/Par/Branches/0/TimeoutSeconds"):
        validate(definition)


@pytest.mark.parametrize("field", ["HeartbeatSeconds", "HeartbeatSecondsPath"])
def test_heartbeat_seconds_is_refused_by_name(field: str) -> None:
    """Not silently ignored: a Lambda task sends no heartbeats, so the engine refuses it."""
    from plateseg.engine import validate

    value: Any = 5 if field == "HeartbeatSeconds" else "$.beat"
    task = {"Type": "Task", "Resource": f"{ARN}f", "End": True, field: value}
    with pytest.raises(DefinitionError, match=f"/States/T/{field}: unsupported field.*heartbeats"):
        validate(machine({"T": task}))


def test_iterations_one_at_a_time_add_their_waits_up(make_engine: EngineFactory) -> None:
    def inline_map(concurrency: int) -> dict[str, Any]:
        processor = {"StartAt": "W", "States": {"W": wait(4)}}
        return {"Type": "Map", "MaxConcurrency": concurrency, "ItemProcessor": processor}

    side_by_side = make_engine().run(timed({"M": {**inline_map(0), "End": True}}), [1, 2, 3])
    assert side_by_side.status == "SUCCEEDED"
    one_at_a_time = make_engine().run(timed({"M": {**inline_map(1), "End": True}}), [1, 2, 3])
    assert one_at_a_time.status == "TIMED_OUT"  # 3 x 4 s > 10 s


@pytest.mark.parametrize(("concurrency", "status"), [(0, "SUCCEEDED"), (1, "TIMED_OUT")])
def test_distributed_children_one_at_a_time_add_their_waits_up(
    make_engine: EngineFactory, concurrency: int, status: str
) -> None:
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "W",
        "States": {"W": wait(4)},
    }
    state = {"Type": "Map", "MaxConcurrency": concurrency, "ItemProcessor": processor}
    result = make_engine().run(timed({"M": {**state, "End": True}}), [1, 2, 3])
    assert result.status == status
