"""Load test of the web API on loopback: many clients start runs and poll them.

Starts the real app (``create_app``) under uvicorn on ``127.0.0.1`` (a random free
port, in its own process so the clients do not share its interpreter lock) with the
local engine, SQLite and a small demo experiment in a temporary home.
First one client alone polls for ``--baseline`` seconds (the latency baseline measured
in this run); then ``--clients`` clients (default 50) do what the run page does for
``--seconds`` (default 20): start a run (``POST /api/runs``), poll it
(``GET /api/runs/{id}``) until it ends, start the next one. A start the server does not
accept gets 429 with ``Retry-After`` (admission control, :mod:`plateseg.web.admission`);
that client waits that long, polling the run list meanwhile, then tries again. Finally
every accepted run is waited for (``--drain`` seconds at most).

Prints a markdown table per endpoint (requests, requests/s, p50/p95/p99/max latency,
p50 against the one-client baseline, status codes) and a verdict: errors (transport
errors, 5xx, unexpected statuses) must be 0, and every accepted run must end
``SUCCEEDED`` with no more than ``web_max_active_runs`` running at once. Exits 1
otherwise.

Usage::

    python bench/load.py [--clients 50] [--seconds 20] [--max-active 2] [--max-queued 20]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOKEN = "load-test-token-0123456789"
EXPERIMENT = "LOAD-1"
WELLS = ("A01", "B01")
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "ABORTED"})
#: Statuses that are a correct answer of each endpoint under load.
EXPECTED = {
    "POST /api/runs": frozenset({202, 429}),
    "GET /api/runs/{id}": frozenset({200}),
    "GET /api/runs": frozenset({200}),
    "GET /health": frozenset({200}),
}


@dataclass
class Stats:
    """What the clients saw: latencies and statuses per endpoint, errors, runs."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[str] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # run id -> first status
    refusals: list[str] = field(default_factory=list)  # 429 details
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, label: str, started: float, response: httpx2.Response) -> None:
        self.latencies[label].append(time.perf_counter() - started)
        self.statuses[label][response.status_code] += 1
        if response.status_code not in EXPECTED[label]:
            self.errors.append(f"{label}: HTTP {response.status_code} {response.text[:200]}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def make_home(home: Path, workers: int = 1) -> Any:
    """Settings under ``home`` with the small demo experiment written into its store."""
    from plateseg.demo import write_demo_experiment
    from plateseg.settings import Settings
    from plateseg.store import LocalStore

    settings = Settings(home=home, time_scale=0.0, workers=workers)
    write_demo_experiment(
        LocalStore(settings.store_location), EXPERIMENT, size=96, fields=1, wells=list(WELLS)
    )
    return settings


def _serve(settings: dict[str, Any], port: int, max_active: int, max_queued: int) -> None:
    """Body of the server process: the real app under uvicorn on 127.0.0.1:``port``."""
    import uvicorn

    from plateseg.settings import Settings, use_settings
    from plateseg.web import WebSettings, create_app
    from plateseg.web.admission import AdmittedBackend, with_admission

    config = WebSettings(
        web_token=TOKEN, web_max_active_runs=max_active, web_max_queued_runs=max_queued
    )
    value = Settings(**settings)
    use_settings(value)
    app = create_app(value, config)
    state = app.state.plateseg
    if not isinstance(state.backend, AdmittedBackend):  # until AppState wires it itself
        state._backend = with_admission(state.backend, config)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        backlog=1024,
        timeout_keep_alive=30,
    )


@contextmanager
def serve(settings: Any, max_active: int, max_queued: int) -> Iterator[str]:
    """Run the app in its own process (not sharing the clients' GIL); yield its URL."""
    port = _free_port()
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=_serve,
        args=(settings.model_dump(mode="json"), port, max_active, max_queued),
        name="plateseg-load-server",
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if httpx2.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if not process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start on 127.0.0.1:{port}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join(10)


async def _client(http: httpx2.AsyncClient, stats: Stats, until: float, think: float) -> None:
    run_id: str | None = None
    retry_at = 0.0
    first = True  # every client starts one run, however late the event loop reaches it
    while first or time.monotonic() < until:
        first = False
        try:
            if run_id is None and time.monotonic() >= retry_at:
                started = time.perf_counter()
                response = await http.post("/api/runs", json={"experiment_id": EXPERIMENT})
                stats.record("POST /api/runs", started, response)
                if response.status_code == 202:
                    run_id = str(response.json()["run_id"])
                    stats.accepted[run_id] = str(response.json()["status"])
                elif response.status_code == 429:
                    stats.refusals.append(str(response.json().get("detail", "")))
                    wait = float(response.headers.get("retry-after", "1"))
                    retry_at = time.monotonic() + wait
            elif run_id is None:
                started = time.perf_counter()
                response = await http.get("/api/runs")
                stats.record("GET /api/runs", started, response)
            else:
                started = time.perf_counter()
                response = await http.get(f"/api/runs/{run_id}")
                stats.record("GET /api/runs/{id}", started, response)
                if response.status_code == 200 and response.json()["status"] in TERMINAL:
                    stats.final[run_id] = response.json()
                    run_id = None
        except httpx2.HTTPError as exc:
            stats.errors.append(f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(think)


async def _baseline(base_url: str, seconds: float, stats: Stats) -> None:
    async with httpx2.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as http:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            for label, path in (("GET /health", "/health"), ("GET /api/runs", "/api/runs")):
                started = time.perf_counter()
                stats.record(label, started, await http.get(path))


async def _drain(http: httpx2.AsyncClient, stats: Stats, seconds: float) -> None:
    """Wait for every accepted run to end; record its last snapshot."""
    until = time.monotonic() + seconds
    pending = [r for r in stats.accepted if r not in stats.final]
    while pending and time.monotonic() < until:
        for run_id in list(pending):
            response = await http.get(f"/api/runs/{run_id}")
            if response.status_code == 200 and response.json()["status"] in TERMINAL:
                stats.final[run_id] = response.json()
                pending.remove(run_id)
        await asyncio.sleep(0.25)


async def _load(base_url: str, clients: int, seconds: float, think: float, drain: float) -> Stats:
    stats = Stats()
    limits = httpx2.Limits(max_connections=clients + 5, max_keepalive_connections=clients + 5)
    async with httpx2.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
        limits=limits,
    ) as http:
        began = time.monotonic()
        until = began + seconds
        await asyncio.gather(*(_client(http, stats, until, think) for _ in range(clients)))
        stats.seconds = time.monotonic() - began
        await _drain(http, stats, drain)
    return stats


def run_load(
    settings: Any,
    *,
    clients: int = 50,
    seconds: float = 20.0,
    think: float = 0.2,
    max_active: int = 2,
    max_queued: int = 20,
    baseline_seconds: float = 2.0,
    drain: float = 300.0,
) -> tuple[Stats, Stats]:
    """Serve the app and load it; return ``(baseline, load)`` statistics."""
    with serve(settings, max_active, max_queued) as base_url:
        baseline = Stats()
        asyncio.run(_baseline(base_url, baseline_seconds, baseline))
        baseline.seconds = baseline_seconds
        stats = asyncio.run(_load(base_url, clients, seconds, think, drain))
    return baseline, stats


def max_overlap(final: dict[str, dict[str, Any]]) -> int:
    """Most runs that executed at the same moment, from their start and end times."""
    edges: list[tuple[datetime, int]] = []
    for snapshot in final.values():
        if snapshot.get("finished_at"):
            edges.append((datetime.fromisoformat(snapshot["started_at"]), 1))
            edges.append((datetime.fromisoformat(snapshot["finished_at"]), -1))
    most = current = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        most = max(most, current)
    return most


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def report(baseline: Stats, stats: Stats, clients: int) -> str:
    """The markdown table and the verdict lines."""
    lines = [
        f"{clients} clients for {stats.seconds:.1f} s on 127.0.0.1 "
        "(latency ms; 'p50 x base' = p50 / p50 of one client alone, same run)",
        "",
        "| endpoint | requests | req/s | p50 | p95 | p99 | max | p50 x base | statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    base_p50 = _ms(baseline.latencies.get("GET /api/runs", []), 50)
    total = 0
    for label in EXPECTED:
        values = stats.latencies.get(label, [])
        if not values:
            continue
        total += len(values)
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(stats.statuses[label].items()))
        lines.append(
            f"| {label} | {len(values)} | {len(values) / stats.seconds:.0f} | "
            f"{_ms(values, 50):.1f} | {_ms(values, 95):.1f} | {_ms(values, 99):.1f} | "
            f"{max(values) * 1000:.1f} | {_ms(values, 50) / base_p50:.1f} | {codes} |"
        )
    finals = Counter(s["status"] for s in stats.final.values())
    queued = sum(1 for status in stats.accepted.values() if status == "QUEUED")
    lines += [
        "",
        f"baseline (1 client, GET /api/runs): p50 {base_p50:.1f} ms; machine load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared)",
        f"all endpoints: {total} requests, {total / stats.seconds:.0f} req/s",
        f"runs: {len(stats.accepted)} accepted ({queued} queued first), "
        f"{len(stats.refusals)} refused with 429, final {dict(finals)}, "
        f"{len(stats.accepted) - len(stats.final)} unfinished, "
        f"at most {max_overlap(stats.final)} running at once",
        f"errors: {len(stats.errors)}",
    ]
    lines += [f"  {error}" for error in stats.errors[:10]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--think", type=float, default=0.2, help="pause between requests, s")
    parser.add_argument("--max-active", type=int, default=2)
    parser.add_argument("--max-queued", type=int, default=20)
    parser.add_argument("--baseline", type=float, default=3.0)
    parser.add_argument("--drain", type=float, default=600.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_home(Path(tmp) / "home")
        baseline, stats = run_load(
            settings,
            clients=args.clients,
            seconds=args.seconds,
            think=args.think,
            max_active=args.max_active,
            max_queued=args.max_queued,
            baseline_seconds=args.baseline,
            drain=args.drain,
        )
    print(report(baseline, stats, args.clients))
    finals = {s["status"] for s in stats.final.values()}
    ok = (
        not stats.errors
        and len(stats.final) == len(stats.accepted)
        and finals <= {"SUCCEEDED"}
        and max_overlap(stats.final) <= args.max_active
    )
    print("verdict:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
