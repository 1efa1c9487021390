"""Pixel features and the down/upsampling the models use."""

from __future__ import annotations

import numpy as np

from plateseg.segmentation.features import DEFAULT_SIGMAS, feature_names, normalise, pixel_features
from plateseg.segmentation.filters import downsample, upsample


def test_features_have_the_documented_order_and_values() -> None:
    image = np.zeros((64, 64), np.float32)
    image[20:40, 20:40] = 1.0
    features = pixel_features(image, (1.0, 2.0))
    assert features.shape == (8, 64, 64) and features.dtype == np.float32
    assert feature_names((1.0, 2.0))[:4] == [
        "intensity_s1",
        "edges_s1",
        "texture_high_s1",
        "texture_low_s1",
    ]
    assert features[0, 30, 30] > 0.99 and features[0, 2, 2] < 0.01  # smoothed intensity
    assert features[1, 20, 30] > features[1, 30, 30]  # gradient peaks at the edge
    yy, xx = np.mgrid[:64, :64]
    blob = pixel_features(
        np.exp(-((yy - 32.0) ** 2 + (xx - 32.0) ** 2) / 32).astype(np.float32), (1.0,)
    )
    assert blob[3, 32, 32] <= blob[2, 32, 32] < 0  # a bright blob curves down both ways
    assert len(feature_names(DEFAULT_SIGMAS)) == 4 * len(DEFAULT_SIGMAS)


def test_normalise_keeps_an_empty_field_dark() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(1000, 10, (128, 128)).astype(np.uint16)
    assert float(normalise(noise).max()) < 0.5
    stained = noise.copy()
    stained[40:60, 40:60] = 20000
    assert float(np.median(normalise(stained)[45:55, 45:55])) > 0.9


def test_down_and_up_sampling_round_trip() -> None:
    ramp = np.add.outer(np.arange(64), np.arange(48)).astype(np.float32)
    small = downsample(ramp, 2)
    np.testing.assert_allclose(small[0, 0], ramp[:2, :2].mean())
    back = upsample(small, 2, (65, 48))
    assert back.shape == (65, 48)
    np.testing.assert_allclose(back[2:-3, 2:-2], ramp[2:-2, 2:-2], atol=1e-4)
