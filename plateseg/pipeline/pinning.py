"""Inputs a run is pinned to at Lookup, so replacing them mid-run changes nothing.

- **The model.** Lookup reads the recipe's model once, records its SHA-256 in the recipe
  (``params.model_sha256``) and copies its bytes to ``runs/<run_id>/model.onnx``. Every
  Segment batch loads that copy and checks its hash (:func:`pinned_model_store`), so a
  ``models/<name>.onnx`` replaced during the run is not used, and a copy that does not
  match fails the batch with a :class:`~plateseg.errors.ModelError` naming both hashes.
  Aggregate records the pinned hash, not a re-read of the model.
- **The plate layout.** Lookup copies ``experiments/<id>/layout.csv`` to
  ``runs/<run_id>/layout.csv`` (:func:`plateseg.store.keys.run_layout_key`); Aggregate reads
  the snapshot and the database keeps it with the run, so editing the layout later does
  not rewrite an old run's annotations or Z'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

from plateseg.contracts import Recipe
from plateseg.errors import ModelError, ObjectNotFoundError
from plateseg.segmentation.onnx_model import load_model_bytes, model_key, read_model_bytes
from plateseg.store import ObjectInfo, Store
from plateseg.store.keys import run_layout_key, run_model_key

__all__ = [
    "MODEL_SEGMENTERS",
    "pin_model",
    "pinned_model_store",
    "snapshot_layout",
]

#: Segmenters whose ``params.model`` names an ONNX model.
MODEL_SEGMENTERS = ("onnx", "trainable")


def _model_name(recipe: Recipe) -> str | None:
    model = recipe.params.get("model")
    if recipe.segmenter in MODEL_SEGMENTERS and isinstance(model, str) and model:
        return model
    return None


def pin_model(recipe: Recipe, store: Store, run_id: str) -> Recipe:
    """Copy the recipe's model under the run and return the recipe pinned to its hash.

    A recipe without a model is returned unchanged.

    Raises
    ------
    ModelError
        The model does not exist, is not an ONNX model or breaks the model contract.
    """
    name = _model_name(recipe)
    if name is None:
        return recipe
    data = read_model_bytes(name, store)
    load_model_bytes(name, data)  # ModelError: not an ONNX model, or breaks the contract
    store.put_bytes(run_model_key(run_id), data, "application/octet-stream")
    params = {**recipe.params, "model_sha256": hashlib.sha256(data).hexdigest()}
    return recipe.model_copy(update={"params": params})


class _PinnedModel:
    """``store`` with ``models/<name>.onnx`` answered by the run's pinned bytes."""

    name: str

    def __init__(self, store: Store, key: str, data: bytes) -> None:
        self._store, self._key, self._data = store, key, data
        self.name = store.name

    def get_bytes(self, key: str) -> bytes:
        return self._data if key == self._key else self._store.get_bytes(key)

    def size(self, key: str) -> int:
        return len(self._data) if key == self._key else self._store.size(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._store.put_bytes(key, data, content_type)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self._store.list(prefix)

    def exists(self, key: str) -> bool:
        return key == self._key or self._store.exists(key)

    def delete_prefix(self, prefix: str) -> int:
        return self._store.delete_prefix(prefix)

    def delete_keys(self, keys: Sequence[str]) -> int:
        return self._store.delete_keys(keys)

    def uri(self, key: str) -> str:
        return self._store.uri(key)


def pinned_model_store(recipe: Recipe, store: Store, run_id: str) -> tuple[Store, str | None]:
    """The store a batch segments with, and the SHA-256 of the model it will use.

    For a recipe pinned by Lookup the model is read from ``runs/<run_id>/model.onnx`` and
    must have the pinned hash. An unpinned recipe (a batch invoked directly) uses the
    current model, whose hash is returned.

    Raises
    ------
    ModelError
        The pinned copy is missing or does not have the pinned hash, or the model does
        not exist.
    """
    name = _model_name(recipe)
    if name is None:
        return store, None
    pinned: Any = recipe.params.get("model_sha256")
    if not pinned:
        return store, hashlib.sha256(read_model_bytes(name, store)).hexdigest()
    where = run_model_key(run_id)
    try:
        data = store.get_bytes(where)
    except ObjectNotFoundError:
        raise ModelError(
            f"model {name!r}: the copy the run was pinned to ({store.uri(where)}) is missing; "
            "start the run again"
        ) from None
    found = hashlib.sha256(data).hexdigest()
    if found != pinned:
        raise ModelError(
            f"model {name!r} changed during the run: pinned sha256 {pinned[:12]}…, "
            f"{store.uri(where)} has {found[:12]}…; start the run again to use the new model"
        )
    return _PinnedModel(store, model_key(name), data), found


def snapshot_layout(store: Store, run_id: str, text: str | None) -> None:
    """Keep ``text`` (the experiment's ``layout.csv`` as Lookup read and checked it) as the
    run's layout, or clear an old snapshot when the experiment has none."""
    target = run_layout_key(run_id)
    if text is None:
        store.delete_keys([target])
        return
    store.put_bytes(target, text.encode("utf-8"), "text/csv")
