"""segment_batch against a local store holding part of the demo experiment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from plateseg.contracts import Batch, ManifestItem
from plateseg.demo import DemoTruth, write_demo_experiment
from plateseg.errors import RecipeError, StoreUnavailableError
from plateseg.imaging import read_image
from plateseg.pipeline.segment import IDENTITY_COLUMNS, part_key, segment_batch
from plateseg.plate.manifest import build_manifest
from plateseg.store import LocalStore

EXP = "DEMO-S"


@pytest.fixture
def demo(tmp_path: Path) -> tuple[LocalStore, DemoTruth, list[ManifestItem]]:
    store = LocalStore(tmp_path / "store")
    truth = write_demo_experiment(store, EXP, wells=["A01", "C03", "D12"], size=256)
    items, _ = build_manifest([info.key for info in store.list(f"experiments/{EXP}/")], EXP)
    return store, truth, items


def make_batch(items: list[ManifestItem], recipe: dict[str, object] | None = None) -> Batch:
    return Batch.model_validate(
        {
            "BatchInput": {
                "run_id": "run-1",
                "experiment_id": EXP,
                "bucket": "plateseg-local",
                "recipe": recipe if recipe is not None else {},
            },
            "Items": [item.model_dump() for item in items],
        }
    )


def test_batch_segments_every_image_and_writes_parts(
    demo: tuple[LocalStore, DemoTruth, list[ManifestItem]],
) -> None:
    store, truth, items = demo
    result = segment_batch(make_batch(items), store)
    assert result.run_id == "run-1"
    assert [s.image_id for s in result.images] == [item.image_id for item in items]
    assert all(s.status == "ok" for s in result.images)
    for summary in result.images:
        assert summary.mask_key == f"runs/run-1/masks/{summary.image_id}.tif"
        mask = read_image(store.get_bytes(summary.mask_key), summary.mask_key)
        assert int(mask.max()) == summary.object_count
        assert summary.metrics["Count_Nuclei"] == summary.object_count
        assert abs(summary.object_count - truth.field_counts[summary.image_id]) <= 2
    assert result.parquet_key == part_key("run-1", [item.image_id for item in items])
    table = pq.read_table(store.uri(result.parquet_key))
    assert table.column_names[: len(IDENTITY_COLUMNS)] == list(IDENTITY_COLUMNS)
    assert "Intensity_MeanIntensity_w2" in table.column_names
    assert table.num_rows == sum(s.object_count for s in result.images)
    assert set(table.column("experiment_id").to_pylist()) == {EXP}
    empty = [s for s in result.images if s.well == "C03"]
    assert empty and all(s.object_count == 0 for s in empty)


def test_corrupt_image_becomes_an_error_record(
    demo: tuple[LocalStore, DemoTruth, list[ManifestItem]],
) -> None:
    store, _truth, items = demo
    broken = items[1]
    store.put_bytes(broken.channels["w2"], b"II*\x00 not really a tiff")
    result = segment_batch(make_batch(items), store)
    statuses = {s.image_id: s for s in result.images}
    record = statuses[broken.image_id]
    assert record.status == "error" and record.error == "ImageReadError"
    assert record.cause is not None and broken.channels["w2"] in record.cause
    assert record.metrics == {} and record.mask_key is None
    assert sum(s.status == "ok" for s in result.images) == len(items) - 1
    table = pq.read_table(store.uri(result.parquet_key or ""))
    assert broken.image_id not in set(table.column("image_id").to_pylist())


def test_missing_recipe_channel_is_an_error_record(
    demo: tuple[LocalStore, DemoTruth, list[ManifestItem]],
) -> None:
    store, _truth, items = demo
    lacking = items[0].model_copy(update={"channels": {"w2": items[0].channels["w2"]}})
    result = segment_batch(make_batch([lacking, items[1]]), store)
    assert result.images[0].status == "error"
    assert "has no channel 'w1'" in (result.images[0].cause or "")
    assert result.images[1].status == "ok"


def test_only_the_nuclei_channel_is_required(
    demo: tuple[LocalStore, DemoTruth, list[ManifestItem]],
) -> None:
    store, _truth, items = demo
    nuclei_only = items[0].model_copy(update={"channels": {"w1": items[0].channels["w1"]}})
    result = segment_batch(make_batch([nuclei_only, items[1]]), store)
    assert [s.status for s in result.images] == ["ok", "ok"]
    table = pq.read_table(store.uri(result.parquet_key or ""))
    rows = table.filter(pc.equal(table.column("image_id"), nuclei_only.image_id))
    assert rows.num_rows == result.images[0].object_count > 0
    # the field without w2 has nulls (NaN) in the w2 columns; the other has values
    w2 = rows.column("Intensity_MeanIntensity_w2").to_numpy()
    assert np.isnan(w2).all()


def test_retried_batch_overwrites_its_part(
    demo: tuple[LocalStore, DemoTruth, list[ManifestItem]],
) -> None:
    store, _truth, items = demo
    first = segment_batch(make_batch(items), store)
    again = segment_batch(make_batch(list(reversed(items))), store)
    assert first.parquet_key == again.parquet_key
    assert len(list(store.list("runs/run-1/objects/"))) == 1


def test_batch_without_objects_writes_no_part(
    demo: tuple[LocalStore, DemoTruth, list[ManifestItem]],
) -> None:
    store, _truth, items = demo
    empty = [item for item in items if item.well == "C03"]
    result = segment_batch(make_batch(empty), store)
    assert result.parquet_key is None
    assert list(store.list("runs/run-1/objects/")) == []


def test_invalid_recipe_propagates(demo: tuple[LocalStore, DemoTruth, list[ManifestItem]]) -> None:
    store, _truth, items = demo
    with pytest.raises(RecipeError, match="recipe.params.min_diameter"):
        segment_batch(make_batch(items, {"params": {"min_diameter": 0}}), store)


class FlakyStore(LocalStore):
    def get_bytes(self, key: str) -> bytes:
        raise StoreUnavailableError(f"{key}: S3 answered SlowDown; retry later")


def test_transient_store_error_propagates(
    demo: tuple[LocalStore, DemoTruth, list[ManifestItem]],
) -> None:
    store, _truth, items = demo
    with pytest.raises(StoreUnavailableError):
        segment_batch(make_batch(items[:1]), FlakyStore(store.root))


def test_parquet_column_types(demo: tuple[LocalStore, DemoTruth, list[ManifestItem]]) -> None:
    store, _truth, items = demo
    result = segment_batch(make_batch(items[:1]), store)
    table = pq.read_table(store.uri(result.parquet_key or ""))
    assert str(table.schema.field("field").type) == "int32"
    assert str(table.schema.field("AreaShape_Area").type) == "double"
    assert np.all(np.asarray(table.column("ObjectNumber")) >= 1)


def test_batch_writes_labels_and_no_pictures(
    demo: tuple[LocalStore, DemoTruth, list[ManifestItem]],
) -> None:
    """Per image, Segment stores the label mask only: the UI draws its pictures from it."""
    store, _truth, items = demo
    segment_batch(make_batch(items[:2]), store)
    written = sorted(info.key for info in store.list("runs/run-1/masks/"))
    assert written == sorted(f"runs/run-1/masks/{item.image_id}.tif" for item in items[:2])


def test_batch_segments_with_one_blas_thread_and_restores_the_pools(
    demo: tuple[LocalStore, DemoTruth, list[ManifestItem]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from threadpoolctl import threadpool_info

    from plateseg.pipeline import segment as module

    seen: list[set[int]] = []
    real = module.segment_field

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(
            {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
        )
        return real(*args, **kwargs)  # type: ignore[arg-type]

    store, _truth, items = demo
    before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    monkeypatch.setattr(module, "segment_field", spy)
    segment_batch(make_batch(items[:1]), store)
    assert seen == [{1}]
    assert [
        pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"
    ] == before


@pytest.mark.parametrize("segmenter", ["onnx", "trainable"])
def test_model_recipes_run_end_to_end(segmenter: str, settings: object, store: LocalStore) -> None:
    """``plateseg run`` with the onnx (shipped model) and trainable (store model) recipes."""
    from plateseg.runs.embedded import run_local
    from plateseg.segmentation.trainable import (
        save_model,
        scribbles_from_mask,
        train_pixel_classifier,
    )
    from plateseg.store import get_json

    truth = write_demo_experiment(store, "DEMO-M", wells=["A01", "B12", "C03"], size=256)
    params: dict[str, object] = {}
    if segmenter == "trainable":
        mask = read_image(store.get_bytes("truth/DEMO-M/masks/P1_A01_1.tif"), "mask")
        image = read_image(store.get_bytes("experiments/DEMO-M/P1/P1_A01_s1_w1.tif"), "image")
        empty = read_image(store.get_bytes("experiments/DEMO-M/P1/P1_C03_s1_w1.tif"), "empty")
        labels = [scribbles_from_mask(mask), scribbles_from_mask(np.zeros_like(mask))]
        model = train_pixel_classifier(
            [image, empty], labels, trees=4, max_depth=6, samples_per_class=3000
        )
        save_model(store, "scribbles", model)
        params = {"model": "scribbles"}
    run = run_local(
        "DEMO-M", recipe={"segmenter": segmenter, "params": params}, run_id=f"m-{segmenter}"
    )
    assert run.result.status == "SUCCEEDED" and run.result.images_failed == 0
    assert get_json(store, f"runs/m-{segmenter}/recipe.json")["segmenter"] == segmenter
    expected = sum(truth.well_counts.values())
    assert abs(run.result.objects - expected) <= 0.1 * expected


def test_secondary_recipe_writes_cell_masks_and_columns(
    demo: tuple[LocalStore, DemoTruth, list[ManifestItem]],
) -> None:
    from plateseg.store.keys import cells_key

    store, _truth, items = demo
    result = segment_batch(make_batch(items[:1], {"secondary": {}}), store)
    image_id = items[0].image_id
    cells = read_image(store.get_bytes(cells_key("run-1", image_id)), "cells")
    assert int(cells.max()) == result.images[0].object_count
    assert result.parquet_key is not None
    table = pq.read_table(store.uri(result.parquet_key))
    assert "Cells_AreaShape_Area" in table.column_names
    assert result.images[0].metrics["Count_Cells"] == result.images[0].object_count
