"""The execution journal: stop and resume, redrive failed Map batches, mismatches."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from plateseg.engine import Event, Journal
from plateseg.errors import ResumeError
from tests.engine.conftest import EngineFactory, machine

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


class Work:
    """Counts calls per item; fails items in ``broken``; can stop a run after N calls."""

    def __init__(self, broken: set[int] | None = None) -> None:
        self.broken = broken or set()
        self.calls: Counter[int] = Counter()
        self.lock = threading.Lock()

    def __call__(self, event: Any, context: Any) -> Any:
        items = [item["n"] for item in event["Items"]]
        with self.lock:
            self.calls.update(items)
        if set(items) & self.broken:
            raise ValueError(f"broken item in {items}")
        return [n * 10 for n in items]


def definition(tolerated: int = 0) -> dict[str, Any]:
    return machine(
        {
            "Prepare": {
                "Type": "Task",
                "Resource": f"{ARN}Prepare",
                "ResultPath": "$.prepared",
                "Next": "Fan",
            },
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"n.$": "$$.Map.Item.Value"},
                "ItemBatcher": {"MaxItemsPerBatch": 2},
                "MaxConcurrency": 1,
                "ToleratedFailureCount": tolerated,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Work",
                    "States": {"Work": {"Type": "Task", "Resource": f"{ARN}Work", "End": True}},
                },
                "ResultPath": "$.results",
                "Next": "Sum",
            },
            "Sum": {
                "Type": "Pass",
                "Parameters": {"results.$": "$.results", "prepared.$": "$.prepared"},
                "End": True,
            },
        }
    )


INPUT = {"items": list(range(8))}


@pytest.fixture
def prepare_calls() -> list[Any]:
    return []


def functions(work: Work, prepare_calls: list[Any]) -> dict[str, Any]:
    def prepare(event: Any, context: Any) -> Any:
        prepare_calls.append(event)
        return "ready"

    return {"Prepare": prepare, "Work": work}


def test_stopped_run_resumes_without_repeating_work(
    make_engine: EngineFactory, tmp_path: Path, prepare_calls: list[Any]
) -> None:
    clean = make_engine(functions(Work(), [])).run(definition(), INPUT, name="x")
    work = Work()
    stop = threading.Event()

    def listener(event: Event) -> None:
        if event.type == "MapRunProgress" and event.details["succeeded"] >= 4:
            stop.set()

    with Journal(tmp_path / "j.sqlite") as journal:
        engine = make_engine(functions(work, prepare_calls))
        first = engine.run(
            definition(), INPUT, name="x", journal=journal, cancel=stop, listener=listener
        )
        assert first.status == "ABORTED" and first.error == "States.Aborted"
        assert journal.execution()["status"] == "ABORTED"  # type: ignore[index]
        done_before = journal.count_children("SUCCEEDED")
        assert 2 <= done_before < 4
        events: list[Event] = []
        second = engine.run(definition(), INPUT, name="x", journal=journal, listener=events.append)
    assert second.status == "SUCCEEDED"
    assert second.output == clean.output
    assert len(prepare_calls) == 1  # the Task before the Map is not run again
    assert set(work.calls.values()) == {1}  # every item processed exactly once
    assert sorted(work.calls) == list(range(8))
    assert any(e.type == "ExecutionResumed" and e.details["name"] == "Fan" for e in events)


def test_redrive_reruns_only_failed_batches(
    make_engine: EngineFactory, tmp_path: Path, prepare_calls: list[Any]
) -> None:
    clean = make_engine(functions(Work(), [])).run(definition(tolerated=8), INPUT, name="x")
    work = Work(broken={3, 6})
    with Journal(tmp_path / "j.sqlite") as journal:
        engine = make_engine(functions(work, prepare_calls))
        first = engine.run(definition(tolerated=8), INPUT, name="x", journal=journal)
        assert first.status == "SUCCEEDED"
        assert [r.get("Error") for r in first.output["results"] if isinstance(r, dict)] == [
            "ValueError",
            "ValueError",
        ]
        work.broken.clear()
        assert journal.rewind_to_failed_map() == "Fan"
        second = engine.run(definition(tolerated=8), INPUT, name="x", journal=journal)
    assert second.status == "SUCCEEDED"
    assert second.output == clean.output  # re-aggregated as if nothing had failed
    assert len(prepare_calls) == 1
    assert work.calls == Counter({0: 1, 1: 1, 4: 1, 5: 1, 2: 2, 3: 2, 6: 2, 7: 2})


def test_redrive_after_exceeded_threshold(make_engine: EngineFactory, tmp_path: Path) -> None:
    work = Work(broken={0})
    with Journal(tmp_path / "j.sqlite") as journal:
        engine = make_engine(functions(work, []))
        first = engine.run(definition(), INPUT, name="x", journal=journal)
        assert first.error == "States.ExceedToleratedFailureThreshold"
        work.broken.clear()
        journal.rewind_to_failed_map()
        second = engine.run(definition(), INPUT, name="x", journal=journal)
    assert second.status == "SUCCEEDED"
    assert second.output["results"] == [[0, 10], [20, 30], [40, 50], [60, 70]]


def test_journal_refuses_other_execution_and_running_redrive(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        engine = make_engine(functions(Work(), []))
        engine.run(definition(), INPUT, name="x", journal=journal)
        with pytest.raises(ResumeError, match="no failed Map items"):
            journal.rewind_to_failed_map()
        with pytest.raises(ResumeError, match="another definition"):
            engine.run(definition(tolerated=3), INPUT, name="x", journal=journal)
        with pytest.raises(ResumeError, match="belongs to execution 'x'"):
            engine.run(definition(), INPUT, name="y", journal=journal)
    fresh = Journal(tmp_path / "k.sqlite")
    fresh.begin("z", definition(), INPUT)
    with pytest.raises(ResumeError, match="only a finished execution"):
        fresh.rewind_to_failed_map()
    fresh.close()


def test_finished_journal_returns_recorded_output(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    work = Work()
    with Journal(tmp_path / "j.sqlite") as journal:
        engine = make_engine(functions(work, []))
        first = engine.run(definition(), INPUT, name="x", journal=journal)
        again = engine.run(definition(), INPUT, name="x", journal=journal)
    assert again.output == first.output
    assert set(work.calls.values()) == {1}


def test_redrive_after_a_failure_past_the_map_starts_at_the_failed_state(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    """Like Aggregate with the database down: no Map batch failed, a later Task did."""
    work, down = Work(), [True]

    def finish(event: Any, context: Any) -> Any:
        if down[0]:
            raise ConnectionError("database down")
        return {"total": sum(sum(r) for r in event["results"])}

    states = definition()["States"]
    states["Sum"] = {"Type": "Task", "Resource": f"{ARN}Finish", "End": True}
    failing = machine(states, start="Prepare")
    with Journal(tmp_path / "j.sqlite") as journal:
        engine = make_engine({**functions(work, []), "Finish": finish})
        first = engine.run(failing, INPUT, name="x", journal=journal)
        assert first.status == "FAILED" and first.error == "ConnectionError"
        assert journal.rewind_to_failed_map() == "Sum"
        down[0] = False
        second = engine.run(failing, INPUT, name="x", journal=journal)
        with pytest.raises(ResumeError, match="no failed Map items"):
            journal.rewind_to_failed_map()  # succeeded now: nothing to redrive
    assert second.status == "SUCCEEDED", second.cause
    assert second.output == {"total": 10 * sum(range(8))}
    assert sum(work.calls.values()) == 8  # the Map's batches were not run again
