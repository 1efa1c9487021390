"""Lambda-level faults on a real local run: service errors, timeouts, crashed runtimes.

Each test runs ``statemachines/segmentation.asl.json`` on a small experiment (8
fields, batches of one) with faults injected through ``PLATESEG_FAULTS`` at the
engine's invocation layer or inside the worker process, and checks that the run
succeeds, that each fault cost exactly one retry of exactly the work it hit, and that
the database rows and Parquet parts equal a fault-free run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plateseg.settings import Settings
from tests.reliability.faults_support import (
    WELLS,
    Snapshot,
    baseline,
    db_snapshot,
    install_faults,
    make_home,
    parquet_snapshot,
    retries,
    segmentation_definition,
    segmentation_engine,
)

__all__ = ["baseline"]  # the module-scoped reference run, used as a fixture

BATCHES = len(WELLS)


def _input() -> dict[str, Any]:
    return {"experiment_id": "E", "run_id": "R"}


def _same_results(settings: Settings, reference: tuple[Settings, Snapshot]) -> None:
    ref_settings, ref_rows = reference
    assert db_snapshot(settings.home / "plateseg.db") == ref_rows
    parts = parquet_snapshot(settings, "R")
    assert parts == parquet_snapshot(ref_settings, "R")
    assert len(parts) >= BATCHES - 1  # one part per batch with nuclei (one well is empty)


def test_lambda_service_errors_and_a_timeout_are_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, baseline: tuple[Settings, Snapshot]
) -> None:
    plan = install_faults(
        monkeypatch,
        tmp_path / "faults",
        [
            {"at": "invoke", "function": "plateseg-lookup",
             "error": "Lambda.ServiceException", "times": 1},
            {"at": "invoke", "function": "plateseg-segment",
             "error": "Lambda.TooManyRequestsException", "times": 2},
            {"at": "invoke", "function": "plateseg-segment",
             "error": "Lambda.ServiceException", "times": 1},
            {"at": "worker", "function": "plateseg-segment", "action": "hang",
             "seconds": 600, "match": '"well": "C04"', "times": 1},
            {"at": "invoke", "function": "plateseg-aggregate",
             "error": "Lambda.TooManyRequestsException", "times": 1},
        ],
    )  # fmt: skip
    settings = make_home(tmp_path / "home")

    def short_timeout(definition: dict[str, Any]) -> None:
        processor = definition["States"]["Segment"]["ItemProcessor"]["States"]
        processor["SegmentBatch"]["TimeoutSeconds"] = 5  # real seconds, cold start excluded

    definition = segmentation_definition(settings, edit=short_timeout)
    with segmentation_engine(settings) as engine:
        result = engine.run(definition, _input(), name="R")
        calls, crashes = dict(engine.invoker.calls), engine.invoker.crashes
    assert result.status == "SUCCEEDED", result.cause
    assert [plan.fired(rule.index) for rule in plan.rules] == [1, 2, 1, 1, 1]
    assert retries(result.events, "Lookup") == ["Lambda.ServiceException"]
    assert retries(result.events, "Aggregate") == ["Lambda.TooManyRequestsException"]
    # every batch ran once, plus exactly one retry per injected fault (4 of them)
    assert calls == {"plateseg-lookup": 2, "plateseg-segment": BATCHES + 4, "plateseg-aggregate": 2}
    assert crashes == 1  # the timed-out worker was stopped and replaced
    assert result.output["images_ok"] == BATCHES
    assert result.map_runs[0]["execution_counts"]["succeeded"] == BATCHES
    _same_results(settings, baseline)


def test_crashed_workers_fail_only_their_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, baseline: tuple[Settings, Snapshot]
) -> None:
    plan = install_faults(
        monkeypatch,
        tmp_path / "faults",
        [
            {"at": "worker", "function": "plateseg-segment", "action": "segfault",
             "match": '"well": "A02"', "times": 1},
            {"at": "worker", "function": "plateseg-segment", "action": "oomkill",
             "match": '"well": "D05"', "times": 1},
            {"at": "worker", "function": "plateseg-segment", "action": "memory",
             "limit_mb": 512, "match": '"well": "F07"', "times": 1},
        ],
    )  # fmt: skip
    settings = make_home(tmp_path / "home")
    definition = segmentation_definition(settings)
    with segmentation_engine(settings) as engine:
        result = engine.run(definition, _input(), name="R")
        calls, crashes = dict(engine.invoker.calls), engine.invoker.crashes
    assert result.status == "SUCCEEDED", result.cause
    assert [plan.fired(rule.index) for rule in plan.rules] == [1, 1, 1]
    assert crashes == 3
    # Only the crashed batch is retried: with two batches always in flight on two
    # workers, a crash that broke the whole pool would have cost more invocations.
    assert calls["plateseg-segment"] == BATCHES + 3
    assert result.map_runs[0]["execution_counts"]["failed"] == 0
    _same_results(settings, baseline)


def test_crash_error_names_the_signal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries exhausted: the batch fails with Lambda.Unknown naming the signal, the rest run."""
    install_faults(
        monkeypatch,
        tmp_path / "faults",
        [{"at": "worker", "function": "plateseg-segment", "action": "segfault",
          "match": '"well": "B03"', "times": 2}],
    )  # fmt: skip
    settings = make_home(tmp_path / "home", wells=WELLS[:3])
    definition = segmentation_definition(settings)
    definition["States"]["Segment"]["ToleratedFailurePercentage"] = 50
    processor = definition["States"]["Segment"]["ItemProcessor"]["States"]
    processor["SegmentBatch"]["Retry"][0]["MaxAttempts"] = 1  # one retry, then the batch fails
    with segmentation_engine(settings) as engine:
        result = engine.run(definition, _input(), name="R")
        calls = dict(engine.invoker.calls)
    assert result.status == "SUCCEEDED", result.cause
    assert calls["plateseg-segment"] == 2 + 2  # two attempts of the crashing batch
    assert result.output["batches_failed"] == 1 and result.output["images_ok"] == 2
    failed = Path(settings.store_location) / "runs" / "R" / "map"
    text = "".join(p.read_text() for p in failed.rglob("FAILED_*.json"))
    assert "Lambda.Unknown" in text and "SIGSEGV (segmentation fault)" in text
