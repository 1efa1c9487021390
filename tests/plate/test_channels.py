"""The nuclei channel of an experiment whose recipe names none."""

from __future__ import annotations

import pytest

from plateseg.plate.channels import default_channels, natural_order


def test_channel_numbers_sort_as_numbers() -> None:
    assert natural_order(["ch10", "ch2", "ch1", "ch2"]) == ["ch1", "ch2", "ch10"]
    assert natural_order(["d1", "d0"]) == ["d0", "d1"]


@pytest.mark.parametrize(
    ("found", "nuclei", "cells"),
    [
        (["ch2", "ch1", "ch3"], "ch1", "ch2"),  # Operetta / Opera Phenix
        (["d1", "d0"], "d0", "d1"),  # Cellomics
        (["FITC", "Cy3", "DAPI"], "DAPI", "Cy3"),  # IN Cell filter names
        (["Alexa488", "Hoechst 33342"], "Hoechst 33342", "Alexa488"),
        (["w3", "w2"], "w2", "w3"),  # an ImageXpress plate without w1
        (["ch1"], "ch1", "ch1"),  # one channel: cells (if asked for) is the same
    ],
)
def test_the_stain_named_channel_or_else_the_first(
    found: list[str], nuclei: str, cells: str
) -> None:
    choice = default_channels(found)
    assert choice is not None
    assert choice.channels == {"nuclei": nuclei, "cells": cells}
    assert nuclei in choice.reason


def test_two_stain_named_channels_fall_back_to_the_first() -> None:
    choice = default_channels(["DRAQ5", "DAPI", "FITC"])
    assert choice is not None
    assert choice.nuclei == "DAPI"  # first in order; neither is preferred by name
    assert "2 named after a nuclear stain" in choice.reason


def test_no_channels_no_choice() -> None:
    assert default_channels([]) is None
