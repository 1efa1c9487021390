"""QC metrics and flags: saturated, blurry, empty."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from plateseg.contracts import Recipe
from plateseg.demo import FieldTruth
from plateseg.segmentation import segment_field
from plateseg.segmentation.quality import edge_sharpness, image_quality, percent_maximal


def test_percent_maximal_per_dtype() -> None:
    image = np.zeros((10, 10), np.uint8)
    image[0, :5] = 255
    assert percent_maximal(image) == 5.0
    assert percent_maximal(np.full((4, 4), 1.0, np.float32)) == 100.0


def test_sharp_field_is_not_blurry_and_a_blurred_one_is(small_field: FieldTruth) -> None:
    sharp = segment_field({"w1": small_field.w1}, Recipe())
    assert sharp.metrics["QC_Blurry"] == 0.0
    assert sharp.metrics["ImageQuality_EdgeSharpness_w1"] > 0.2
    blurred = ndi.gaussian_filter(small_field.w1.astype(np.float32), 5).astype(np.uint16)
    assert edge_sharpness(blurred, small_field.labels) < 0.15
    metrics = image_quality({"w1": blurred}, small_field.labels, "w1")
    assert metrics["QC_Blurry"] == 1.0


def test_saturated_and_empty_flags(small_field: FieldTruth) -> None:
    saturated = small_field.w1.copy()
    saturated[:40] = 65535
    metrics = segment_field({"w1": saturated, "w2": small_field.w2}, Recipe()).metrics
    assert metrics["QC_Saturated"] == 1.0
    assert metrics["ImageQuality_PercentMaximal_w2"] == 0.0
    empty = segment_field({"w1": np.full((64, 64), 900, np.uint16)}, Recipe()).metrics
    assert empty["QC_Empty"] == 1.0
    assert empty["QC_Blurry"] is None and empty["ImageQuality_EdgeSharpness_w1"] is None
    assert empty["Image_Intensity_MeanIntensity_w1"] == 900 / 65535
