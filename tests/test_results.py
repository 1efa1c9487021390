"""The read API over aggregated runs, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from plateseg.db import get_engine, upgrade
from plateseg.errors import InputError
from plateseg.pipeline.aggregate import aggregate_run
from plateseg.results import (
    WellRow,
    image_table,
    latest_run,
    list_runs,
    run_failures,
    well_table,
)
from plateseg.settings import Settings
from plateseg.store import LocalStore
from tests.db.runs import MapResults, ok, standard_run


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
