"""Aggregate: ResultWriter files in, one idempotent transaction out, on both backends."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from plateseg.contracts import AggregateRequest
from plateseg.db import get_engine
from plateseg.db.models import Base
from plateseg.errors import InputError, ObjectNotFoundError
from plateseg.pipeline.aggregate import aggregate_run
from plateseg.settings import Settings
from plateseg.store import LocalStore
from tests.db.runs import MapResults, ok, standard_run


@pytest.fixture
def engine(db_url: str, settings: Settings) -> sa.Engine:
    """An empty database (schema created by aggregate's auto-migrate)."""
    return get_engine(db_url)


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def dump(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every plateseg table, sorted: a full picture of the database."""
    with engine.connect() as connection:
        return {
            name: sorted(
                connection.execute(sa.select(table)).all(),
                key=lambda row: tuple(str(value) for value in row),
            )
            for name, table in Base.metadata.tables.items()
        }


def rows(engine: sa.Engine, table: str, **where: Any) -> list[dict[str, Any]]:
    t = Base.metadata.tables[table]
    stmt = sa.select(t).where(*(t.c[k] == v for k, v in where.items()))
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(stmt)]


def test_a_run_with_failures(engine: sa.Engine, local: LocalStore) -> None:
    request = standard_run().write(local)

    result = aggregate_run(request, local, engine)

    assert result.status == "SUCCEEDED_WITH_FAILURES"
    assert (result.images_ok, result.images_failed, result.batches_failed) == (5, 3, 1)
    assert (result.wells, result.objects) == (3, 72)
    [run] = rows(engine, "runs")
    assert run["status"] == "SUCCEEDED_WITH_FAILURES"
    assert run["engine"] == "local"
    assert run["objects_prefix"] == "runs/run-1/objects/"
    assert run["result_manifest_key"] == request.result_writer["Key"]
    assert run["map_run_arn"] == request.map_run_arn
    assert json.loads(run["recipe_json"]) == request.recipe.model_dump(mode="json")
    assert run["recipe_hash"] == hashlib.sha256(run["recipe_json"].encode()).hexdigest()
    assert run["finished_at"].replace(tzinfo=None).isoformat() == "2025-11-23T10:01:02.500000"
    assert run["started_at"].replace(tzinfo=None).isoformat() == "2025-11-23T10:00:00"


def test_failures_are_recorded_per_image(engine: sa.Engine, local: LocalStore) -> None:
    aggregate_run(standard_run().write(local), local, engine)

    failures = {row["item_id"]: row for row in rows(engine, "run_failures", run_id="run-1")}
    assert set(failures) == {"P1_B03_2", "P1_C02_1", "P1_C02_2"}
    assert failures["P1_B03_2"]["kind"] == "image"
    assert failures["P1_B03_2"]["error"] == "ImageReadError"
    assert "truncated TIFF" in failures["P1_B03_2"]["cause"]
    assert failures["P1_B03_2"]["batch"] is None
    for image_id in ("P1_C02_1", "P1_C02_2"):
        assert failures[image_id]["kind"] == "batch"
        assert failures[image_id]["error"] == "States.Timeout"
        assert failures[image_id]["batch"].endswith("-batch-2")
    images = {row["image_id"]: row for row in rows(engine, "images", run_id="run-1")}
    assert len(images) == 8
    assert images["P1_C02_1"]["status"] == "error"
    assert images["P1_C02_1"]["well"] == "C02"
    assert images["P1_B02_3"]["object_count"] == 30
    assert images["P1_B02_3"]["mask_key"] == "runs/run-1/masks/P1_B02_3.png"


def test_image_metrics_are_long_and_nan_becomes_null(engine: sa.Engine, local: LocalStore) -> None:
    aggregate_run(standard_run().write(local), local, engine)

    metrics = {(r["image_id"], r["metric"]): r["value"] for r in rows(engine, "image_metrics")}
    assert len(metrics) == 5 * 3  # OK images x metrics; failed images have none
    assert metrics[("P1_B02_2", "Count_Nuclei")] == 20.0
    assert metrics[("P1_B03_3", "Mean_Nuclei_AreaShape_Area")] is None


def test_well_and_experiment_summaries(engine: sa.Engine, local: LocalStore) -> None:
    aggregate_run(standard_run().write(local), local, engine)

    wells = {(r["well"], r["metric"]): r for r in rows(engine, "well_metrics")}
    b02 = wells[("B02", "Count_Nuclei")]
    assert (b02["mean"], b02["median"], b02["n_fields"], b02["n_objects"]) == (20.0, 20.0, 3, 60)
    assert b02["std"] == pytest.approx(math.sqrt(200 / 3))  # population std of 10, 20, 30
    b03_area = wells[("B03", "Mean_Nuclei_AreaShape_Area")]
    assert (b03_area["mean"], b03_area["std"], b03_area["n_fields"]) == (90.0, 0.0, 1)
    assert b03_area["n_objects"] == 12
    assert not any(well == "C02" for well, _ in wells)  # no OK field, no summary

    experiment = {r["metric"]: r for r in rows(engine, "experiment_metrics")}
    count = experiment["Count_Nuclei"]
    assert (count["mean"], count["median"], count["std"], count["n_wells"]) == (13.0, 13.0, 7.0, 2)
    assert experiment["Mean_Nuclei_AreaShape_Area"]["mean"] == pytest.approx(100.0)


def test_aggregating_twice_gives_identical_rows(engine: sa.Engine, local: LocalStore) -> None:
    request = standard_run().write(local)
    first_result = aggregate_run(request, local, engine)
    first = dump(engine)

    second_result = aggregate_run(request, local, engine)

    assert dump(engine) == first
    assert second_result == first_result
    assert sum(len(table) for table in first.values()) == 1 + 1 + 3 + 8 + 15 + 6 + 3 + 1 + 3


def test_reaggregating_replaces_the_runs_rows(engine: sa.Engine, local: LocalStore) -> None:
    aggregate_run(standard_run().write(local), local, engine)
    other = standard_run(run_id="run-2").write(local)
    aggregate_run(other, local, engine)
    smaller = MapResults()
    smaller.add_ok([ok("P1", "D04", 1, 3, 50.0)])
    local.delete_prefix("runs/run-1/")

    result = aggregate_run(smaller.write(local), local, engine)

    assert result.status == "SUCCEEDED"
    assert {r["image_id"] for r in rows(engine, "images", run_id="run-1")} == {"P1_D04_1"}
    assert rows(engine, "run_failures", run_id="run-1") == []
    assert len(rows(engine, "images", run_id="run-2")) == 8  # the other run is untouched
    [experiment] = rows(engine, "experiments")
    assert experiment["experiment_id"] == "EXP-001"


def test_a_clean_run_succeeds(engine: sa.Engine, local: LocalStore) -> None:
    clean = MapResults()
    clean.add_ok([ok("P2", "A01", 1, 4, 80.0), ok("P2", "A01", 2, 6, 82.0)])

    result = aggregate_run(clean.write(local), local, engine)

    assert result.status == "SUCCEEDED"
    assert (result.images_ok, result.images_failed, result.batches_failed) == (2, 0, 0)
    assert rows(engine, "runs")[0]["status"] == "SUCCEEDED"


def test_run_id_of_another_experiment_is_refused(engine: sa.Engine, local: LocalStore) -> None:
    aggregate_run(standard_run().write(local), local, engine)
    before = dump(engine)
    clash = standard_run(experiment_id="EXP-OTHER").write(local)

    with pytest.raises(InputError, match="already belongs to experiment 'EXP-001'"):
        aggregate_run(clash, local, engine)
    assert dump(engine) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_missing_manifest_names_the_key(engine: sa.Engine, local: LocalStore) -> None:
    request = standard_run().write(local)
    local.delete_prefix("runs/")
    with pytest.raises(ObjectNotFoundError, match="manifest.json"):
        aggregate_run(request, local, engine)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda records: records[0].update(Output="{not json"), r"SUCCEEDED_0.json\[0\]: Output"),
        (
            lambda records: records[0].update(
                Output='{"run_id": "run-9", "parquet_key": null, "images": []}'
            ),
            "belongs to run 'run-9'",
        ),
        (lambda records: records.append(records[0]), "reported twice"),
    ],
)
def test_malformed_result_files_are_named(
    engine: sa.Engine, local: LocalStore, mangle: Any, message: str
) -> None:
    request = standard_run().write(local)
    key = request.result_writer["Key"].replace("manifest.json", "SUCCEEDED_0.json")
    records = json.loads(local.get_bytes(key))
    mangle(records)
    local.put_bytes(key, json.dumps(records).encode())
    with pytest.raises(InputError, match=message):
        aggregate_run(request, local, engine)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_result_writer_key_must_belong_to_the_run(engine: sa.Engine, local: LocalStore) -> None:
    request = standard_run().write(local)
    wrong = AggregateRequest.model_validate(
        {**request.model_dump(), "result_writer": {"Bucket": "b", "Key": "runs/run-2/m.json"}}
    )
    with pytest.raises(InputError, match="not under runs/run-1/"):
        aggregate_run(wrong, local, engine)


def test_failed_batch_without_input_is_recorded_by_name(
    engine: sa.Engine, local: LocalStore
) -> None:
    results = standard_run()
    del results.failed[0]["Input"]
    result = aggregate_run(results.write(local), local, engine)

    failures = rows(engine, "run_failures", run_id="run-1")
    batch = [row for row in failures if row["kind"] == "batch"]
    assert len(batch) == 1 and batch[0]["item_id"] == batch[0]["batch"]
    assert result.batches_failed == 1


def test_experiment_spans_its_runs(engine: sa.Engine, local: LocalStore) -> None:
    first = standard_run().write(local)
    later = MapResults(
        run_id="run-2", started_at="2025-11-24T09:00:00Z", stopped_at="2025-11-24T09:05:00Z"
    )
    later.add_ok([ok("P1", "B02", 1, 11, 95.0)])
    aggregate_run(first, local, engine)
    aggregate_run(later.write(local), local, engine)
    aggregate_run(first, local, engine)  # re-aggregating an older run keeps the span

    [experiment] = rows(engine, "experiments")
    assert experiment["created_at"].replace(tzinfo=None).isoformat() == "2025-11-23T10:00:00"
    assert experiment["updated_at"].replace(tzinfo=None).isoformat() == "2025-11-24T09:05:00"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_pending_batches_count_as_failed(engine: sa.Engine, local: LocalStore) -> None:
    request = standard_run().write(local)
    key = request.result_writer["Key"]
    manifest = json.loads(local.get_bytes(key))
    files = manifest["ResultFiles"]
    files["PENDING"], files["FAILED"] = files["FAILED"], []
    local.put_bytes(key, json.dumps(manifest).encode())

    result = aggregate_run(request, local, engine)

    assert (result.status, result.batches_failed, result.images_failed) == (
        "SUCCEEDED_WITH_FAILURES",
        1,
        3,
    )
    pending = [r for r in rows(engine, "run_failures") if r["kind"] == "batch"]
    assert {r["error"] for r in pending} == {"States.Pending"}
