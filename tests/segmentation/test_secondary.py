"""Secondary objects: cells grown from nuclei in the cytoplasm channel."""

from __future__ import annotations

import numpy as np
import pytest

from plateseg.contracts import Recipe
from plateseg.demo import FieldTruth
from plateseg.errors import RecipeError
from plateseg.segmentation import segment_field, validate_recipe
from plateseg.segmentation.secondary import SecondaryParams, segment_cells


def test_each_nucleus_grows_one_cell_that_contains_it(small_field: FieldTruth) -> None:
    recipe = validate_recipe(Recipe(secondary={"max_distance": 30}))
    result = segment_field({"w1": small_field.w1, "w2": small_field.w2}, recipe)
    assert result.cells is not None and result.cells.shape == result.labels.shape
    nuclei = result.labels > 0
    np.testing.assert_array_equal(result.cells[nuclei], result.labels[nuclei])
    areas = result.objects["Cells_AreaShape_Area"]
    assert len(areas) == result.object_count
    assert (areas >= result.objects["AreaShape_Area"]).all()
    assert areas.mean() > 1.5 * result.objects["AreaShape_Area"].mean()
    assert result.metrics["Count_Cells"] == result.object_count
    assert "Cells_Intensity_MeanIntensity_w2" in result.objects
    assert result.metrics["Mean_Cells_Intensity_MeanIntensity_w2"] is not None


def test_cells_stay_within_max_distance(small_field: FieldTruth) -> None:
    from scipy import ndimage as ndi

    cells, threshold = segment_cells(
        small_field.w2, small_field.labels, SecondaryParams(max_distance=3)
    )
    distance = ndi.distance_transform_edt(small_field.labels == 0)
    assert distance[cells > 0].max() <= 3
    assert 0 < threshold < 1


def test_no_nuclei_no_cells_and_bad_secondary_params() -> None:
    cells, _ = segment_cells(
        np.zeros((32, 32), np.uint16), np.zeros((32, 32), np.uint16), SecondaryParams()
    )
    assert not cells.any()
    with pytest.raises(RecipeError, match="recipe.secondary.max_distance"):
        validate_recipe(Recipe(secondary={"max_distance": -1}))
    with pytest.raises(RecipeError, match="needs a 'cells' channel role"):
        validate_recipe(Recipe(secondary={}, channels={"nuclei": "w1"}))
    plain = segment_field({"w1": np.zeros((32, 32), np.uint16)}, Recipe())
    assert plain.cells is None
