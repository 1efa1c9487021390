"""Aggregate with a plate layout: wells, plates, image QC flags and plate QC (Z')."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from plateseg.contracts import Recipe
from plateseg.db import get_engine
from plateseg.db.models import Base
from plateseg.errors import InputError
from plateseg.map_settings import MapSettings as RunSettings
from plateseg.pipeline.aggregate import aggregate_run
from plateseg.planning import run_cost_usd
from plateseg.segmentation import onnx_model
from plateseg.settings import Settings
from plateseg.store import LocalStore, put_json
from tests.db.runs import MapResults, item, ok, qc_run, standard_run, write_layout


@pytest.fixture
def engine(db_url: str, settings: Settings) -> sa.Engine:
    return get_engine(db_url)


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def rows(engine: sa.Engine, table: str, **where: Any) -> list[dict[str, Any]]:
    t = Base.metadata.tables[table]
    stmt = sa.select(t).where(*(t.c[k] == v for k, v in where.items()))
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(stmt)]


def test_z_prime_matches_the_hand_computed_example(engine: sa.Engine, local: LocalStore) -> None:
    write_layout(local, "EXP-QC")
    aggregate_run(qc_run().write(local), local, engine)

    qc = {r["metric"]: r for r in rows(engine, "plate_qc", run_id="run-qc")}
    count = qc["Count_Nuclei"]
    assert (count["plate"], count["n_pos"], count["n_neg"]) == ("P1", 3, 3)
    assert (count["mean_pos"], count["mean_neg"]) == (100.0, 10.0)
    assert count["std_pos"] == pytest.approx(math.sqrt(200 / 2))  # sample SDs (ddof=1)
    assert count["std_neg"] == pytest.approx(math.sqrt(8 / 2))
    assert count["z_prime"] == pytest.approx(0.6, abs=1e-9)
    assert count["signal_to_background"] == pytest.approx(10.0)
    area = qc["Mean_Nuclei_AreaShape_Area"]  # identical controls: Z' undefined, S/B 1
    assert (area["z_prime"], area["signal_to_background"]) == (None, 1.0)


def test_wells_carry_the_layout(engine: sa.Engine, local: LocalStore) -> None:
    write_layout(local, "EXP-QC")
    aggregate_run(qc_run().write(local), local, engine)

    wells = {r["well"]: r for r in rows(engine, "wells", experiment_id="EXP-QC")}
    assert set(wells) == {"A01", "B01", "C01", "A12", "B12", "C12", "A05"}
    assert (wells["A05"]["row"], wells["A05"]["column"]) == ("A", 5)
    assert (wells["A05"]["compound"], wells["A05"]["concentration"]) == ("CPD-1", 3.0)
    assert wells["A12"]["control"] == "pos"
    [plate] = rows(engine, "plates", experiment_id="EXP-QC")
    assert (plate["plate"], plate["n_wells"], plate["plate_format"]) == ("P1", 7, 96)


def test_no_layout_means_unannotated_wells_and_no_qc(engine: sa.Engine, local: LocalStore) -> None:
    aggregate_run(standard_run().write(local), local, engine)

    wells = rows(engine, "wells", experiment_id="EXP-001")
    assert {w["well"] for w in wells} == {"B02", "B03", "C02"}
    assert {(w["control"], w["condition"], w["concentration"]) for w in wells} == {("", "", None)}
    assert rows(engine, "plate_qc") == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_bad_layout_fails_before_writing(engine: sa.Engine, local: LocalStore) -> None:
    write_layout(local, "EXP-QC", "well,control\nA01,neg\nA01,pos\n")
    with pytest.raises(InputError, match=r"layout.csv: line 3: well A01 is already listed"):
        aggregate_run(qc_run().write(local), local, engine)
    assert not sa.inspect(engine).has_table("runs") or rows(engine, "runs") == []


def test_image_channels_metadata_and_qc_flags(engine: sa.Engine, local: LocalStore) -> None:
    results = MapResults()
    results.add_ok([ok("P1", "B02", 1, 0, float("nan")), ok("P1", "B02", 2, 5, 80.0)])
    request = results.write(local)
    manifest = [item("P1", "B02", 1).model_dump(), item("P1", "B02", 2).model_dump()]
    put_json(local, "runs/run-1/manifest.json", manifest)

    aggregate_run(request, local, engine, parameters={"max_concurrency": 8})

    images = {r["image_id"]: r for r in rows(engine, "images")}
    assert images["P1_B02_1"]["qc_flags"] == "no_objects,nonfinite_metric"
    assert images["P1_B02_2"]["qc_flags"] == ""
    assert json.loads(images["P1_B02_1"]["channels_json"]) == manifest[0]["channels"]
    assert json.loads(images["P1_B02_2"]["metadata_json"]) == {
        "Plate": "P1",
        "Site": 2,
        "Well": "B02",
    }
    [run] = rows(engine, "runs")
    assert (run["max_concurrency"], run["batch_size"], run["items_total"]) == (8, 2, 2)
    assert run["batches"] == 1 and run["cost_estimate_usd"] is None
    parameters = json.loads(run["parameters_json"])
    assert parameters.pop("child_seconds") >= 0
    assert parameters == {"batch_size": 2, "max_concurrency": 8, "parquet_parts": 1}


def test_failed_batch_attempts_count_redrives(engine: sa.Engine, local: LocalStore) -> None:
    results = standard_run()
    results.failed[0]["RedriveCount"] = 2
    aggregate_run(results.write(local), local, engine)

    attempts = {r["item_id"]: r["attempts"] for r in rows(engine, "run_failures")}
    assert attempts == {"P1_B03_2": None, "P1_C02_1": 3, "P1_C02_2": 3}


def test_run_settings_from_the_definition_are_recorded_and_priced(
    engine: sa.Engine, local: LocalStore
) -> None:
    results = MapResults()
    results.add_ok([ok("P1", "B02", 1, 3, 80.0), ok("P1", "B02", 2, 5, 80.0)])
    results.add_ok([ok("P1", "B03", 1, 4, 80.0)])
    settings = RunSettings(
        max_concurrency=32,
        items_per_batch=2,
        tolerated_failure_percentage=5,
        child_execution_type="STANDARD",
        segment_memory_mb=3008,
    )
    request = results.write(local).model_copy(update={"run_settings": settings})

    aggregate_run(request, local, engine)

    [run] = rows(engine, "runs")
    assert (run["max_concurrency"], run["batch_size"], run["batches"]) == (32, 2, 2)
    parameters = json.loads(run["parameters_json"])
    assert parameters["child_seconds"] == 121.0  # two children of 60.5 s each
    assert parameters["segment_memory_mb"] == 3008
    assert run["cost_estimate_usd"] == pytest.approx(run_cost_usd(3, 2, 121.0, 3008), abs=1e-9)
    assert run["cost_estimate_usd"] > run_cost_usd(3, 2, 121.0, 1024) > 0


def test_the_model_hash_is_of_the_model_the_recipe_names(
    engine: sa.Engine, local: LocalStore
) -> None:
    results = MapResults()
    results.add_ok([ok("P1", "B02", 1, 3, 80.0)])
    recipe = Recipe(segmenter="onnx", params={"model": "nuclei-rf"})
    aggregate_run(results.write(local).model_copy(update={"recipe": recipe}), local, engine)
    shipped = Path(onnx_model.__file__).parents[1] / "models" / "nuclei-rf.onnx"
    [run] = rows(engine, "runs")
    assert run["model_hash"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
