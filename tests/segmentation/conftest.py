"""Small models for the model-based segmenters: trained in seconds on small crops."""

from __future__ import annotations

import numpy as np
import pytest

from plateseg.demo import FieldTruth, render_field
from plateseg.segmentation.trainable import scribbles_from_mask, train_pixel_classifier


@pytest.fixture(scope="session")
def small_field() -> FieldTruth:
    """A 192x192 demo field with ~10 nuclei (seed 11)."""
    return render_field(np.random.default_rng(11), 10, 192)


@pytest.fixture(scope="session")
def tiny_forest(small_field: FieldTruth) -> bytes:
    """A 4-tree forest trained on one 192x192 field's true mask and one empty field."""
    empty = render_field(np.random.default_rng(21), 0, 192)
    return train_pixel_classifier(
        [small_field.w1, empty.w1],
        [scribbles_from_mask(small_field.labels), scribbles_from_mask(empty.labels)],
        trees=4,
        max_depth=6,
        samples_per_class=3000,
        name="tiny",
    )


def identity_image_model(kind: str = "image", multiple: int = 1) -> bytes:
    """An ``image``-kind model whose nucleus probability is its (clipped) input.

    Input ``(1, 1, h, w)`` float32, output ``(1, 2, h, w)`` = ``[1 - p, p]`` with
    ``p = clip(x, 0, 1)``: a stand-in CNN with a known answer.
    """
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Clip", ["x", "zero", "one"], ["p"]),
        helper.make_node("Sub", ["one", "p"], ["q"]),
        helper.make_node("Concat", ["q", "p"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, None, None])],
        initializer=[
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in {"plateseg.kind": kind, "plateseg.multiple": str(multiple)}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="session")
def image_model() -> bytes:
    return identity_image_model()


def pooled_ap(pairs: list[tuple[np.ndarray, np.ndarray]], iou: float = 0.5) -> float:
    """AP at ``iou`` = TP / (TP + FP + FN), pooled over ``(truth, prediction)`` pairs."""
    from plateseg.segmentation.evaluate import match_objects

    tp = fp = fn = 0
    for truth, pred in pairs:
        a, b, c = match_objects(truth, pred, iou)
        tp, fp, fn = tp + a, fp + b, fn + c
    return tp / max(tp + fp + fn, 1)


def upscale(array: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscale, as a higher magnification would sample the scene."""
    return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)
