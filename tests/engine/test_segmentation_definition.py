"""The real ``statemachines/segmentation.asl.json`` run with fake Lambda functions."""

from __future__ import annotations

import json

import pytest

from plateseg.contracts import AggregateResult, LookupResult
from plateseg.definition import load_definition
from plateseg.settings import Settings, use_settings
from plateseg.store import LocalStore, get_json
from tests.engine.conftest import EngineFactory

FAKES = "tests.engine.fake_functions"


def functions(in_process: bool) -> dict[str, object]:
    if in_process:
        from tests.engine import fake_functions

        return {
            "plateseg-lookup": fake_functions.lookup,
            "plateseg-segment": fake_functions.segment,
            "plateseg-aggregate": fake_functions.aggregate,
        }
    return {
        "plateseg-lookup": f"{FAKES}:lookup",
        "plateseg-segment": f"{FAKES}:segment",
        "plateseg-aggregate": f"{FAKES}:aggregate",
    }


@pytest.fixture
def experiment(store: LocalStore) -> str:
    """Experiment EXP-1: plate P1, wells B02..B04, 3 fields, 2 channels (9 fields of view)."""
    for well in ("B02", "B03", "B04"):
        for field in (1, 2, 3):
            for channel in ("w1", "w2"):
                store.put_bytes(f"experiments/EXP-1/P1_{well}_s{field}_{channel}.tif", b"II*\0")
    return "EXP-1"


def test_segmentation_runs_end_to_end_in_worker_processes(
    make_engine: EngineFactory, settings: Settings, store: LocalStore, experiment: str
) -> None:
    engine = make_engine(
        functions(in_process=False),
        workers=2,
        worker_initializer=use_settings,
        worker_initargs=(settings.model_dump(mode="json"),),
    )
    progress: list[dict] = []
    result = engine.run(
        load_definition(),
        {"experiment_id": experiment, "run_id": "run-1"},
        name="exec-1",
        listener=lambda e: progress.append(e.details) if e.type == "MapRunProgress" else None,
    )
    assert result.status == "SUCCEEDED", result.cause
    summary = AggregateResult.model_validate(result.output)
    assert (summary.images_ok, summary.images_failed, summary.wells) == (9, 0, 3)
    assert summary.objects == 3 * (10 + 20 + 30)
    assert summary.status == "SUCCEEDED"
    run = result.map_runs[0]
    assert run["item_counts"]["succeeded"] == 9 and run["execution_counts"]["total"] == 3
    assert progress[-1]["succeeded"] == 9 and progress[-1]["total"] == 9
    manifest = get_json(store, run["result_writer"]["Key"])
    assert run["result_writer"]["Key"].startswith("runs/run-1/map/")
    records = get_json(store, manifest["ResultFiles"]["SUCCEEDED"][0]["Key"])
    first_input = json.loads(records[0]["Input"])
    assert first_input["BatchInput"]["run_id"] == "run-1"
    assert first_input["BatchInput"]["bucket"] == settings.local_bucket
    assert len(first_input["Items"]) == 4


def test_no_images_fails_with_lookup_message(
    make_engine: EngineFactory, settings: Settings
) -> None:
    result = make_engine(functions(in_process=True)).run(
        load_definition(), {"experiment_id": "EMPTY"}, name="exec-empty"
    )
    assert (result.status, result.error) == ("FAILED", "NoImagesFound")
    lookup = LookupResult.model_validate(
        next(e.details["output"] for e in result.events if e.type == "TaskSucceeded")
    )
    assert lookup.item_count == 0
    assert result.cause == lookup.message and "experiments/EMPTY/" in lookup.message
    assert not result.map_runs
