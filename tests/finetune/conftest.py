"""Fields for fine-tuning tests: the committed BBBC039 images with cytoplasmic bleed-through
(``tools/nuclei_data.bleed_through_image``, the benchmark's domain shift)."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from plateseg.segmentation.onnx_model import read_model_bytes


@pytest.fixture(scope="session")
def shifted(
    bbbc039: list[tuple[np.ndarray, np.ndarray]], nuclei_data: ModuleType
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(image, truth)`` of the three BBBC039 images with bleed-through added."""
    return [
        (
            nuclei_data.bleed_through_image(image, labels, nuclei_data.median_diameter(labels)),
            labels,
        )
        for image, labels in bbbc039
    ]


@pytest.fixture(scope="session")
def base_model() -> bytes:
    return read_model_bytes("nuclei-unet", None)
