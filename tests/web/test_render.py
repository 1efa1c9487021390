"""Outline overlays and the contrast stretch the web draws from labels and source images."""

from __future__ import annotations

import doctest
import io

import numpy as np
import pytest
from PIL import Image

from plateseg.errors import InputError
from plateseg.web import render
from plateseg.web.render import OUTLINE_RGB, check_percentiles, display_image, outlines, overlay_png


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


def test_an_outline_thinner_than_the_downscale_survives() -> None:
    labels = np.zeros((3000, 3000), np.uint16)
    labels[1000:1003, 1000:1003] = 7  # 3 px: one pixel after dividing by 3
    rgb = decode(overlay_png(np.ones(labels.shape, np.uint16), labels))
    assert rgb.shape == (1000, 1000, 3)
    assert tuple(rgb[333, 333]) == OUTLINE_RGB


def _float_stretch(image: np.ndarray) -> np.ndarray:
    """The stretch by float arithmetic and numpy's percentiles, the reference."""
    data = np.asarray(image, np.float32)
    step = max(1, int(np.sqrt(data.size / 250_000)))
    low, high = np.percentile(data[::step, ::step], (0.5, 99.8))
    span = float(high - low) or 1.0
    return np.clip((data - np.float32(low)) * np.float32(255.0 / span), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (512, 512), (1100, 900)])
@pytest.mark.parametrize(("dtype", "top"), [(np.uint16, 65535), (np.uint16, 4095), (np.uint8, 255)])
def test_integer_images_stretch_exactly_as_the_float_reference(
    shape: tuple[int, int], dtype: type, top: int
) -> None:
    rng = np.random.default_rng(3)
    image = rng.gamma(2.0, top / 20, size=shape).clip(0, top).astype(dtype)
    image[: shape[0] // 3] = top // 7  # a tie across many pixels
    assert np.array_equal(display_image(image), _float_stretch(image))


def test_stretch_of_flat_and_float_images() -> None:
    assert display_image(np.full((8, 8), 7.0)).max() == 0
    assert display_image(np.full((8, 8), 7, np.uint16)).max() == 0
    ramp = np.linspace(0, 1, 10_000, dtype=np.float32).reshape(100, 100)
    scaled = display_image(ramp)
    assert scaled.min() == 0 and scaled.max() == 255
    assert np.array_equal(scaled, _float_stretch(ramp))


def test_docstring_examples_hold() -> None:
    result = doctest.testmod(render)
    assert result.attempted > 0 and result.failed == 0


def test_a_display_range_is_checked_and_changes_the_stretch() -> None:
    assert check_percentiles(0, 100) == (0.0, 100.0)
    assert check_percentiles(2.345678, 97.5) == (2.35, 97.5)
    for low, high in [(-0.1, 50), (0, 100.5), (float("nan"), 50), (50, 50.05), (60, 40)]:
        with pytest.raises(InputError, match="contrast: the"):
            check_percentiles(low, high)
    ramp = np.arange(10_000, dtype=np.uint16).reshape(100, 100)
    default, bright = display_image(ramp), display_image(ramp, (0.0, 50.0))
    assert bright[50, 0] == 255 and default[50, 0] < 200
    assert (bright >= default).all()
