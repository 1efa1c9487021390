"""A ``nuclei-3class`` ONNX network as a trainable PyTorch module, and back to ONNX.

The shipped ``nuclei-unet`` (and every model fine-tuned from it) is exported with its
batch normalisation folded into the convolutions, so its ONNX graph is a plain chain of
``Conv``, ``Relu``, ``MaxPool``, ``ConvTranspose``, ``Concat`` and ``Softmax`` nodes.
:class:`GraphNetwork` runs exactly that graph in PyTorch, node by node, with every
convolution's weights as a trainable parameter; :func:`export_onnx` writes it back with
the same inputs, outputs, dynamic axes and metadata keys. No batch normalisation is
left to re-estimate, which is what fine-tuning on a few fields needs (statistics of a
batch of 8 crops from 3 fields are not the statistics of a lab's images).

The *decoder* is every node from the first ``ConvTranspose`` on (the upsampling path
and the head); :meth:`GraphNetwork.trainable` returns its parameters. The encoder runs
without gradients.

PyTorch is imported here and nowhere in the segmentation path: the Segment Lambda runs
the exported ONNX with onnxruntime only.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from plateseg.errors import ModelError

__all__ = [
    "SUPPORTED_OPS",
    "GraphNetwork",
    "export_onnx",
    "load_network",
    "module_to_onnx",
    "require_torch",
]

#: The ONNX operators a fine-tunable network may use.
SUPPORTED_OPS = frozenset({"Conv", "Relu", "MaxPool", "ConvTranspose", "Concat", "Softmax"})


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def require_torch() -> Any:
    """The ``torch`` module; :class:`ModelError` with the install command without it."""
    try:
        import torch
    except ImportError:  # pragma: no cover - the dev install has it; see the README
        raise ModelError(
            "fine-tuning needs PyTorch (CPU build): pip install -r tools/requirements-train.txt"
        ) from None
    return torch


class GraphNetwork:
    """A chain-of-layers ONNX graph as a PyTorch module (built by :func:`load_network`).

    Attributes
    ----------
    module : torch.nn.Module
        Holds the parameters (``module.weights[name]``), for optimisers and ``state_dict``.
    metadata : dict of str to str
        The ONNX model's ``metadata_props`` (``plateseg.kind``, ``plateseg.diameter`` …).
    """

    def __init__(self, graph: Any, metadata: dict[str, str]) -> None:
        import onnx.numpy_helper

        torch = require_torch()
        self.metadata = dict(metadata)
        self.input_name = graph.input[0].name
        self.output_name = graph.output[0].name
        initialisers = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes: list[tuple[str, list[str], str, dict[str, Any]]] = []
        weights: dict[str, Any] = {}
        decoder = False
        self._decoder_names: list[str] = []
        for index, node in enumerate(graph.node):
            if node.op_type not in SUPPORTED_OPS or len(node.output) != 1:
                raise ModelError(
                    f"cannot fine-tune this model: ONNX operator {node.op_type!r} "
                    f"(supported: {', '.join(sorted(SUPPORTED_OPS))})"
                )
            decoder = decoder or node.op_type == "ConvTranspose"
            inputs = list(node.input)
            for position, name in enumerate(inputs):
                if name in initialisers:
                    key = f"p{index}_{position}"
                    array = np.array(initialisers[name], np.float32)
                    weights[key] = torch.nn.Parameter(torch.from_numpy(array))
                    inputs[position] = "@" + key
                    if decoder:
                        self._decoder_names.append(key)
            self.nodes.append((node.op_type, inputs, node.output[0], _attributes(node)))
        if not self._decoder_names:
            raise ModelError("cannot fine-tune this model: it has no ConvTranspose (decoder)")
        self.module = torch.nn.Module()
        self.module.weights = torch.nn.ParameterDict(weights)
        self.module.forward = self.forward  # so that the exporter can call the module

    def trainable(self) -> list[Any]:
        """The decoder's parameters (the encoder's are frozen)."""
        for key, parameter in self.module.weights.items():
            parameter.requires_grad_(key in self._decoder_names)
        return [self.module.weights[key] for key in self._decoder_names]

    def logits(self, x: Any) -> Any:
        """Pre-softmax class scores ``(n, K, h, w)`` of normalised images ``(n, 1, h, w)``."""
        return self._run(x, softmax=False)

    def forward(self, x: Any) -> Any:
        return self._run(x, softmax=True)

    __call__ = forward

    def _run(self, x: Any, softmax: bool) -> Any:
        torch = require_torch()
        f = torch.nn.functional
        values: dict[str, Any] = {self.input_name: x}
        last = x
        for op, inputs, output, attrs in self.nodes:
            args = [
                self.module.weights[name[1:]] if name.startswith("@") else values[name]
                for name in inputs
                if name
            ]
            if op == "Conv":
                last = f.conv2d(
                    args[0],
                    args[1],
                    args[2] if len(args) > 2 else None,
                    stride=tuple(attrs.get("strides", (1, 1))),
                    padding=tuple(attrs.get("pads", (0, 0, 0, 0))[:2]),
                    dilation=tuple(attrs.get("dilations", (1, 1))),
                    groups=int(attrs.get("group", 1)),
                )
            elif op == "ConvTranspose":
                last = f.conv_transpose2d(
                    args[0],
                    args[1],
                    args[2] if len(args) > 2 else None,
                    stride=tuple(attrs.get("strides", (1, 1))),
                    padding=tuple(attrs.get("pads", (0, 0, 0, 0))[:2]),
                )
            elif op == "Relu":
                last = torch.relu(args[0])
            elif op == "MaxPool":
                last = f.max_pool2d(
                    args[0],
                    tuple(attrs["kernel_shape"]),
                    stride=tuple(attrs.get("strides", attrs["kernel_shape"])),
                )
            elif op == "Concat":
                last = torch.cat(args, int(attrs.get("axis", 1)))
            elif op == "Softmax":
                last = torch.softmax(args[0], int(attrs.get("axis", 1))) if softmax else args[0]
            values[output] = last
        return last


def load_network(data: bytes, name: str = "this model") -> GraphNetwork:
    """Build a :class:`GraphNetwork` from a ``nuclei-3class`` ONNX model's bytes
    (``name`` is what error messages call it).

    Raises
    ------
    ModelError
        Not an ONNX model, not of kind ``nuclei-3class``, or an operator outside
        :data:`SUPPORTED_OPS`.
    """
    import onnx

    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # onnx raises DecodeError and others from protobuf
        raise ModelError(f"{name}: not an ONNX model: {exc}") from None
    metadata = {p.key: p.value for p in proto.metadata_props}
    if metadata.get("plateseg.kind") != "nuclei-3class":
        raise ModelError(
            f"{name}: only nuclei-3class models can be fine-tuned, this one is "
            f"{metadata.get('plateseg.kind', 'of no plateseg kind')!r}"
        )
    return GraphNetwork(proto.graph, metadata)


def export_onnx(network: GraphNetwork, metadata: dict[str, str]) -> bytes:
    """The network as ONNX bytes (see :func:`module_to_onnx`)."""
    return module_to_onnx(network.module, metadata)


def module_to_onnx(module: Any, metadata: dict[str, str]) -> bytes:
    """A PyTorch module mapping ``(n, 1, h, w)`` images to ``(n, K, h, w)`` class
    probabilities as ONNX bytes (opset 17, dynamic height and width, input ``image``,
    output ``probabilities``), with ``metadata`` as its ``metadata_props``: the form of
    every plateseg ``nuclei-3class`` model (the training script exports with it too)."""
    import onnx

    torch = require_torch()
    wrapper = module.eval()
    buffer = io.BytesIO()
    # the TorchScript exporter (deprecated in favour of torch.export, which needs the
    # onnxscript package) writes the same plain Conv/Relu/... chain the base model has
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (torch.zeros(1, 1, 64, 64),),
            buffer,
            input_names=["image"],
            output_names=["probabilities"],
            dynamic_axes={
                "image": {2: "height", 3: "width"},
                "probabilities": {2: "height", 3: "width"},
            },
            opset_version=17,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return bytes(proto.SerializeToString())
