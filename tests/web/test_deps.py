"""Path parameters: what an image id may and may not be."""

from __future__ import annotations

import pytest

from plateseg.errors import InputError
from plateseg.web.deps import _image_id


@pytest.mark.parametrize(
    "image_id", ["P1_A01_1", "Platte Ü 1_A01_2", "プレート_B02_1", "p-1.x_C3_0"]
)
def test_image_ids_of_plates_named_with_spaces_or_any_script_pass(image_id: str) -> None:
    assert _image_id(image_id) == image_id


@pytest.mark.parametrize("image_id", ["../x", "a/b", "a\\b", ".hidden", "x\x00y", "a..b", ""])
def test_separators_dot_dot_and_control_characters_are_refused(image_id: str) -> None:
    with pytest.raises(InputError, match="invalid image id"):
        _image_id(image_id)
