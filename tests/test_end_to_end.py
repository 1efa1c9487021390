"""The whole pipeline on one machine: demo experiment → local engine → database.

This is what ``make run`` does; the counts must match the demo ground truth.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from plateseg.db.engine import get_engine
from plateseg.demo import write_demo_experiment
from plateseg.demo_check import count_matches_truth
from plateseg.errors import ExecutionFailed, InputError
from plateseg.results import well_table
from plateseg.runs.embedded import run_local
from plateseg.settings import Settings, use_settings
from plateseg.store import LocalStore, get_json


def _table_dump(url: str, run_id: str) -> dict[str, list[tuple[object, ...]]]:
    engine = get_engine(url)
    dumps = {}
    with engine.connect() as conn:
        for table in ("images", "image_metrics", "well_metrics", "experiment_metrics"):
            rows = conn.execute(
                text(f"SELECT * FROM {table} WHERE run_id = :r"), {"r": run_id}
            ).all()
            dumps[table] = sorted(tuple(row) for row in rows)
    return dumps


@pytest.mark.slow
def test_demo_run_matches_ground_truth_and_is_idempotent(
    settings: Settings, store: LocalStore
) -> None:
    write_demo_experiment(store, "DEMO-001")
    first = run_local("DEMO-001", run_id="e2e")
    assert first.result.status == "SUCCEEDED"
    assert first.result.images_ok == 192

    truth = get_json(store, "truth/DEMO-001/counts.json")["wells"]
    found = {f"{r.plate}_{r.well}": r.n_objects for r in well_table(get_engine(), "DEMO-001")}
    for well, expected in truth.items():
        if expected:
            assert count_matches_truth(found[well], expected), (well, found[well], expected)
        else:
            assert found.get(well, 0) <= 1, well

    url = settings.resolved_database_url
    before = _table_dump(url, "e2e")
    second = run_local("DEMO-001", run_id="e2e")
    assert second.result == first.result
    assert _table_dump(url, "e2e") == before


def test_run_on_postgresql(postgres_url: str, settings: Settings, store: LocalStore) -> None:
    use_settings(settings.model_copy(update={"database_url": postgres_url}))
    write_demo_experiment(store, "PG-1", size=256, seed=5)
    # Keep it small: drop all but two wells' images.
    for info in list(store.list("experiments/PG-1/")):
        if not any(f"_{well}_" in info.key for well in ("B02", "D07")):
            (store.root / info.key).unlink()
    run = run_local("PG-1", run_id="pg-run")
    assert run.result.images_ok == 4
    rows = {r.well: r.n_objects for r in well_table(get_engine(postgres_url), "PG-1")}
    assert set(rows) == {"B02", "D07"}


def test_experiment_without_images_fails_with_a_clear_cause(settings: Settings) -> None:
    with pytest.raises(ExecutionFailed) as info:
        run_local("NOTHING-HERE")
    assert info.value.error == "NoImagesFound"
    assert "NOTHING-HERE" in info.value.cause


def test_unsafe_experiment_id_is_refused_before_anything_runs(settings: Settings) -> None:
    with pytest.raises(InputError, match="experiment id"):
        run_local("../../etc")
