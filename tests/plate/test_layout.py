"""Plate layouts: the demo's file, aliases, and errors naming the line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from plateseg.demo import demo_layout, write_demo_experiment
from plateseg.errors import InputError
from plateseg.plate.layout import parse_layout, plate_format_for, read_layout, split_well
from plateseg.store import LocalStore


def test_the_demo_layout_parses(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    write_demo_experiment(store, "DEMO-9", wells=["A01"], fields=1, size=64)

    layout = read_layout(store, "DEMO-9")

    assert layout is not None
    assert len(layout.wells) == len(demo_layout()) == 96
    a01 = layout.lookup("P1", "A01")
    assert a01 is not None and (a01.control, a01.compound, a01.concentration) == (
        "neg",
        "DMSO",
        0.0,
    )
    h12 = layout.lookup("P1", "H12")
    assert h12 is not None and (h12.row, h12.column, h12.control) == ("H", 12, "pos")
    assert plate_format_for([(w.row, w.column) for w in layout.wells]) == 96


def test_missing_layout_is_none(tmp_path: Path) -> None:
    assert read_layout(LocalStore(tmp_path), "EXP-404") is None


def test_aliases_and_plate_specific_rows() -> None:
    text = "Plate,Well,Control Role,Concentration\n,b3,Negative,\nP2,B3,pos,1.5\n"
    layout = parse_layout(text)
    generic, specific = layout.lookup("P1", "B03"), layout.lookup("P2", "B03")
    assert generic is not None and (generic.control, generic.concentration) == ("neg", None)
    assert specific is not None and (specific.control, specific.concentration) == ("pos", 1.5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("condition\nx\n", "no 'well' column"),
        ("well,colour\nA01,red\n", "line 1, column 2: unknown column 'colour'"),
        ("well,control\nA01,neg\nA1,pos\n", "line 3: well A01 is already listed on line 2"),
        ("well\nA01\nZZ9x\n", "line 3, column 'well': 'ZZ9x' is not a well name"),
        ("well,control\nA01,maybe\n", "line 2, column 'control': 'maybe'"),
        (
            "well,concentration\nA01,lots\n",
            "line 2, column 'concentration': 'lots' is not a number",
        ),
        ("well,condition\nA01\n", "line 2: 1 values for 2 columns"),
    ],
)
def test_errors_name_line_and_column(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        parse_layout(text, source="s3://b/experiments/E/layout.csv")
    assert "s3://b/experiments/E/layout.csv" in str(caught.value)


def test_wells_outside_the_plate_format_are_errors() -> None:
    with pytest.raises(InputError, match=r"line 3, column 'well': 'I01' is not on a 96-well plate"):
        parse_layout("well\nH12\nI01\n", plate_format=96)
    assert parse_layout("well\nP24\n", plate_format=384).wells[0].well == "P24"
    with pytest.raises(InputError, match="outside a 1536-well plate"):
        plate_format_for([("AG", 1)])


def test_split_well() -> None:
    assert split_well(" c7 ") == ("C", 7)
    with pytest.raises(InputError, match="not a well name"):
        split_well("A00")
