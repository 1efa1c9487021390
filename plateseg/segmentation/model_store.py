"""Segmentation models in the store: listed, checked and stored for the web UI's models
page and ``plateseg train``.

A model is ``models/<name>.onnx`` in the store (the key :func:`plateseg.segmentation.
onnx_model.model_key` builds, where the ``onnx``/``trainable`` segmenters look) or a
model shipped in the package. Beside a model the web UI writes its provenance as
``models/<name>.json`` (who made it, from what, with which figures); models put there
by ``plateseg train`` or by hand simply have none, and their ONNX metadata is shown
instead.

An uploaded model is checked before it is stored: a safe name, a size limit, that
onnxruntime loads it, that its inputs and outputs fit the plateseg model contract
(:mod:`plateseg.segmentation.onnx_model`) and that it segments a small test tile.
Problems are reported per form field by :class:`ModelFormError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from plateseg.errors import ModelError, NotFoundError, ObjectNotFoundError
from plateseg.segmentation.onnx_model import (
    MODEL_NAME_PATTERN,
    SHIPPED_MODELS,
    LoadedModel,
    load_model,
    model_key,
    shipped_models,
)
from plateseg.store import Store
from plateseg.store.keys import MODELS_PREFIX, provenance_file_key

__all__ = [
    "MAX_MODEL_BYTES",
    "ModelFormError",
    "ModelInfo",
    "check_model_name",
    "delete_model",
    "list_models",
    "provenance_key",
    "store_model",
    "validate_model_bytes",
]

#: Largest model accepted by upload (the web body limit, ``PLATESEG_WEB_MAX_BODY``,
#: applies first: 1 MiB by default).
MAX_MODEL_BYTES = 64 * 1024 * 1024
_NAME = re.compile(MODEL_NAME_PATTERN)
#: Models whose metadata is read for the list when they have no provenance file.
_INSPECT_LIMIT = 8 * 1024 * 1024


class ModelFormError(ModelError):
    """A model form or request is invalid; ``fields`` maps each bad field to its problem.

    Parameters
    ----------
    fields : dict of str to str
        Form field (``name``, ``file``, ``fields``, ``scribbles`` …) → message.
    """

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {text}" for name, text in fields.items()))
        self.fields = dict(fields)


@dataclass(frozen=True)
class ModelInfo:
    """One model as the models page lists it.

    Attributes
    ----------
    name : str
        What a recipe names: ``{"params": {"model": name}}``.
    source : {"store", "shipped"}
    size : int
        Bytes of the ONNX file.
    created : datetime or None
        When it was written to the store (shipped models: ``None``).
    kind : str
        ``pixel-features`` (a trained pixel classifier, usable by ``trainable``),
        ``image`` (a CNN, for the ``onnx`` segmenter) or ``unknown``.
    provenance : dict
        What made it: ``{"origin": "trained" | "uploaded" | "shipped" | "other", …}``
        plus training figures when known.
    """

    name: str
    source: str
    size: int
    created: datetime | None
    kind: str
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def segmenter(self) -> str:
        """The segmenter a recipe should use with this model."""
        return "trainable" if self.kind == "pixel-features" else "onnx"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "size": self.size,
            "created": self.created.isoformat() if self.created else None,
            "kind": self.kind,
            "segmenter": self.segmenter,
            "provenance": self.provenance,
        }


def provenance_key(name: str) -> str:
    """Store key of a model's provenance file: ``models/<name>.json``."""
    model_key(name)  # ModelError for an unsafe name
    return provenance_file_key(name)


def check_model_name(name: str, field_name: str = "name") -> str:
    """Return ``name`` if it is a safe model name; :class:`ModelFormError` otherwise."""
    if not _NAME.fullmatch(name or ""):
        raise ModelFormError(
            {
                field_name: f"{(name or '')[:60]!r} is not a valid model name: 1-64 letters, "
                "digits, '.', '_' or '-', starting with a letter or digit"
            }
        )
    return name


def _metadata_provenance(meta: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {"origin": "other"}
    training = meta.get("plateseg.training")
    if training:
        with contextlib.suppress(ValueError):
            found["training"] = json.loads(training)
    return found


def _read_provenance(store: Store, name: str) -> dict[str, Any] | None:
    try:
        value = json.loads(store.get_bytes(provenance_key(name)))
    except (ObjectNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _inspect(name: str, data: bytes) -> LoadedModel:
    from plateseg.segmentation.onnx_model import load_session

    return load_session(name, hashlib.sha256(data).hexdigest(), data)


def list_models(store: Store) -> list[ModelInfo]:
    """Models in the store (``models/*.onnx``), then the shipped ones not shadowed by them.

    Returns
    -------
    list of ModelInfo
        Store models sorted by name, then shipped models.
    """
    found: list[ModelInfo] = []
    for info in store.list(MODELS_PREFIX):
        rest = info.key[len(MODELS_PREFIX) :]
        if "/" in rest or not rest.endswith(".onnx") or not _NAME.fullmatch(rest[:-5]):
            continue
        name = rest[:-5]
        provenance = _read_provenance(store, name)
        kind = str((provenance or {}).get("kind", "unknown"))
        if provenance is None:
            provenance = {"origin": "other"}
            if info.size <= _INSPECT_LIMIT:
                try:
                    loaded = _inspect(name, store.get_bytes(info.key))
                except (ModelError, ObjectNotFoundError):
                    provenance = {"origin": "other", "problem": "not a valid plateseg model"}
                else:
                    kind = loaded.kind
                    meta = loaded.session.get_modelmeta().custom_metadata_map
                    provenance = _metadata_provenance(dict(meta))
        found.append(ModelInfo(name, "store", info.size, info.last_modified, kind, provenance))
    names = {m.name for m in found}
    for name in shipped_models():
        if name in names:
            continue
        path = SHIPPED_MODELS / f"{name}.onnx"
        readme = "plateseg/models/README.md"
        found.append(
            ModelInfo(
                name,
                "shipped",
                path.stat().st_size,
                None,
                load_model(name).kind,
                {"origin": "shipped", "documentation": readme},
            )
        )
    return found


def _check_contract(model: LoadedModel) -> None:
    """Inputs/outputs fit the contract of ``model.kind``; one test tile segments."""
    from plateseg.segmentation.features import feature_names
    from plateseg.segmentation.onnx_model import predict_foreground

    session = model.session
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ValueError(f"the model has {len(inputs)} inputs; plateseg feeds exactly one")
    shape, dtype = list(inputs[0].shape), inputs[0].type
    if dtype != "tensor(float)":
        raise ValueError(f"input {inputs[0].name!r} is {dtype}, expected tensor(float)")
    if model.kind == "pixel-features":
        width = len(feature_names(model.sigmas))
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != width):
            raise ValueError(
                f"input {inputs[0].name!r} has shape {shape}; a pixel-features model with "
                f"{len(model.sigmas)} sigmas takes (n, {width}) features"
            )
        if not any(len(o.shape or []) == 2 for o in outputs):
            raise ValueError("no (n, K) probability output")
    elif len(shape) != 4:
        raise ValueError(f"input {inputs[0].name!r} has shape {shape}; expected (1, 1, h, w)")
    tile = np.random.default_rng(0).random((96, 96)).astype(np.float32)
    try:
        if model.kind == "nuclei-3class":  # the path a run takes: scale, 3 classes, seeds
            from plateseg.segmentation.learned import segment_learned

            segment_learned(tile, model, diameter=model.diameter, tile=64)
        probability = predict_foreground(model, tile, tile=64)
    except ModelError:
        raise
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ValueError(f"inference on a 96 x 96 test tile failed: {exc}") from None
    if probability.shape != tile.shape or not np.isfinite(probability).all():
        raise ValueError("inference on a test tile gave no finite probability map")


def validate_model_bytes(name: str, data: bytes) -> LoadedModel:
    """Check an uploaded model: size, loads in onnxruntime, the plateseg model contract.

    Raises
    ------
    ModelFormError
        ``{"name": …}`` or ``{"file": …}`` naming the problem.
    """
    check_model_name(name)
    if not data:
        raise ModelFormError({"file": "the file is empty"})
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFormError(
            {"file": f"{len(data):,} bytes is larger than the {MAX_MODEL_BYTES:,} byte limit"}
        )
    try:
        model = _inspect(name, data)
        _check_contract(model)
    except ModelError as exc:
        text = str(exc).removeprefix(f"model {name!r}").lstrip(": ")
        raise ModelFormError({"file": text or "not a valid plateseg model"}) from None
    except ValueError as exc:
        raise ModelFormError({"file": str(exc)}) from None
    return model


def store_model(
    store: Store, name: str, data: bytes, provenance: dict[str, Any], *, replace: bool
) -> ModelInfo:
    """Write ``models/<name>.onnx`` and its provenance file; return what the list shows.

    Parameters
    ----------
    store : Store
    name : str
        A checked model name.
    data : bytes
        A checked ONNX model.
    provenance : dict
        JSON-serialisable facts; ``kind`` and ``created`` are added.
    replace : bool
        Overwrite a model of the same name; otherwise that is a ``name`` error.
    """
    key = model_key(name)
    if not replace and store.exists(key):
        raise ModelFormError(
            {"name": f"a model named {name!r} already exists: choose another name or replace it"}
        )
    model = _inspect(name, data)
    created = datetime.now(UTC)
    record = {
        **provenance,
        "kind": model.kind,
        "created": created.isoformat(timespec="seconds"),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    store.put_bytes(key, data, "application/octet-stream")
    store.put_bytes(provenance_key(name), json.dumps(record, indent=1).encode(), "application/json")
    return ModelInfo(name, "store", len(data), created, model.kind, record)


def delete_model(store: Store, name: str) -> None:
    """Delete ``models/<name>.onnx`` and its provenance file from the store.

    Raises
    ------
    ModelFormError
        Invalid name, or a shipped model (it cannot be deleted).
    NotFoundError
        No such model in the store.
    """
    check_model_name(name)
    key = model_key(name)
    if not store.exists(key):
        if name in shipped_models():
            raise ModelFormError({"name": f"{name!r} is shipped with plateseg: it stays"})
        raise NotFoundError(f"no model {name!r} in the store ({store.uri(key)})")
    for target in (key, provenance_key(name)):
        # delete_prefix removes every key starting with the prefix: refuse if others do
        others = [info.key for info in store.list(target) if info.key != target]
        if others:
            raise ModelFormError(
                {"name": f"cannot delete {target!r} alone: {others[0]!r} shares its prefix"}
            )
        store.delete_prefix(target)
