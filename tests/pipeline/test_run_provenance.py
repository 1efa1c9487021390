"""A run is exactly what it recorded: its parts, its owner, its model, its layout, its wells.

Each test reproduces a failure found by trying plateseg as a careless user would
(issue 14, items 1, 2, 3 and 5) through the real local engine.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from plateseg.db import get_engine
from plateseg.demo import write_demo_experiment
from plateseg.errors import ExecutionFailed, RunOwnershipError
from plateseg.map_settings import MapSettings as MapTunables
from plateseg.results import export_run
from plateseg.runs.embedded import journal_path, run_local
from plateseg.segmentation.onnx_model import model_key
from plateseg.settings import Settings
from plateseg.store import LocalStore

WELLS = ["A01", "A02", "B03", "H12"]  # 2 fields each: 8 fields
SHIPPED = Path(__file__).resolve().parents[2] / "plateseg" / "models"


@pytest.fixture
def demo(settings: Settings, store: LocalStore) -> LocalStore:
    write_demo_experiment(store, "E1", size=128, wells=WELLS)
    write_demo_experiment(store, "E2", size=128, wells=WELLS[:2], seed=7)
    return store


def _objects(settings: Settings, run_id: str, store: LocalStore) -> int:
    data = export_run(
        get_engine(settings.resolved_database_url), run_id, "parquet", level="objects", store=store
    )
    return pq.read_table(io.BytesIO(data)).num_rows


def _recorded(settings: Settings, run_id: str, column: str) -> object:
    with get_engine(settings.resolved_database_url).connect() as connection:
        query = sa.text(f"SELECT {column} FROM runs WHERE run_id = :r")
        return connection.scalar(query, {"r": run_id})


def test_rerunning_a_run_id_with_another_batch_size_does_not_double_count(
    settings: Settings, demo: LocalStore
) -> None:
    first = run_local("E1", run_id="R", settings=settings, tunables=MapTunables(items_per_batch=1))
    second = run_local("E1", run_id="R", settings=settings, tunables=MapTunables(items_per_batch=3))
    assert first.result.objects == second.result.objects > 0
    assert _objects(settings, "R", demo) == second.result.objects  # was 2x before
    parts = json.loads(str(_recorded(settings, "R", "object_parts_json")))
    on_disk = sorted(info.key for info in demo.list("runs/R/objects/"))
    assert on_disk == sorted(parts) and len(parts) == 3  # the 8 parts of attempt 1 are gone


def test_a_run_id_of_another_experiment_is_refused_before_anything_is_written(
    settings: Settings, demo: LocalStore
) -> None:
    run_local("E1", run_id="RR", settings=settings)
    before = {info.key: info.etag for info in demo.list("runs/RR/")}
    journal = journal_path("RR", settings).read_bytes()
    objects = _objects(settings, "RR", demo)
    with pytest.raises(RunOwnershipError, match="'RR' belongs to experiment 'E1', not 'E2'"):
        run_local("E2", run_id="RR", settings=settings)
    assert {info.key: info.etag for info in demo.list("runs/RR/")} == before
    assert journal_path("RR", settings).read_bytes() == journal
    assert _objects(settings, "RR", demo) == objects


def test_lookup_refuses_a_run_id_of_another_experiment_too(
    settings: Settings, demo: LocalStore
) -> None:
    """Lookup is the edge of every engine (AWS included): it checks the owner first."""
    from plateseg.contracts import LookupRequest
    from plateseg.pipeline.lookup import lookup

    lookup(LookupRequest(input={"experiment_id": "E1"}, execution_name="X", bucket="b"), demo)
    assert json.loads(demo.get_bytes("runs/X/owner.json")) == {"experiment_id": "E1"}
    manifest = demo.get_bytes("runs/X/manifest.json")
    request = LookupRequest(
        input={"experiment_id": "E2", "run_id": "X"}, execution_name="Y", bucket="b"
    )
    with pytest.raises(RunOwnershipError, match="belongs to experiment 'E1'"):
        lookup(request, demo)
    assert demo.get_bytes("runs/X/manifest.json") == manifest


def test_the_model_is_pinned_at_lookup_and_a_replaced_model_is_not_used(
    settings: Settings, demo: LocalStore
) -> None:
    """A model replaced mid-run: every batch segments with the bytes Lookup pinned."""
    model_a = (SHIPPED / "nuclei-unet.onnx").read_bytes()
    model_b = (SHIPPED / "nuclei-rf.onnx").read_bytes()
    demo.put_bytes(model_key("m1"), model_a)
    reference = run_local(
        "E1", run_id="A", settings=settings, recipe={"segmenter": "onnx", "params": {"model": "m1"}}
    )

    def replace_after_lookup(event: object) -> None:
        if getattr(event, "type", "") == "MapRunStarted":
            demo.put_bytes(model_key("m1"), model_b)

    swapped = run_local(
        "E1",
        run_id="B",
        settings=settings,
        recipe={"segmenter": "onnx", "params": {"model": "m1"}},
        tunables=MapTunables(items_per_batch=1, max_concurrency=1),
        listener=replace_after_lookup,
    )
    assert demo.get_bytes(model_key("m1")) == model_b  # it was replaced mid-run
    assert swapped.result.objects == reference.result.objects
    import hashlib

    pinned = hashlib.sha256(model_a).hexdigest()
    assert _recorded(settings, "B", "model_hash") == pinned
    assert demo.get_bytes("runs/B/model.onnx") == model_a


def test_a_pinned_model_copy_that_changed_fails_every_batch_naming_both_hashes(
    settings: Settings, demo: LocalStore
) -> None:
    from plateseg.contracts import Recipe
    from plateseg.errors import ModelError
    from plateseg.pipeline.pinning import pin_model, pinned_model_store

    def tamper(event: object) -> None:
        if getattr(event, "type", "") == "MapRunStarted":
            demo.put_bytes("runs/T/model.onnx", b"not the pinned model")

    with pytest.raises(ExecutionFailed):  # no batch segments with other bytes
        run_local(
            "E1",
            run_id="T",
            settings=settings,
            tunables=MapTunables(tolerated_failure_percentage=0),
            listener=tamper,
        )
    recipe = Recipe.model_validate(json.loads(demo.get_bytes("runs/T/recipe.json")))
    assert (
        recipe.params["model_sha256"]
        == pin_model(recipe, LocalStore(demo.root), "U").params["model_sha256"]
    )
    with pytest.raises(ModelError, match=r"changed during the run: pinned sha256 \w{12}…"):
        pinned_model_store(recipe, demo, "T")


def test_editing_the_layout_later_does_not_rewrite_an_old_run(
    settings: Settings, demo: LocalStore
) -> None:
    run_local("E1", run_id="old", settings=settings)
    engine = get_engine(settings.resolved_database_url)
    before = export_run(engine, "old", "csv", level="wells")
    layout = demo.get_bytes("experiments/E1/layout.csv").decode()
    edited = layout.replace(",neg", ",pos").replace("DMSO", "EDITED")
    assert edited != layout
    demo.put_bytes("experiments/E1/layout.csv", edited.encode())
    run_local("E1", run_id="new", settings=settings)
    assert export_run(engine, "old", "csv", level="wells") == before
    assert b"EDITED" in export_run(engine, "new", "csv", level="wells")


def test_an_off_plate_well_is_refused_at_lookup_naming_the_file(
    settings: Settings, demo: LocalStore
) -> None:
    source = next(k.key for k in demo.list("experiments/E1/") if "_A01_s1_w1" in k.key)
    bad = source.replace("_A01_", "_Z99_")
    demo.put_bytes(bad, demo.get_bytes(source))
    with pytest.raises(ExecutionFailed) as failed:
        run_local("E1", run_id="Z", settings=settings)
    assert "Z99" in str(failed.value) and bad in str(failed.value)
    assert not demo.exists("runs/Z/map")  # nothing was segmented
    assert not list(demo.list("runs/Z/masks/"))
