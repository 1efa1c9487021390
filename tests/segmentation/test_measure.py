"""Measurements on hand-made label images with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk, ellipse
from skimage.measure import regionprops_table

from plateseg.segmentation.measure import (
    SHAPE_COLUMNS,
    image_metrics,
    intensity_columns,
    measure_objects,
)


@pytest.fixture
def scene() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A disk (label 1), a rotated ellipse (2) and a C-shape (3) on 120x160, plus two channels."""
    labels = np.zeros((120, 160), np.uint16)
    labels[disk((30, 40), 15)] = 1
    labels[ellipse(80, 100, 12, 30, rotation=0.6)] = 2
    labels[20:60, 110:150] = 3
    labels[30:50, 125:150] = 0
    uint16 = np.zeros(labels.shape, np.uint16)
    uint16[labels == 1] = 65535  # intensity 1.0 after scaling
    uint16[labels == 2] = np.linspace(0, 65535, int((labels == 2).sum())).astype(np.uint16)
    uint16[labels == 3] = 6553
    floats = np.random.default_rng(0).random(labels.shape).astype(np.float32)
    return labels, {"DAPI": uint16, "GFP": floats}


def test_column_names_follow_cellprofiler(scene: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    labels, images = scene
    columns = measure_objects(labels, images)
    assert list(columns) == [*SHAPE_COLUMNS, *intensity_columns("DAPI"), *intensity_columns("GFP")]
    assert intensity_columns("DAPI")[2] == "Intensity_IntegratedIntensity_DAPI"
    assert all(len(values) == 3 for values in columns.values())
    assert columns["ObjectNumber"].tolist() == [1, 2, 3]


def test_disk_of_known_area(scene: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    labels, images = scene
    columns = measure_objects(labels, images)
    area = float((labels == 1).sum())
    assert columns["AreaShape_Area"][0] == area
    assert columns["AreaShape_EquivalentDiameter"][0] == pytest.approx(2 * np.sqrt(area / np.pi))
    assert columns["AreaShape_Perimeter"][0] == pytest.approx(2 * np.pi * 15, rel=0.05)
    assert columns["AreaShape_FormFactor"][0] == pytest.approx(1.0, abs=0.1)
    assert columns["AreaShape_Eccentricity"][0] == pytest.approx(0.0, abs=0.05)
    assert columns["AreaShape_Solidity"][0] == pytest.approx(1.0, abs=0.03)
    assert (columns["Location_Center_X"][0], columns["Location_Center_Y"][0]) == (40.0, 30.0)
    assert columns["Intensity_MeanIntensity_DAPI"][0] == 1.0
    assert columns["Intensity_IntegratedIntensity_DAPI"][0] == area
    assert columns["Intensity_StdIntensity_DAPI"][0] == 0.0


def test_shape_agrees_with_scikit_image(scene: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    labels, images = scene
    ours = measure_objects(labels, images)
    theirs = regionprops_table(
        labels,
        intensity_image=images["GFP"],
        properties=(
            "area",
            "perimeter",
            "eccentricity",
            "solidity",
            "axis_major_length",
            "axis_minor_length",
            "orientation",
            "centroid",
            "intensity_mean",
            "intensity_max",
            "intensity_min",
            "intensity_std",
        ),
    )
    close = {"rtol": 1e-6, "atol": 1e-9}
    np.testing.assert_allclose(ours["AreaShape_Area"], theirs["area"], **close)
    np.testing.assert_allclose(ours["AreaShape_Perimeter"], theirs["perimeter"], **close)
    np.testing.assert_allclose(ours["AreaShape_Eccentricity"], theirs["eccentricity"], **close)
    np.testing.assert_allclose(
        ours["AreaShape_MajorAxisLength"], theirs["axis_major_length"], **close
    )
    np.testing.assert_allclose(
        ours["AreaShape_MinorAxisLength"], theirs["axis_minor_length"], **close
    )
    np.testing.assert_allclose(
        ours["AreaShape_Orientation"], np.degrees(theirs["orientation"]), atol=1e-6
    )
    np.testing.assert_allclose(ours["Location_Center_Y"], theirs["centroid-0"], **close)
    np.testing.assert_allclose(
        ours["Intensity_MeanIntensity_GFP"], theirs["intensity_mean"], rtol=1e-5
    )
    np.testing.assert_allclose(
        ours["Intensity_MaxIntensity_GFP"], theirs["intensity_max"], rtol=1e-6
    )
    np.testing.assert_allclose(
        ours["Intensity_MinIntensity_GFP"], theirs["intensity_min"], rtol=1e-6
    )
    np.testing.assert_allclose(
        ours["Intensity_StdIntensity_GFP"], theirs["intensity_std"], rtol=1e-4
    )
    # solidity: convex hull from 64 support lines vs scikit-image's pixel hull
    np.testing.assert_allclose(ours["AreaShape_Solidity"], theirs["solidity"], atol=0.03)
    assert ours["AreaShape_Solidity"][2] < 0.8  # the C-shape is far from convex


def test_median_of_an_even_and_odd_count() -> None:
    labels = np.array([[1, 1, 1, 1, 2, 2, 2]], np.uint8)
    image = np.array([[10, 40, 20, 30, 5, 9, 7]], np.uint8)
    columns = measure_objects(labels, {"c": image})
    np.testing.assert_allclose(columns["Intensity_MedianIntensity_c"], [25 / 255, 7 / 255])
    np.testing.assert_allclose(columns["Intensity_MinIntensity_c"], [10 / 255, 5 / 255])


def test_no_objects_gives_empty_columns_and_none_metrics() -> None:
    labels = np.zeros((10, 10), np.uint16)
    columns = measure_objects(labels, {"w1": np.ones((10, 10), np.uint16)})
    assert all(len(values) == 0 for values in columns.values())
    metrics = image_metrics(columns, ["w1"], threshold=0.5, foreground_fraction=0.0)
    assert metrics["Count_Nuclei"] == 0.0
    assert metrics["Mean_Nuclei_AreaShape_Area"] is None
    assert metrics["Mean_Nuclei_Intensity_MeanIntensity_w1"] is None
    assert metrics["Threshold_FinalThreshold_Nuclei"] == 0.5


def test_image_metrics_summarise_objects(scene: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    labels, images = scene
    columns = measure_objects(labels, images)
    metrics = image_metrics(columns, ["DAPI", "GFP"], threshold=0.1, foreground_fraction=0.2)
    areas = columns["AreaShape_Area"]
    assert metrics["Count_Nuclei"] == 3.0
    assert metrics["Mean_Nuclei_AreaShape_Area"] == pytest.approx(areas.mean())
    assert metrics["Median_Nuclei_AreaShape_Area"] == pytest.approx(np.median(areas))
    assert metrics["Mean_Nuclei_Intensity_MeanIntensity_DAPI"] == pytest.approx(
        columns["Intensity_MeanIntensity_DAPI"].mean()
    )
    assert metrics["Image_ForegroundFraction"] == 0.2


def test_channel_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="channel 'w2' has shape"):
        measure_objects(np.ones((4, 4), np.uint8), {"w2": np.ones((4, 5), np.uint8)})
