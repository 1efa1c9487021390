"""The ONNX graph as a PyTorch module computes what onnxruntime computes, and exports back."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from plateseg.errors import ModelError
from plateseg.finetune.network import export_onnx, load_network
from plateseg.segmentation.onnx_model import load_model_bytes
from tests.segmentation.conftest import identity_image_model


@pytest.fixture(scope="module")
def tile() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(1, 1, 64, 80)).astype(np.float32)


def _run(data: bytes, tile: np.ndarray) -> np.ndarray:
    return np.asarray(ort.InferenceSession(data).run(None, {"image": tile})[0])


def test_the_module_matches_onnxruntime(base_model: bytes, tile: np.ndarray) -> None:
    network = load_network(base_model)
    with torch.no_grad():
        out = network(torch.from_numpy(tile)).numpy()
    np.testing.assert_allclose(out, _run(base_model, tile), atol=1e-5)


def test_only_the_decoder_trains(base_model: bytes) -> None:
    network = load_network(base_model)
    decoder = network.trainable()
    frozen = [p for p in network.module.parameters() if not p.requires_grad]
    assert decoder and frozen
    assert all(p.requires_grad for p in decoder)
    assert sum(p.numel() for p in decoder) < sum(p.numel() for p in network.module.parameters())


def test_export_round_trips_values_and_metadata(base_model: bytes, tile: np.ndarray) -> None:
    network = load_network(base_model)
    data = export_onnx(network, {**network.metadata, "plateseg.training": "{}"})
    np.testing.assert_allclose(_run(data, tile), _run(base_model, tile), atol=1e-6)
    model = load_model_bytes("copy", data)
    assert (model.kind, model.diameter) == ("nuclei-3class", 14.0)
    meta = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    assert meta["plateseg.training"] == "{}"


def test_a_model_of_another_kind_is_refused() -> None:
    with pytest.raises(ModelError, match="only nuclei-3class models can be fine-tuned"):
        load_network(identity_image_model())


def test_bytes_that_are_not_onnx_are_refused() -> None:
    with pytest.raises(ModelError, match="not an ONNX model"):
        load_network(b"not a model")


def test_an_unsupported_operator_is_named() -> None:
    proto = onnx.load_from_string(identity_image_model())
    proto.metadata_props[0].value = "nuclei-3class"  # pretend; its graph has Clip
    with pytest.raises(ModelError, match="'Clip'"):
        load_network(proto.SerializeToString())
