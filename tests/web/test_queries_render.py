"""Plate formats and the images drawn for the browser.

Z' and layout parsing are no longer the web's own: the heatmap shows the Z' stored in
``plate_qc`` and layouts are parsed by :mod:`plateseg.plate.layout` (see ``test_runs_results``
and ``test_experiments``).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from plateseg.web.render import (
    OUTLINE_RGB,
    display_scale,
    object_tips,
    overlay_png,
    thumbnail_png,
)
from plateseg.web.routers.experiments import plate_format


@pytest.mark.parametrize(
    ("wells", "shape"),
    [
        ({"A01", "H12"}, (8, 12)),
        ({"A01", "P24"}, (16, 24)),
        ({"B13"}, (16, 24)),
        ({"AF48"}, (32, 48)),
    ],
)
def test_plate_format_is_the_smallest_standard_plate(
    wells: set[str], shape: tuple[int, int]
) -> None:
    assert plate_format(wells) == shape


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_overlay_draws_outlines_in_yellow_and_downsamples() -> None:
    image = np.zeros((300, 200), np.uint16)
    labels = np.zeros((300, 200), np.uint16)
    labels[50:80, 50:90] = 1
    image[labels > 0] = 1000
    rgb = _decode(overlay_png(image, labels, max_side=150))
    assert rgb.shape == (150, 100, 3)
    yellow = np.all(rgb == OUTLINE_RGB, axis=2)
    assert yellow[25:40, 25:45].any() and not yellow[:20].any()
    with pytest.raises(ValueError, match="differ in shape"):
        overlay_png(image, labels[:10])


def test_thumbnail_and_contrast_stretch() -> None:
    ramp = np.arange(512 * 512, dtype=np.float32).reshape(512, 512)
    assert _decode(thumbnail_png(ramp)).shape == (256, 256)
    scaled = display_scale(ramp)
    assert scaled.dtype == np.uint8 and scaled.min() == 0 and scaled.max() == 255
    assert display_scale(np.full((4, 4), 7.0)).max() == 0  # flat image: no division by zero


def test_object_tips_give_box_centroid_area_and_intensity() -> None:
    labels = np.zeros((20, 20), np.uint16)
    labels[2:6, 3:7] = 1
    labels[10:12, 10:15] = 2
    image = np.where(labels == 2, 50.0, 10.0)
    tips = object_tips(labels, image)
    assert [t["label"] for t in tips] == [1, 2]
    assert tips[0]["bbox"] == [2, 3, 6, 7] and tips[0]["area"] == 16
    assert tips[0]["centroid"] == [3.5, 4.5]
    assert tips[1]["mean_intensity"] == 50.0
    assert object_tips(np.zeros((5, 5), np.uint16)) == []
