"""Fields for fine-tuning tests: the committed BBBC039 images with cytoplasmic bleed-through
(``tools/nuclei_data.bleed_through_image``, the benchmark's domain shift)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from plateseg.segmentation.onnx_model import read_model_bytes

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "nuclei_data.py"


def _nuclei_data() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nuclei_data", TOOLS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shifted(bbbc039: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(image, truth)`` of the three BBBC039 images with bleed-through added."""
    data = _nuclei_data()
    return [
        (data.bleed_through_image(image, labels, data.median_diameter(labels)), labels)
        for image, labels in bbbc039
    ]


@pytest.fixture(scope="session")
def base_model() -> bytes:
    return read_model_bytes("nuclei-unet", None)
