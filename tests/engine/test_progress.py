"""ProgressTracker: Map Run counters, items/s and ETA from engine events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plateseg.engine import Event, ProgressTracker
from tests.engine.conftest import EngineFactory, machine


def event(type_: str, **details: Any) -> Event:
    return Event(type=type_, timestamp=datetime.now(UTC), details=details)


def test_rate_and_eta_from_progress_events() -> None:
    now = [100.0]
    seen: list[str] = []
    tracker = ProgressTracker(
        window_seconds=10, forward=lambda e: seen.append(e.type), monotonic=lambda: now[0]
    )
    tracker(event("StateEntered", name="Segment"))
    tracker(event("MapRunStarted", map_run_arn="arn:m", total=100, executions=10))
    tracker(event("MapRunProgress", pending=100, running=0, succeeded=0, failed=0, total=100))
    assert tracker.snapshot().items_per_second is None
    now[0] = 102.0
    tracker(event("MapRunProgress", pending=70, running=10, succeeded=18, failed=2, total=100))
    snap = tracker.snapshot()
    assert (snap.state, snap.map_run_arn, snap.done, snap.status) == (
        "Segment",
        "arn:m",
        20,
        "RUNNING",
    )
    assert snap.items_per_second == 10.0
    assert snap.eta_seconds == 8.0  # 80 pending or running at 10 items/s
    tracker(event("ExecutionSucceeded", output={}))
    assert tracker.snapshot().status == "SUCCEEDED"
    assert seen == [
        "StateEntered",
        "MapRunStarted",
        "MapRunProgress",
        "MapRunProgress",
        "ExecutionSucceeded",
    ]


def test_a_timed_out_execution_reads_as_the_aws_status() -> None:
    tracker = ProgressTracker(window_seconds=10)
    tracker(event("ExecutionTimedOut", error="States.Timeout"))
    assert tracker.snapshot().status == "TIMED_OUT"  # DescribeExecution's name, not TIMEDOUT


def test_old_samples_leave_the_window() -> None:
    now = [0.0]
    tracker = ProgressTracker(window_seconds=5, monotonic=lambda: now[0])
    tracker(event("MapRunStarted", map_run_arn="a", total=1000))
    for t, done in ((0, 0), (1, 500), (10, 510), (11, 520)):
        now[0] = float(t)
        tracker(event("MapRunProgress", pending=1000 - done, running=0, succeeded=done, failed=0))
    assert tracker.snapshot().items_per_second == 10.0  # (520 - 510) / (11 - 10)


def test_tracks_a_real_distributed_map(make_engine: EngineFactory) -> None:
    definition = machine(
        {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.l",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        }
    )
    tracker = ProgressTracker()
    make_engine().run(definition, {"l": list(range(50))}, listener=tracker)
    snap = tracker.snapshot()
    assert (snap.total, snap.succeeded, snap.pending, snap.status) == (50, 50, 0, "SUCCEEDED")
    assert snap.eta_seconds == 0.0
