"""Outline overlays and thumbnails."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from plateseg.segmentation.outputs import (
    OUTLINE_RGB,
    display_image,
    outlines,
    overlay_png,
    thumbnail_png,
)


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture)


def test_outlines_are_the_inner_boundary() -> None:
    labels = np.zeros((10, 10), np.uint16)
    labels[2:7, 2:7] = 1
    edge = outlines(labels)
    assert edge[2, 2:7].all() and edge[6, 2:7].all() and edge[2:7, 2].all()
    assert not edge[3:6, 3:6].any() and not edge[0].any()


def test_overlay_draws_outlines_and_downscales() -> None:
    image = np.zeros((2500, 700), np.uint16)
    labels = np.zeros(image.shape, np.uint16)
    image[100:200, 100:200] = 3000
    labels[100:200, 100:200] = 1
    rgb = decode(overlay_png(image, labels))
    assert rgb.shape == (834, 234, 3)  # factor 3 fits 2500 into 1024
    assert (rgb.reshape(-1, 3) == OUTLINE_RGB).all(axis=1).sum() > 100
    assert tuple(rgb[50, 50]) == (255, 255, 255) and tuple(rgb[300, 200]) == (0, 0, 0)


def test_thumbnail_is_a_colour_composite() -> None:
    nuclei = np.zeros((512, 512), np.uint16)
    nuclei[:, :256] = 5000
    cells = np.zeros((512, 512), np.uint16)
    cells[:256] = 5000
    rgb = decode(thumbnail_png(nuclei, cells))
    assert rgb.shape == (256, 256, 3)
    assert rgb[10, 10, 2] == 255 and rgb[10, 10, 1] == 255 and rgb[10, 10, 0] == 0
    assert rgb[200, 200, 2] == 0 and rgb[200, 200, 1] == 0
    assert display_image(np.full((8, 8), 7.0)).max() == 0
