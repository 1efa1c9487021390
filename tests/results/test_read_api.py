"""The read API over aggregated runs, on both backends."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from plateseg.db import get_engine, upgrade
from plateseg.errors import InputError, NotFoundError
from plateseg.pipeline.aggregate import aggregate_run
from plateseg.results import (
    WellRow,
    export_run,
    get_experiment,
    image_page,
    image_table,
    latest_run,
    list_experiments,
    list_runs,
    plate_qc,
    run_detail,
    run_failures,
    run_metrics,
    well_metric_grid,
    well_table,
)
from plateseg.settings import Settings
from plateseg.store import LocalStore
from tests.db.runs import MapResults, ok, qc_run, standard_run, write_layout


@pytest.fixture
def engine(db_url: str, settings: Settings) -> sa.Engine:
    engine = get_engine(db_url)
    upgrade(engine)
    return engine


@pytest.fixture
def aggregated(engine: sa.Engine, tmp_path: Path) -> sa.Engine:
    """Two runs of EXP-001 (run-1 the standard run, run-2 later and clean) and one of EXP-002."""
    store = LocalStore(tmp_path / "store")
    aggregate_run(standard_run().write(store), store, engine)
    later = MapResults(
        run_id="run-2", started_at="2025-11-24T09:00:00Z", stopped_at="2025-11-24T09:05:00Z"
    )
    later.add_ok([ok("P1", "B02", 1, 11, 95.0)])
    aggregate_run(later.write(store), store, engine, engine_name="aws")
    aggregate_run(standard_run("run-x", "EXP-002").write(store), store, engine)
    return engine


def test_latest_run_is_the_last_finished(aggregated: sa.Engine) -> None:
    run = latest_run(aggregated, "EXP-001")
    assert run is not None
    assert run.run_id == "run-2"
    assert run.engine == "aws"
    assert run.status == "SUCCEEDED"
    assert run.finished_at == datetime(2025, 11, 24, 9, 5, tzinfo=UTC)
    assert run.recipe["segmenter"] == "classical"
    assert latest_run(aggregated, "EXP-404") is None


def test_list_runs_newest_first(aggregated: sa.Engine) -> None:
    assert [r.run_id for r in list_runs(aggregated, "EXP-001")] == ["run-2", "run-1"]
    assert {r.run_id for r in list_runs(aggregated)} == {"run-1", "run-2", "run-x"}


def test_well_table_of_a_given_run(aggregated: sa.Engine) -> None:
    assert well_table(aggregated, "EXP-001", run_id="run-1") == [
        WellRow(plate="P1", well="B02", n_fields=3, n_objects=60, mean_area=110.0, n_failed=0),
        WellRow(plate="P1", well="B03", n_fields=2, n_objects=12, mean_area=90.0, n_failed=1),
        WellRow(plate="P1", well="C02", n_fields=0, n_objects=0, mean_area=None, n_failed=2),
    ]


def test_well_table_defaults_to_the_latest_run(aggregated: sa.Engine) -> None:
    assert well_table(aggregated, "EXP-001") == [
        WellRow(plate="P1", well="B02", n_fields=1, n_objects=11, mean_area=95.0, n_failed=0)
    ]


def test_experiment_without_runs_is_a_clear_error(engine: sa.Engine) -> None:
    with pytest.raises(InputError, match="experiment 'EXP-404' has no recorded runs"):
        well_table(engine, "EXP-404")


def test_run_of_another_experiment_is_refused(aggregated: sa.Engine) -> None:
    with pytest.raises(InputError, match="belongs to experiment 'EXP-002'"):
        well_table(aggregated, "EXP-001", run_id="run-x")
    with pytest.raises(InputError, match="no run 'run-404'"):
        well_table(aggregated, "EXP-001", run_id="run-404")


def test_image_table_carries_metrics(aggregated: sa.Engine) -> None:
    images = image_table(aggregated, "run-1")
    assert [i.image_id for i in images][:3] == ["P1_B02_1", "P1_B02_2", "P1_B02_3"]
    assert len(images) == 8
    by_id = {i.image_id: i for i in images}
    assert by_id["P1_B02_2"].metrics["Count_Nuclei"] == 20.0
    assert by_id["P1_B03_2"].status == "error"
    assert by_id["P1_B03_2"].metrics == {}
    assert by_id["P1_C02_1"].error == "States.Timeout"


def test_run_failures_lists_images_and_batches(aggregated: sa.Engine) -> None:
    failures = run_failures(aggregated, "run-1")
    assert [(f.item_id, f.kind, f.error) for f in failures] == [
        ("P1_B03_2", "image", "ImageReadError"),
        ("P1_C02_1", "batch", "States.Timeout"),
        ("P1_C02_2", "batch", "States.Timeout"),
    ]
    assert run_failures(aggregated, "run-2") == []
    with pytest.raises(InputError, match="no run 'nope'"):
        run_failures(aggregated, "nope")


@pytest.fixture
def with_qc(engine: sa.Engine, tmp_path: Path) -> tuple[sa.Engine, LocalStore]:
    """EXP-QC (layout with controls, run-qc) plus the two EXP-001 runs, objects in the store."""
    store = LocalStore(tmp_path / "qc-store")
    write_layout(store, "EXP-QC")
    aggregate_run(qc_run().write(store), store, engine)
    aggregate_run(standard_run().write(store), store, engine)
    table = pa.table(
        {
            "image_id": ["P1_A01_1", "P1_A01_1", "P1_A12_1"],
            "plate": ["P1"] * 3,
            "well": ["A01", "A01", "A12"],
            "AreaShape_Area": [10.0, 12.0, 30.0],
        }
    )
    parts = run_detail(engine, "run-qc").run.object_parts  # the parts its batches reported
    assert parts
    for index, key in enumerate(parts):  # the objects in the first, the others empty
        buffer = io.BytesIO()
        pq.write_table(table if index == 0 else table.slice(0, 0), buffer)
        store.put_bytes(key, buffer.getvalue())
    return engine, store


def test_list_and_get_experiments(with_qc: tuple[sa.Engine, LocalStore]) -> None:
    engine, _ = with_qc
    experiments = {e.experiment_id: e for e in list_experiments(engine)}
    assert set(experiments) == {"EXP-001", "EXP-QC"}
    qc = experiments["EXP-QC"]
    assert (qc.n_runs, qc.n_plates, qc.n_wells, qc.n_fields, qc.latest_run_id) == (
        1,
        1,
        7,
        7,
        "run-qc",
    )
    assert get_experiment(engine, "EXP-001").n_fields == 8
    with pytest.raises(NotFoundError, match="'EXP-404'"):
        get_experiment(engine, "EXP-404")


def test_run_detail_and_metrics(with_qc: tuple[sa.Engine, LocalStore]) -> None:
    engine, _ = with_qc
    detail = run_detail(engine, "run-1")
    assert detail.run.run_id == "run-1" and len(detail.failures) == 3
    assert (
        detail.metrics
        == run_metrics(engine, "run-1")
        == [
            "Count_Nuclei",
            "Mean_Nuclei_AreaShape_Area",
            "Mean_Nuclei_Intensity_MeanIntensity_w2",
        ]
    )
    assert detail.plate_qc == []
    assert detail.run.parameters["batch_size"] == 3
    with pytest.raises(NotFoundError):
        run_detail(engine, "nope")


def test_well_metric_grid_spans_the_plate(with_qc: tuple[sa.Engine, LocalStore]) -> None:
    engine, _ = with_qc
    grid = well_metric_grid(engine, "EXP-QC", "Count_Nuclei")
    assert grid.run_id == "run-qc"
    [plate] = grid.plates
    assert (plate.plate, plate.plate_format, len(plate.rows), len(plate.columns)) == (
        "P1",
        96,
        8,
        12,
    )
    assert plate.values[0][0] == 10.0 and plate.values[0][11] == 100.0
    assert plate.values[0][4] == 50.0 and plate.values[7][11] is None
    assert (plate.control[0][0], plate.control[1][11], plate.control[0][4]) == ("neg", "pos", "")
    assert plate.n_fields[2][0] == 1 and plate.condition[0][4] == "CPD-1 3 uM"
    with pytest.raises(NotFoundError, match="no metric 'Nope'.*Count_Nuclei"):
        well_metric_grid(engine, "EXP-QC", "Nope")


def test_plate_qc_read(with_qc: tuple[sa.Engine, LocalStore]) -> None:
    engine, _ = with_qc
    [count] = plate_qc(engine, "run-qc", "Count_Nuclei")
    assert count.z_prime == pytest.approx(0.6, abs=1e-9)
    assert count.signal_to_background == pytest.approx(10.0)
    assert len(plate_qc(engine, "run-qc")) == 3


def test_image_page_sorts_filters_and_pages(with_qc: tuple[sa.Engine, LocalStore]) -> None:
    engine, _ = with_qc
    page = image_page(engine, "run-qc", sort="Count_Nuclei", descending=True, limit=2)
    assert page.total == 7
    assert [r.image_id for r in page.rows] == ["P1_B12_1", "P1_A12_1"]
    assert page.rows[0].metrics["Count_Nuclei"] == 110.0
    second = image_page(engine, "run-qc", sort="Count_Nuclei", descending=True, limit=2, offset=2)
    assert [r.image_id for r in second.rows] == ["P1_C12_1", "P1_A05_1"]
    failed = image_page(engine, "run-1", status="error", sort="well")
    assert (failed.total, [r.well for r in failed.rows]) == (3, ["B03", "C02", "C02"])
    flagged = image_page(engine, "run-1", qc_flag="nonfinite_metric")
    assert [r.image_id for r in flagged.rows] == ["P1_B03_3"]
    with pytest.raises(InputError, match="cannot sort by 'Nope'"):
        image_page(engine, "run-qc", sort="Nope")
    with pytest.raises(NotFoundError):
        image_page(engine, "nope")


def test_export_images_csv_and_wells_parquet(with_qc: tuple[sa.Engine, LocalStore]) -> None:
    engine, _ = with_qc
    text = export_run(engine, "run-qc", "csv").decode()
    lines = text.splitlines()
    header = lines[0].replace('"', "").split(",")
    assert header[:7] == [
        "image_id",
        "plate",
        "well",
        "field",
        "status",
        "qc_flags",
        "object_count",
    ]
    assert "Count_Nuclei" in header and "control" in header
    assert len(lines) == 8
    wells = pq.read_table(io.BytesIO(export_run(engine, "run-qc", "parquet", level="wells")))
    rows = {r["well"]: r for r in wells.to_pylist()}
    assert rows["A12"]["Count_Nuclei"] == 100.0 and rows["A12"]["control"] == "pos"
    with pytest.raises(InputError, match="not one of csv, parquet"):
        export_run(engine, "run-qc", "xlsx")  # type: ignore[arg-type]


def test_export_objects_joins_the_layout(with_qc: tuple[sa.Engine, LocalStore]) -> None:
    engine, store = with_qc
    data = export_run(engine, "run-qc", "parquet", level="objects", store=store)
    rows = pq.read_table(io.BytesIO(data)).to_pylist()
    assert [(r["well"], r["AreaShape_Area"], r["control"]) for r in rows] == [
        ("A01", 10.0, "neg"),
        ("A01", 12.0, "neg"),
        ("A12", 30.0, "pos"),
    ]
    with pytest.raises(InputError, match="needs the store"):
        export_run(engine, "run-qc", level="objects")


def test_export_names_each_failure_and_counts_them_per_well(aggregated: sa.Engine) -> None:
    """What the web downloads and ``plateseg results --export`` need: error, cause, n_failed."""
    images = pq.read_table(io.BytesIO(export_run(aggregated, "run-1", "parquet"))).to_pylist()
    by_id = {row["image_id"]: row for row in images}
    assert len(by_id) == len(images) == 8
    assert by_id["P1_B03_2"]["status"] == "error"
    assert "truncated TIFF" in by_id["P1_B03_2"]["cause"]
    assert by_id["P1_C02_1"]["error"] == "States.Timeout"  # an image of a failed batch
    assert by_id["P1_B02_1"]["error"] is None and by_id["P1_B02_1"]["cause"] is None
    header = export_run(aggregated, "run-1", "csv").decode().splitlines()[0].replace('"', "")
    assert header.split(",")[7:9] == ["error", "cause"]

    wells = pq.read_table(io.BytesIO(export_run(aggregated, "run-1", "parquet", level="wells")))
    rows = {row["well"]: row for row in wells.to_pylist()}
    # C02's fields all failed: no well metrics, still a row, with its failures counted
    assert [(w, rows[w]["n_fields"], rows[w]["n_failed"]) for w in sorted(rows)] == [
        ("B02", 3, 0),
        ("B03", 2, 1),
        ("C02", 0, 2),
    ]
    assert rows["C02"]["Count_Nuclei"] is None and rows["B02"]["Count_Nuclei"] == 20.0
    assert {r.well: r.n_failed for r in well_table(aggregated, "EXP-001", "run-1")} == {
        w: rows[w]["n_failed"] for w in rows
    }
