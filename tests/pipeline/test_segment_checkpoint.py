"""Batch checkpoints: a fully successful batch is stored and reused, never a failed one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest

import plateseg.pipeline.segment as segment_module
from plateseg.contracts import Batch, ManifestItem, Recipe
from plateseg.demo import write_demo_experiment
from plateseg.errors import StoreError
from plateseg.pipeline.segment import checkpoint_key, part_key, segment_batch
from plateseg.plate.manifest import build_manifest
from plateseg.segmentation import onnx_model, validate_recipe
from plateseg.store import LocalStore

EXP = "DEMO-K"


def recipe(**fields: Any) -> Recipe:
    """The recipe as segment_batch keys it: validated, defaults filled."""
    return validate_recipe(Recipe(**fields))


def default_key(store: LocalStore, items: list[ManifestItem]) -> str:
    """The checkpoint key of the default recipe, which names the shipped learned model."""
    digest = onnx_model.model_digest(onnx_model.DEFAULT_MODEL, store)
    return checkpoint_key("run-k", recipe(), items, digest)


@pytest.fixture
def items_and_store(tmp_path: Path) -> tuple[LocalStore, list[ManifestItem]]:
    store = LocalStore(tmp_path / "store")
    write_demo_experiment(store, EXP, wells=["A01", "C03"], size=128)
    items, _ = build_manifest([info.key for info in store.list(f"experiments/{EXP}/")], EXP)
    return store, items


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts segment_field calls (the expensive part a checkpoint skips)."""
    seen: list[str] = []
    real = segment_module.segment_field

    def counting(images: Any, recipe: Recipe, store: Any, params: Any = None) -> Any:
        seen.append(recipe.segmenter)
        return real(images, recipe, store, params)

    monkeypatch.setattr(segment_module, "segment_field", counting)
    return seen


def batch_of(items: list[ManifestItem], recipe: dict[str, Any] | None = None) -> Batch:
    return Batch.model_validate(
        {
            "BatchInput": {
                "run_id": "run-k",
                "experiment_id": EXP,
                "bucket": "plateseg-local",
                "recipe": recipe or {},
            },
            "Items": [item.model_dump() for item in items],
        }
    )


def test_a_successful_batch_is_reused_without_segmenting(
    items_and_store: tuple[LocalStore, list[ManifestItem]], calls: list[str]
) -> None:
    store, items = items_and_store
    first = segment_batch(batch_of(items), store)
    assert len(calls) == len(items)
    key = default_key(store, items)
    assert key.startswith("runs/run-k/batches/") and store.exists(key)

    again = segment_batch(batch_of(items), store)
    assert len(calls) == len(items)  # nothing segmented the second time
    assert again.model_dump(mode="json") == first.model_dump(mode="json")
    # the same batch in another order: the same checkpoint, summaries in item order
    backwards = segment_batch(batch_of(list(reversed(items))), store)
    assert len(calls) == len(items)
    assert [s.image_id for s in backwards.images] == [i.image_id for i in reversed(items)]


def test_the_key_depends_on_recipe_images_and_source_keys(
    items_and_store: tuple[LocalStore, list[ManifestItem]],
) -> None:
    _store, items = items_and_store
    base = checkpoint_key("run-k", recipe(), items)
    assert checkpoint_key("run-k", recipe(), list(reversed(items))) == base
    assert checkpoint_key("run-k", recipe(params={"min_diameter": 9}), items) != base
    assert checkpoint_key("run-k", recipe(), items[:-1]) != base
    moved = items[0].model_copy(update={"channels": {"w1": "experiments/other.tif"}})
    assert checkpoint_key("run-k", recipe(), [moved, *items[1:]]) != base
    projected = items[0].model_copy(update={"planes": {"w1": ["experiments/p2.tif"]}})
    with_planes = checkpoint_key("run-k", recipe(), [projected, *items[1:]])
    assert with_planes != base
    more = projected.model_copy(update={"planes": {"w1": ["experiments/p2.tif", "p3.tif"]}})
    assert checkpoint_key("run-k", recipe(), [more, *items[1:]]) != with_planes


def test_a_batch_with_a_failed_image_has_no_checkpoint_and_runs_again(
    items_and_store: tuple[LocalStore, list[ManifestItem]], calls: list[str]
) -> None:
    store, items = items_and_store
    broken = items[0].channels["w1"]
    good = store.get_bytes(broken)
    store.put_bytes(broken, b"II*\x00 not a tiff")
    failed = segment_batch(batch_of(items), store)
    assert failed.images[0].status == "error"
    assert not store.exists(default_key(store, items))
    segmented = len(calls)

    store.put_bytes(broken, good)  # the scientist replaces the file
    fixed = segment_batch(batch_of(items), store)
    assert [s.status for s in fixed.images] == ["ok"] * len(items)
    assert len(calls) == segmented + len(items)  # every image segmented again
    assert store.exists(default_key(store, items))


def test_a_checkpoint_whose_outputs_changed_is_not_trusted(
    items_and_store: tuple[LocalStore, list[ManifestItem]], calls: list[str]
) -> None:
    store, items = items_and_store
    first = segment_batch(batch_of(items), store)
    assert first.parquet_key == part_key("run-k", [i.image_id for i in items])
    store.put_bytes(first.parquet_key, b"PAR1 rewritten by another recipe")
    segment_batch(batch_of(items), store)
    assert len(calls) == 2 * len(items)  # the part changed: segmented again

    mask = first.images[0].mask_key
    assert mask is not None
    store.delete_prefix(mask)
    segment_batch(batch_of(items), store)
    assert len(calls) == 3 * len(items)  # a mask vanished: segmented again

    store.put_bytes(default_key(store, items), b"{not json")
    again = segment_batch(batch_of(items), store)
    assert len(calls) == 4 * len(items)  # unreadable checkpoint: segmented again
    assert again.model_dump(mode="json") == first.model_dump(mode="json")


class WriteOnlyRuns(LocalStore):
    """A role that may put under runs/ but not read there (S3 answers AccessDenied)."""

    def get_bytes(self, key: str) -> bytes:
        if key.startswith("runs/"):
            raise StoreError(f"s3://bucket/{key}: AccessDenied")
        return super().get_bytes(key)


def test_an_unreadable_checkpoint_is_no_checkpoint_not_a_failed_batch(
    items_and_store: tuple[LocalStore, list[ManifestItem]], calls: list[str]
) -> None:
    store, items = items_and_store
    denied = WriteOnlyRuns(store.root)
    first = segment_batch(batch_of(items), denied)
    again = segment_batch(batch_of(items), denied)
    assert len(calls) == 2 * len(items)  # segmented both times, and both succeeded
    assert again.model_dump(mode="json") == first.model_dump(mode="json")
    segment_batch(batch_of(items), store)  # readable: reused
    assert len(calls) == 2 * len(items)


def test_a_model_replaced_under_its_name_is_segmented_again(
    items_and_store: tuple[LocalStore, list[ManifestItem]], calls: list[str]
) -> None:
    store, items = items_and_store
    original = (Path(onnx_model.__file__).parents[1] / "models" / "nuclei-rf.onnx").read_bytes()
    store.put_bytes(onnx_model.model_key("nuclei-rf"), original)
    with_model = {"segmenter": "onnx", "params": {"model": "nuclei-rf"}}
    segment_batch(batch_of(items, with_model), store)
    segment_batch(batch_of(items, with_model), store)
    assert len(calls) == len(items)  # the same model bytes: reused

    replaced = onnx.load_from_string(original)
    replaced.doc_string = "retrained from new scribbles"
    store.put_bytes(onnx_model.model_key("nuclei-rf"), replaced.SerializeToString())
    segment_batch(batch_of(items, with_model), store)
    assert len(calls) == 2 * len(items)  # another model under the same name: segmented
