"""Load on loopback and admission control: 50 clients, bounded runs, no errors.

The short variant of ``bench/load.py`` (``make load`` runs the long one): the real app
under uvicorn on 127.0.0.1, 50 clients starting runs and polling them for 5 s. The
admission tests drive :class:`AdmittedBackend` over the real :class:`LocalBackend` and
:class:`RunManager` with a runner that waits for the test's signal, so queueing is
observed without timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench.load import EXPERIMENT, TOKEN, make_home, max_overlap, run_load
from plateseg.errors import ResumeError
from plateseg.runs.local import LocalRunner as LocalBackend
from plateseg.runs.manager import RunManager
from plateseg.settings import Settings
from plateseg.web import WebSettings, create_app
from plateseg.web.admission import QUEUED, AdmittedBackend, RunsBusy, with_admission


class GatedRunner:
    """A ``run_local``-compatible runner that finishes a run when the test says so."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.entered = threading.Condition(self._lock)
        self.open = False  # after the test: every gate open, late starts end at once

    def __call__(self, experiment_id: str, *, run_id: str, **_: Any) -> None:
        with self._lock:
            self.started.append(run_id)
            gate = self.gates.setdefault(run_id, threading.Event())
            self.entered.notify_all()
            if self.open:
                return
        gate.wait(60)

    def release(self, run_id: str) -> None:
        with self._lock:
            self.gates.setdefault(run_id, threading.Event()).set()

    def wait_started(self, count: int) -> list[str]:
        with self._lock:
            self.entered.wait_for(lambda: len(self.started) >= count, timeout=60)
            return list(self.started)


@pytest.fixture
def runner() -> Iterator[GatedRunner]:
    gated = GatedRunner()
    yield gated
    gated.open = True
    for run_id in list(gated.gates):
        gated.release(run_id)


@pytest.fixture
def admitted(settings: Settings, runner: GatedRunner) -> AdmittedBackend:
    """Two runs at once, two more queued, over the real local backend."""
    inner = LocalBackend(settings, manager=RunManager(settings, runner=runner))
    return AdmittedBackend(inner, max_active=2, max_queued=2, poll_seconds=0.01)


def test_starts_beyond_the_slots_are_queued_then_run_in_order(
    admitted: AdmittedBackend, runner: GatedRunner
) -> None:
    first = [admitted.start("E", f"run-{i}", {}) for i in range(4)]
    assert [p.status for p in first] == ["RUNNING", "RUNNING", QUEUED, QUEUED]
    assert admitted.progress("run-3").phase == "queued (1 ahead)"
    assert [p.run_id for p in admitted.queued()] == ["run-2", "run-3"]
    assert runner.wait_started(2) == ["run-0", "run-1"]
    runner.release("run-0")
    assert runner.wait_started(3) == ["run-0", "run-1", "run-2"]
    assert admitted.progress("run-3").phase == "queued (0 ahead)"
    assert admitted.manager.wait("run-0", 30).status == "SUCCEEDED"


def test_a_start_beyond_the_queue_is_refused_with_429_naming_the_limits(
    admitted: AdmittedBackend,
) -> None:
    for i in range(4):
        admitted.start("E", f"run-{i}", {})
    with pytest.raises(RunsBusy) as refused:
        admitted.start("E", "run-4", {})
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": "5"}
    assert "2 runs running and 2 queued" in refused.value.detail
    assert "web_max_queued_runs" in refused.value.detail


def test_a_run_id_already_running_or_queued_is_refused_with_a_conflict(
    admitted: AdmittedBackend,
) -> None:
    for i in range(3):
        admitted.start("E", f"run-{i}", {})
    for run_id in ("run-0", "run-2"):
        with pytest.raises(ResumeError, match="already queued or running"):
            admitted.start("E", run_id, {})
    assert admitted.counts() == (2, 1)


def test_a_queued_run_can_be_cancelled_and_never_starts(
    admitted: AdmittedBackend, runner: GatedRunner
) -> None:
    for i in range(3):
        admitted.start("E", f"run-{i}", {})
    cancelled = admitted.cancel("run-2")
    assert (cancelled.status, cancelled.phase) == ("ABORTED", "cancelled before it started")
    runner.release("run-0")
    runner.release("run-1")
    admitted.manager.wait("run-1", 30)
    admitted.start("E", "run-3", {})  # takes a freed slot at once
    assert runner.wait_started(3) == ["run-0", "run-1", "run-3"]
    assert admitted.progress("run-2").status == "ABORTED"
    assert admitted.counts()[1] == 0


def test_redrive_and_retry_are_refused_while_every_slot_is_taken(
    admitted: AdmittedBackend,
) -> None:
    admitted.start("E", "run-0", {})
    admitted.start("E", "run-1", {})
    with pytest.raises(RunsBusy):
        admitted.redrive("an-earlier-run")
    with pytest.raises(RunsBusy):
        admitted.retry("an-earlier-run")


def test_redrive_or_retry_of_a_running_run_is_a_conflict_and_keeps_its_slot(
    admitted: AdmittedBackend, runner: GatedRunner
) -> None:
    admitted.start("E", "run-0", {})
    runner.wait_started(1)
    for again in (admitted.redrive, admitted.retry):
        with pytest.raises(ResumeError, match="still queued or running"):
            again("run-0")
    assert admitted.counts() == (1, 0)
    admitted.start("E", "run-1", {})
    admitted.start("E", "run-2", {})  # the slot run-0 holds is still counted: queued
    assert admitted.counts() == (2, 1)
    assert admitted.progress("run-2").status == QUEUED


def test_admission_bounds_only_the_local_engine_and_can_be_turned_off(
    settings: Settings,
) -> None:
    local = LocalBackend(settings)
    assert isinstance(with_admission(local, WebSettings()), AdmittedBackend)
    assert with_admission(local, WebSettings(web_max_active_runs=0)) is local


def test_the_api_answers_429_with_retry_after_when_the_server_is_full(
    settings: Settings, runner: GatedRunner
) -> None:
    make_home(settings.home)
    config = WebSettings(web_token=TOKEN, web_max_active_runs=1, web_max_queued_runs=1)
    app = create_app(settings, config)
    state = app.state.plateseg
    inner = LocalBackend(settings, manager=RunManager(settings, runner=runner))
    state._backend = with_admission(inner, config)  # the hook AppState.backend calls
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        codes = [client.post("/api/runs", json={"experiment_id": EXPERIMENT}) for _ in range(3)]
        assert [r.status_code for r in codes] == [202, 202, 429]
        assert codes[1].json()["status"] == QUEUED
        assert codes[2].headers["retry-after"] == "5"
        assert "this server is busy" in codes[2].json()["detail"]
        queued = client.get(f"/api/runs/{codes[1].json()['run_id']}").json()
        assert queued["phase"] == "queued (0 ahead)"


def test_fifty_clients_on_loopback_see_no_errors_and_every_accepted_run_succeeds(
    tmp_path: Path,
) -> None:
    settings = make_home(tmp_path / "home")
    baseline, stats = run_load(
        settings,
        clients=50,
        seconds=5.0,
        think=0.2,
        max_active=2,
        max_queued=3,
        baseline_seconds=0.5,
        drain=240.0,
    )
    assert stats.errors == []
    assert set(stats.statuses["POST /api/runs"]) <= {202, 429}
    assert stats.refusals, "50 simultaneous starts must exceed 2 running + 3 queued"
    assert all("web_max_active_runs" in detail for detail in stats.refusals)
    assert QUEUED in stats.accepted.values()
    assert set(stats.final) == set(stats.accepted)
    assert {s["status"] for s in stats.final.values()} == {"SUCCEEDED"}
    assert max_overlap(stats.final) <= 2
    assert sum(stats.statuses["POST /api/runs"].values()) >= 50  # each client started one
    assert baseline.errors == []
