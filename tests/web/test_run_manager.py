"""The background run manager: progress from engine events, throughput, ETA, cancel."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from plateseg.engine import Event
from plateseg.errors import ExecutionFailed
from plateseg.runs import RunManager, RunProgress, with_timing
from plateseg.settings import Settings
from plateseg.store import LocalStore

from .conftest import EXPERIMENT


def _event(kind: str, **details: Any) -> Event:
    return Event(kind, datetime.now(UTC), details)


def test_events_become_a_progress_snapshot(settings: Settings) -> None:
    seen: dict[str, RunProgress] = {}
    release = threading.Event()
    manager: RunManager

    def runner(experiment_id: str, **kwargs: Any) -> None:
        listener = kwargs["listener"]
        listener(_event("StateEntered", name="Segment"))
        listener(_event("MapRunStarted", total=10))
        listener(
            _event(
                "MapRunProgress", pending=4, running=2, succeeded=3, failed=1, aborted=0, total=10
            )
        )
        seen["mid"] = manager.get("r1")
        release.wait(10)

    manager = RunManager(settings, runner=runner)
    manager.start("EXP-1", "r1", {})
    release.set()
    final = manager.wait("r1", timeout=10)
    mid = seen["mid"]
    assert (mid.phase, mid.total, mid.succeeded, mid.failed, mid.running) == (
        "Segment",
        10,
        3,
        1,
        2,
    )
    assert mid.throughput is not None and mid.throughput > 0
    assert mid.eta_seconds is not None and mid.eta_seconds > 0
    assert final.status == "SUCCEEDED"
    assert final.finished_at is not None


def test_the_throughput_of_a_finished_run_is_frozen_at_its_end(settings: Settings) -> None:
    """It used to fall on every view: done / (now - map start) long after the end."""

    def runner(experiment_id: str, **kwargs: Any) -> None:
        listener = kwargs["listener"]
        listener(_event("MapRunStarted", total=4))
        counts = {"pending": 0, "running": 0, "succeeded": 4, "failed": 0, "aborted": 0}
        listener(_event("MapRunProgress", total=4, **counts))

    manager = RunManager(settings, runner=runner)
    manager.start("EXP-1", "r1", {})
    ended = manager.wait("r1", timeout=10)
    assert ended.status == "SUCCEEDED" and ended.throughput is not None
    threading.Event().wait(0.3)  # later views of the finished run
    assert manager.get("r1").throughput == ended.throughput
    assert [p.throughput for p in manager.active()] == [ended.throughput]


def test_eta_extrapolates_the_throughput() -> None:
    started = datetime.now(UTC) - timedelta(seconds=10)
    progress = RunProgress("r", "e", "local", total=100, succeeded=20, started_at=started)
    timed = with_timing(progress, map_started=0.0, now=10.0)
    assert timed.throughput == 2.0
    assert timed.eta_seconds == 40.0


def test_failed_execution_keeps_error_and_cause(settings: Settings) -> None:
    def runner(experiment_id: str, **kwargs: Any) -> None:
        raise ExecutionFailed("NoImagesError", "experiment EXP-1 has no images", "r2")

    manager = RunManager(settings, runner=runner)
    manager.start("EXP-1", "r2", {})
    final = manager.wait("r2", timeout=10)
    assert (final.status, final.error) == ("FAILED", "NoImagesError")
    assert final.cause == "experiment EXP-1 has no images"


def test_a_bug_in_the_engine_is_reported_without_internals(settings: Settings) -> None:
    def runner(experiment_id: str, **kwargs: Any) -> None:
        raise KeyError("secret internal detail")

    manager = RunManager(settings, runner=runner)
    manager.start("EXP-1", "r3", {})
    final = manager.wait("r3", timeout=10)
    assert (final.status, final.error) == ("FAILED", "InternalError")
    assert "secret" not in (final.cause or "")


def test_cancel_through_the_api_aborts_a_real_run(
    client: TestClient, demo: LocalStore, settings: Settings
) -> None:
    started = client.post("/api/runs", json={"experiment_id": EXPERIMENT}).json()
    assert started["can_cancel"] is True
    cancelled = client.post(f"/api/runs/{started['run_id']}/cancel")
    assert cancelled.status_code == 200
    manager = client.app.state.plateseg.backend.manager  # type: ignore[attr-defined]
    final = manager.wait(started["run_id"], timeout=120)
    assert final.status == "ABORTED"
    assert final.error == "States.Aborted"
    assert client.get(f"/api/runs/{started['run_id']}").json()["status"] == "ABORTED"


def test_failed_images_make_a_run_retryable_but_not_redrivable(settings: Settings) -> None:
    class Result:
        images_ok, images_failed, batches_failed = 11, 1, 0

    class Outcome:
        result = Result()

    def runner(experiment_id: str, **kwargs: Any) -> Outcome:
        return Outcome()

    manager = RunManager(settings, runner=runner)
    manager.start("EXP-1", "r4", {})
    final = manager.wait("r4", timeout=10)
    assert (final.status, final.succeeded, final.failed) == ("SUCCEEDED", 11, 1)
    assert (final.can_redrive, final.can_retry) == (False, True)
    assert final.as_json()["can_retry"] is True
