"""Accepted runs survive a restart of the web server; previews are bounded.

The first test runs what users run: ``plateseg serve`` in its own process group,
killed with SIGKILL while one run is half done and three wait in the queue, then
started again on the same home. The others build the app twice on one home (the
first one's runs never finish: its runner waits until the test ends, as a run does
when its server is stopped) to reach the cases a kill cannot aim at: a journal that
cannot be read, a run the engine had not begun, a run cancelled while queued.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plateseg.demo import write_demo_experiment
from plateseg.engine import Journal
from plateseg.runs import TERMINAL, RunManager
from plateseg.runs.embedded import journal_path
from plateseg.runs.local import LocalRunner as LocalBackend
from plateseg.settings import Settings
from plateseg.store import LocalStore
from plateseg.store.keys import accepted_key
from plateseg.web import WebSettings, create_app
from plateseg.web.accepted import AcceptedRuns
from plateseg.web.admission import QUEUED, STOPPED_CAUSE, with_admission
from plateseg.web.state import Slots

from .conftest import EXPERIMENT, TOKEN

PLATESEG = Path(sys.executable).with_name("plateseg")
#: 6 wells x 4 fields: 24 fields, 6 batches of 4, so a run can be killed half done.
RESTART = "RESTART-1"
RESTART_WELLS = ["A01", "B01", "C01", "A12", "B12", "C12"]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Served:
    """``plateseg serve`` processes on one home; each in its own process group."""

    def __init__(self, home: Path, log: Path) -> None:
        self.home = home
        self.log = log
        self.processes: list[subprocess.Popen[bytes]] = []
        self.clients: list[httpx2.Client] = []

    def start(self) -> httpx2.Client:
        port = _free_port()
        env = {
            **os.environ,
            "PLATESEG_HOME": str(self.home),
            "PLATESEG_WEB_TOKEN": TOKEN,
            "PLATESEG_WEB_MAX_ACTIVE_RUNS": "1",
            "PLATESEG_WEB_MAX_QUEUED_RUNS": "5",
            "PLATESEG_TIME_SCALE": "0",
        }
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [str(PLATESEG), "serve", "--port", str(port), "--workers", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        client = httpx2.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=30)
        self.clients.append(client)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, self.log.read_text()
            try:
                if client.get("/health").status_code == 200:
                    return client
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"plateseg serve did not answer: {self.log.read_text()}")

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the server and the engine's worker processes (its process group)."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    home = tmp_path / "served"
    store = LocalStore(Settings(home=home).store_location)
    write_demo_experiment(store, RESTART, size=128, fields=4, wells=RESTART_WELLS)
    servers = Served(home, tmp_path / "serve.log")
    yield servers
    for client in servers.clients:
        client.close()
    for process in servers.processes:
        servers.kill(process)


def _wait_all(
    client: httpx2.Client | TestClient, run_ids: list[str], seconds: float
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    final: dict[str, Any] = {}
    while time.monotonic() < deadline:
        final = {r: client.get(f"/api/runs/{r}").json() for r in run_ids}
        if all(p.get("status") in TERMINAL for p in final.values()):
            return final
        time.sleep(0.25)
    raise AssertionError(f"runs did not end in {seconds} s: {final}")


def test_runs_accepted_by_a_killed_server_are_resumed_and_requeued_in_order(
    served: Served,
) -> None:
    client = served.start()
    answers = [client.post("/api/runs", json={"experiment_id": RESTART}) for _ in range(4)]
    assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
    assert [a.json()["status"] for a in answers] == ["RUNNING", QUEUED, QUEUED, QUEUED]
    run_ids = [a.json()["run_id"] for a in answers]
    store = LocalStore(Settings(home=served.home).store_location)
    recorded, _ = AcceptedRuns(store).load()
    assert [r.run_id for r in recorded] == run_ids  # durable before the 202, in order
    assert [r.stage for r in recorded] == ["started", "queued", "queued", "queued"]

    deadline = time.monotonic() + 240
    while client.get(f"/api/runs/{run_ids[0]}").json()["succeeded"] < 1:
        assert time.monotonic() < deadline, "the first batch of the first run never finished"
        time.sleep(0.02)
    served.kill(served.processes[0])
    settings = Settings(home=served.home)
    with Journal(journal_path(run_ids[0], settings)) as journal:
        interrupted = journal.execution()
    assert interrupted is not None and interrupted["status"] == "RUNNING"

    client = served.start()
    listed = {run["run_id"] for run in client.get("/api/runs").json()}
    assert listed == set(run_ids)  # nothing accepted vanished from the runs list
    final = _wait_all(client, run_ids, seconds=600)
    assert {r: p["status"] for r, p in final.items()} == dict.fromkeys(run_ids, "SUCCEEDED")
    assert all(p["succeeded"] == 24 and p["failed"] == 0 for p in final.values())
    started = [final[r]["started_at"] for r in run_ids[1:]]
    assert started == sorted(started)  # the queued runs ran in the order they came
    deadline = time.monotonic() + 30
    while AcceptedRuns(store).load() != ([], []):  # finished runs are forgotten
        assert time.monotonic() < deadline, AcceptedRuns(store).load()
        time.sleep(0.25)


@pytest.fixture
def stuck() -> Iterator[Callable[..., None]]:
    """A runner whose runs stay in progress until the test ends (their server stops)."""
    released = threading.Event()

    def runner(experiment_id: str, **_: Any) -> None:
        released.wait(120)

    yield runner
    released.set()


def _app(settings: Settings, runner: Callable[..., None] | None = None) -> FastAPI:
    config = WebSettings(
        web_token=TOKEN, web_secret="s" * 32, web_max_active_runs=2, web_max_queued_runs=3
    )
    app = create_app(settings, config)
    if runner is not None:  # the hook AppState.backend calls, with the test's runner
        state = app.state.plateseg
        inner = LocalBackend(settings, manager=RunManager(settings, runner=runner))
        state._backend = with_admission(inner, config, store=state.store)
    return app


def test_a_restart_resumes_what_it_can_and_marks_the_rest_with_the_cause(
    settings: Settings, demo: LocalStore, stuck: Callable[..., None]
) -> None:
    with TestClient(_app(settings, stuck), headers=AUTH) as first:
        answers = [first.post("/api/runs", json={"experiment_id": EXPERIMENT}) for _ in range(4)]
        assert [a.status_code for a in answers] == [202] * 4
        run_ids = [a.json()["run_id"] for a in answers]
        assert all(demo.exists(accepted_key(r)) for r in run_ids)
        assert first.post(f"/api/runs/{run_ids[3]}/cancel").json()["status"] == "ABORTED"
    # the server stopped with run 0 and run 1 in progress: run 0's journal is damaged,
    # run 1 had no journal yet (the engine had not begun it)
    damaged = journal_path(run_ids[0], settings)
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_bytes(b"not a journal any more " * 64)

    with TestClient(_app(settings), headers=AUTH) as second:
        assert {r["run_id"] for r in second.get("/api/runs").json()} == set(run_ids)
        final = _wait_all(second, run_ids, seconds=600)
    assert [final[r]["status"] for r in run_ids] == ["FAILED", "SUCCEEDED", "SUCCEEDED", "ABORTED"]
    failed = final[run_ids[0]]
    assert failed["cause"].startswith(STOPPED_CAUSE)
    assert "cannot be read" in failed["cause"] and failed["cause"].endswith("start it again")
    assert final[run_ids[3]]["phase"] == "cancelled before it started"
    assert final[run_ids[1]]["succeeded"] == 11 and final[run_ids[1]]["failed"] == 1

    with TestClient(_app(settings), headers=AUTH) as third:  # and the next restart too
        again = {r: third.get(f"/api/runs/{r}").json() for r in run_ids}
        listed = {r["run_id"] for r in third.get("/api/runs").json()}
    assert {r: p["status"] for r, p in again.items()} == {r: final[r]["status"] for r in run_ids}
    assert again[run_ids[0]]["cause"] == failed["cause"]
    assert listed == {run_ids[0], run_ids[3]}  # ended here; the others are in the database


def test_a_retry_in_progress_when_the_server_stopped_is_resumed_from_its_journal(
    settings: Settings, demo: LocalStore
) -> None:
    with TestClient(_app(settings), headers=AUTH) as first:
        run_id = first.post("/api/runs", json={"experiment_id": EXPERIMENT}).json()["run_id"]
        _wait_all(first, [run_id], seconds=600)
        assert first.post(f"/api/runs/{run_id}/retry").status_code == 202
        records = AcceptedRuns(demo).load()[0]  # durable before the 202
        assert [(r.run_id, r.kind, r.stage) for r in records] == [(run_id, "retry", "started")]
        _wait_all(first, [run_id], seconds=600)
    # what a kill after the retry's first state leaves: its journal RUNNING, Lookup done
    retried = journal_path(f"{run_id}--retry-1", settings)
    with closing(sqlite3.connect(retried)) as db, db:
        db.execute("DELETE FROM transitions WHERE step > 0")
        db.execute("UPDATE execution SET status = 'RUNNING', output = NULL")
    AcceptedRuns(demo).save(records[0])

    with TestClient(_app(settings), headers=AUTH) as second:
        final = _wait_all(second, [run_id], seconds=600)[run_id]
        deadline = time.monotonic() + 30
        while AcceptedRuns(demo).load() != ([], []):  # forgotten once it ended
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert (final["status"], final["succeeded"], final["failed"]) == ("SUCCEEDED", 11, 1)
    with Journal(retried) as journal:
        ended = journal.execution()
    assert ended is not None and ended["status"] == "SUCCEEDED"


def test_a_damaged_record_is_listed_as_failed_not_lost(
    settings: Settings, demo: LocalStore
) -> None:
    demo.put_bytes(accepted_key("DEMO-W-20260101T000000-abcdef"), b"{not json")
    with TestClient(_app(settings), headers=AUTH) as client:
        run = client.get("/api/runs/DEMO-W-20260101T000000-abcdef").json()
        listed = [r["run_id"] for r in client.get("/api/runs").json()]
    assert (run["status"], run["error"]) == ("FAILED", "StoreError")
    assert "cannot read this run's record" in run["cause"]
    assert listed == ["DEMO-W-20260101T000000-abcdef"]


def test_a_preview_beyond_the_bound_is_refused_with_retry_after(
    app: FastAPI, client: TestClient, demo: LocalStore
) -> None:
    state = app.state.plateseg
    state._previews = Slots(1, "previews", "web_max_previews")
    url = f"/api/experiments/{EXPERIMENT}/preview"
    body = {"image_ids": ["P1_A01_1"]}
    with state.previews.take():  # a preview in progress holds the only slot
        refused = client.post(url, json=body)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert "1 previews are running (limit web_max_previews)" in refused.json()["detail"]
    assert client.post(url, json=body).status_code == 200  # the slot is free again


def test_concurrent_previews_run_at_most_the_bound_and_the_rest_get_503(
    app: FastAPI, client: TestClient, store: LocalStore
) -> None:
    write_demo_experiment(store, "BIG-1", size=1024, fields=1, wells=["A01"])
    state = app.state.plateseg
    state._previews = Slots(1, "previews", "web_max_previews")
    url = "/api/experiments/BIG-1/preview"
    barrier = threading.Barrier(4)
    answers: list[httpx2.Response] = []

    def preview() -> None:
        barrier.wait()
        answers.append(client.post(url, json={"image_ids": ["P1_A01_1"]}))

    threads = [threading.Thread(target=preview) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    codes = sorted(a.status_code for a in answers)
    assert len(codes) == 4 and set(codes) == {200, 503}, codes
    assert all(a.headers["retry-after"] == "5" for a in answers if a.status_code == 503)
    with state.previews.take():  # every slot was given back
        pass
