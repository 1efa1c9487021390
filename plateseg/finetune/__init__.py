"""Fine-tune the learned nuclei base model from a scientist's corrections.

:func:`fine_tune` takes a ``nuclei-3class`` ONNX model (the shipped ``nuclei-unet`` or
an earlier fine-tune) and a few fields with sparse labels
(:mod:`plateseg.finetune.labels`), trains its decoder with PyTorch on CPU and returns
the new ONNX model with its card. PyTorch is needed here only (the dev install has it;
``tools/requirements-train.txt``); segmenting with the result needs onnxruntime alone.
"""

from plateseg.finetune.trainer import FineTuned, FineTuneSettings, LabelledField, fine_tune

__all__ = ["FineTuneSettings", "FineTuned", "LabelledField", "fine_tune"]
