"""Layouts as labs have them: CellProfiler metadata CSVs, plate-map grids, detection,
errors naming the row or cell, and the round trip to the native format."""

from __future__ import annotations

import pytest

from plateseg.demo import demo_layout
from plateseg.errors import InputError
from plateseg.plate.layout import (
    LayoutError,
    PlateLayout,
    detect_layout_format,
    format_layout,
    parse_any_layout,
    parse_layout,
    set_well_control,
)
from plateseg.plate.layout_formats import parse_role
from plateseg.plate.layout_model import row_letters

CELLPROFILER = (
    "Metadata_Plate,Metadata_Well,Metadata_Site,Metadata_Compound,"
    "Metadata_Concentration,Metadata_Role,FileName_DNA,Metadata_CellLine\n"
    "P1,A01,1,DMSO,0,negative,P1_A01_s1_w1.tif,U2OS\n"
    "P1,a1,2,DMSO,0,Negative,P1_A01_s2_w1.tif,U2OS\n"
    "P1,B3,1,CPD-1,0.3,treatment,P1_B03_s1_w1.tif,U2OS\n"
    "P1,A12,1,staurosporine,1,poscon,P1_A12_s1_w1.tif,U2OS\n"
)


def _grid(title: str, rows: int, columns: int, value: object, corner: bool = False) -> str:
    """A plate-map grid: ``value(row, column)`` gives each cell's text."""
    assert callable(value)
    numbers = ",".join(str(c) for c in range(1, columns + 1))
    head = f"{title},{numbers}\n" if corner else f"{title}\n,{numbers}\n"
    body = "".join(
        f"{row_letters(r)}," + ",".join(str(value(r, c)) for c in range(1, columns + 1)) + "\n"
        for r in range(1, rows + 1)
    )
    return head + body


def _compound(r: int, c: int) -> str:
    return "DMSO" if c == 1 else "staurosporine" if c == 12 else f"CPD-{1 if r <= 4 else 2}"


def _role(r: int, c: int) -> str:
    return "neg" if c == 1 else "pos" if c == 12 else ""


def _dose(r: int, c: int) -> str:
    return "0" if c == 1 else "1" if c == 12 else f"{0.01 * 3 ** (c - 2):.3g}"


# --- CellProfiler ------------------------------------------------------------------


def test_cellprofiler_rows_per_image_collapse_to_wells_with_a_report() -> None:
    reading = parse_any_layout(CELLPROFILER, source="metadata.csv")
    layout, report = reading.layout, reading.report
    assert [(w.plate, w.well, w.compound, w.concentration, w.control) for w in layout.wells] == [
        ("P1", "A01", "DMSO", 0.0, "neg"),
        ("P1", "B03", "CPD-1", 0.3, ""),
        ("P1", "A12", "staurosporine", 1.0, "pos"),
    ]
    assert report.format == "cellprofiler"
    assert dict(report.mapped) == {
        "Metadata_Plate": "plate",
        "Metadata_Well": "well",
        "Metadata_Compound": "compound",
        "Metadata_Concentration": "concentration",
        "Metadata_Role": "control",
    }
    ignored = dict(report.ignored)
    assert set(ignored) == {"Metadata_Site", "FileName_DNA", "Metadata_CellLine"}
    assert "per-image" in ignored["Metadata_Site"]
    assert "no layout field" in ignored["Metadata_CellLine"]
    assert (report.rows, report.wells) == (4, 3)
    assert any("4 rows collapsed into 3 wells" in note for note in report.notes)


def test_cellprofiler_headers_are_case_insensitive_and_row_column_make_a_well() -> None:
    text = (
        "image_metadata_ROW;IMAGE_METADATA_COL;metadata_control_type;metadata_dose\n"
        "b;3;negcon;0,5\n"
    )
    reading = parse_any_layout(text)
    assert reading.report.delimiter == ";"
    [well] = reading.layout.wells
    # a ';'-delimited export may write a decimal comma
    assert (well.well, well.control, well.concentration, well.plate) == ("B03", "neg", 0.5, None)
    assert any("every plate" in note for note in reading.report.notes)


def test_a_second_column_for_one_field_is_reported_as_ignored() -> None:
    text = "Metadata_Well,Metadata_Treatment,Metadata_Compound\nA1,x,CPD-9\n"
    reading = parse_any_layout(text)
    assert reading.layout.wells[0].compound == "CPD-9"
    assert dict(reading.report.ignored) == {
        "Metadata_Treatment": "Metadata_Compound is already the compound column"
    }


def test_conflicting_rows_of_one_well_name_both_lines() -> None:
    text = CELLPROFILER + "P1,A01,3,DMSO,0,positive,P1_A01_s3_w1.tif,U2OS\n"
    with pytest.raises(LayoutError) as caught:
        parse_any_layout(text, source="s3://b/meta.csv")
    assert caught.value.problems == (
        "s3://b/meta.csv: line 6, column 'Metadata_Role': plate P1, well A01 has control "
        "'pos' but line 2 gave 'neg'",
    )
    assert isinstance(caught.value, InputError)


def test_cellprofiler_errors_list_every_row_and_column() -> None:
    text = (
        "Metadata_Well,Metadata_Role,Metadata_Concentration\n"
        "A01,neg,0\n"
        "Z99x,maybe,lots\n"
        "A01,neg,0,extra\n"
        "\n"
        "I01,,\n"
    )
    with pytest.raises(LayoutError) as caught:
        parse_any_layout(text, source="meta.csv", plate_format=96)
    assert caught.value.problems == (
        "meta.csv: line 3, column 'Metadata_Well': 'Z99x' is not a well name like 'B03'",
        "meta.csv: line 3, column 'Metadata_Role': 'maybe' is not a control role "
        "(negative: neg, negative, negcon, nc; positive: pos, positive, poscon, pc; "
        "none: blank, none, treatment, sample)",
        "meta.csv: line 3, column 'Metadata_Concentration': 'lots' is not a number",
        "meta.csv: line 4: 4 values for 3 columns",
        "meta.csv: line 6, column 'Metadata_Well': 'I01' is not on a 96-well plate",
    )
    assert str(caught.value).startswith("meta.csv: line 3, column 'Metadata_Well'")


def test_cellprofiler_without_a_well_column_is_an_error() -> None:
    with pytest.raises(LayoutError, match=r"x.csv: line 1: no Metadata_Well column"):
        parse_any_layout("Metadata_Plate,Metadata_Site\nP1,1\n", source="x.csv")


def test_blank_and_nan_concentrations_are_none() -> None:
    text = "Metadata_Well,Metadata_Concentration\nA1,nan\nA2,\nA3,NA\n"
    assert [w.concentration for w in parse_layout(text).wells] == [None, None, None]


@pytest.mark.parametrize(
    ("word", "role"),
    [
        ("neg", "neg"),
        ("Negative Control", "neg"),
        ("ctrl-neg", "neg"),
        ("NC", "neg"),
        ("POSITIVE", "pos"),
        ("poscon_cp", "pos"),
        ("pc", "pos"),
        ("", ""),
        ("none", ""),
        ("Treatment", ""),
        ("-", ""),
    ],
)
def test_role_words(word: str, role: str) -> None:
    assert parse_role(word, "x") == role


# --- grids -------------------------------------------------------------------------


def test_a_96_well_grid_sheet_with_stacked_annotations() -> None:
    text = (
        _grid("Compound", 8, 12, _compound)
        + "\n"
        + _grid("concentration", 8, 12, _dose, corner=True)
        + ",,,,\n"
        + _grid("Role", 8, 12, _role)
    )
    reading = parse_any_layout(text, source="map.csv")
    report = reading.report
    assert (report.format, report.plate_format, report.wells, report.rows) == (
        "grid",
        96,
        96,
        96 * 2 + 16,
    )
    assert report.mapped == (
        ("grid 'Compound' (line 1)", "compound"),
        ("grid 'concentration' (line 12)", "concentration"),
        ("grid 'Role' (line 22)", "control"),
    )
    layout = reading.layout
    a01, b03, h12 = (
        layout.lookup("P1", "A01"),
        layout.lookup("P1", "B03"),
        layout.lookup("P1", "H12"),
    )
    assert a01 is not None and (a01.compound, a01.concentration, a01.control) == (
        "DMSO",
        0.0,
        "neg",
    )
    assert b03 is not None and (b03.compound, b03.concentration, b03.control) == ("CPD-1", 0.03, "")
    assert h12 is not None and (h12.compound, h12.control, h12.plate) == (
        "staurosporine",
        "pos",
        None,
    )
    assert [w.well for w in layout.wells[:13]] == [f"A{c:02d}" for c in range(1, 13)] + ["B01"]


def test_the_grid_sheet_matches_the_demo_layout() -> None:
    """The demo's plate map drawn as grids reads as the demo's native layout.csv does."""
    demo = {row["well"]: row for row in demo_layout()}

    def cell(key: str) -> object:
        return lambda r, c: demo[f"{row_letters(r)}{c:02d}"][key]

    text = "".join(
        _grid(title, 8, 12, cell(key))
        for title, key in [
            ("condition", "condition"),
            ("compound", "compound"),
            ("concentration", "concentration"),
            ("control", "control"),
        ]
    )
    native = "well,condition,compound,concentration,control\n" + "".join(
        f"{r['well']},{r['condition']},{r['compound']},{r['concentration']},{r['control']}\n"
        for r in demo_layout()
    )
    assert parse_layout(text).wells == parse_layout(native).wells


def test_a_384_well_grid_and_a_plate_specific_grid() -> None:
    text = _grid("compound", 16, 24, lambda r, c: "DMSO" if c in (1, 24) else "CPD-7") + _grid(
        "role (plate P2)", 16, 24, lambda r, c: "negative" if c == 1 else ""
    )
    reading = parse_any_layout(text, plate_format=384)
    assert (reading.report.plate_format, reading.report.wells) == (384, 384 + 384)
    layout = reading.layout
    p24 = layout.lookup("P1", "P24")
    assert p24 is not None and (p24.compound, p24.control, p24.plate) == ("DMSO", "", None)
    # the plate's own grid wins; the grid for every plate fills in the rest
    p2 = layout.lookup("P2", "P01")
    assert p2 is not None and (p2.compound, p2.control, p2.plate) == ("DMSO", "neg", "P2")
    assert reading.report.notes == ()


def test_grid_titles_the_layout_has_no_field_for_are_ignored() -> None:
    text = _grid("role", 8, 12, _role) + _grid("cell line", 8, 12, lambda r, c: "U2OS")
    reading = parse_any_layout(text)
    assert reading.report.ignored == (
        (
            "grid 'cell line' (line 11)",
            "no layout field for it (compound, concentration, role, condition)",
        ),
    )
    assert len(reading.layout.wells) == 16


def test_grid_errors_name_the_line_and_the_cell() -> None:
    bad_dose = _grid("concentration", 8, 12, lambda r, c: "lots" if (r, c) == (3, 5) else "1")
    bad_role = _grid("role", 8, 12, lambda r, c: "maybe" if (r, c) == (8, 12) else "")
    with pytest.raises(LayoutError) as caught:
        parse_any_layout(bad_dose + bad_role, source="map.csv")
    assert caught.value.problems == (
        "map.csv: line 5, cell C05 of grid 'concentration': 'lots' is not a number",
        "map.csv: line 20, cell H12 of grid 'role': 'maybe' is not a control role "
        "(negative: neg, negative, negcon, nc; positive: pos, positive, poscon, pc; "
        "none: blank, none, treatment, sample)",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _grid("role", 8, 12, _role).replace("\nD,", "\nE,", 1),
            "line 6: expected row 'D' of grid 'role' (begun on line 1), found 'E'",
        ),
        (
            _grid("role", 8, 12, _role).rsplit("H,", 1)[0],
            "the grid 'role' (line 1) ends after 7 rows; expected rows A to H",
        ),
        (
            _grid("role", 8, 12, _role) + _grid("compound", 16, 24, lambda r, c: "x"),
            "line 11: a 384-well grid after a 96-well grid (line 1)",
        ),
        (
            _grid("role", 8, 12, _role) + _grid("Control", 8, 12, _role),
            "line 11: a second control grid (the first is on line 1)",
        ),
        (
            _grid("", 8, 12, _role, corner=True),
            "line 1: a grid without a title",
        ),
        (
            _grid("role", 8, 12, _role) + "notes\nmade by me, on monday\n",
            "line 11: the title 'notes' is not followed by a grid header row",
        ),
        (
            _grid("role", 8, 12, lambda r, c: "neg").replace("A,", "A,neg,neg,", 1),
            "line 3: row A of grid 'role' has 14 values for 12 columns",
        ),
    ],
)
def test_malformed_grid_sheets(text: str, message: str) -> None:
    with pytest.raises(LayoutError) as caught:
        parse_any_layout(text, source="map.csv")
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
    assert all(problem.startswith("map.csv: ") for problem in caught.value.problems)


def test_a_384_grid_on_a_96_well_plate_is_an_error() -> None:
    with pytest.raises(LayoutError, match="a 384-well grid for a 96-well plate"):
        parse_any_layout(_grid("role", 16, 24, lambda r, c: ""), plate_format=96)


# --- detection and the native format ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "detected"),
    [
        ("well,control\nA01,neg\n", ("native", ",")),
        ("well\nA01\n", ("native", ",")),
        ("", ("native", ",")),
        ("\ufeffwell;control\nA01;neg\n", ("native", ";")),
        ("well\tcontrol\nA01\tneg\n", ("native", "\t")),
        ("\n\nMetadata_Well,Metadata_Site\nA01,1\n", ("cellprofiler", ",")),
        ("Image_Metadata_Well\nA01\n", ("cellprofiler", ",")),
        (_grid("role", 8, 12, _role), ("grid", ",")),
        (_grid("role", 8, 12, _role, corner=True).replace(",", ";"), ("grid", ";")),
    ],
)
def test_detection(text: str, detected: tuple[str, str]) -> None:
    assert detect_layout_format(text) == detected


def test_native_files_parse_as_before_with_a_report() -> None:
    text = "Plate,Well,Control Role,Concentration\n,b3,Negative,\nP2,B3,pos,1.5\n"
    reading = parse_any_layout(text)
    assert reading.report.format == "native"
    assert reading.report.mapped == (
        ("Plate", "plate"),
        ("Well", "well"),
        ("Control Role", "control"),
        ("Concentration", "concentration"),
    )
    assert (reading.report.rows, reading.report.wells) == (2, 2)
    assert reading.layout == parse_layout(text)
    # the native format stays strict: lab role words are for the lab formats
    with pytest.raises(InputError, match="line 2, column 'control': 'negcon'"):
        parse_layout("well,control\nA01,negcon\n")
    assert parse_layout("well;control\nA01;neg\n").wells[0].control == "neg"


@pytest.mark.parametrize(
    "text",
    [
        CELLPROFILER,
        _grid("compound", 8, 12, _compound) + _grid("concentration", 8, 12, _dose),
        _grid("role (plate P2)", 16, 24, lambda r, c: "pos" if c == 24 else "")
        + _grid("compound", 16, 24, lambda r, c: '"say ""hi"", then"' if r == 1 else ""),
        "Plate,Well,Control Role,Concentration,condition\n,b3,Negative,,x\nP2,B3,pos,1e-07,\n",
    ],
)
def test_round_trip_to_the_native_format(text: str) -> None:
    layout = parse_layout(text)
    native = format_layout(layout)
    again = parse_any_layout(native)
    assert again.report.format == "native"
    assert again.layout.wells == layout.wells
    assert format_layout(again.layout) == native


def test_set_well_control() -> None:
    layout = parse_layout("plate,well,compound,control\n,A01,DMSO,neg\nP2,A01,DMSO,neg\n")
    every = set_well_control(layout, "a1", "pos")
    assert [(w.plate, w.control) for w in every.wells] == [(None, "pos"), ("P2", "pos")]
    one = set_well_control(layout, "A01", "none", plate="P2")
    assert [(w.plate, w.control) for w in one.wells] == [(None, "neg"), ("P2", "")]
    # a plate without its own row gets one, from the row for every plate
    p3 = set_well_control(layout, "A01", "pos", plate="P3").lookup("P3", "A01")
    assert p3 is not None and (p3.compound, p3.control, p3.plate) == ("DMSO", "pos", "P3")
    added = set_well_control(PlateLayout(wells=()), "H12", "negative")
    assert [(w.well, w.control, w.plate) for w in added.wells] == [("H12", "neg", None)]
    with pytest.raises(InputError, match="not a well name"):
        set_well_control(layout, "A0", "pos")
    with pytest.raises(InputError, match="'sometimes' is not a control role"):
        set_well_control(layout, "A01", "sometimes")
    with pytest.raises(InputError, match="outside a 1536-well plate"):
        set_well_control(layout, "AZ01", "pos")


def test_what_is_not_csv_is_an_input_error_naming_the_line() -> None:
    with pytest.raises(InputError, match=r"big.csv: line 2: not CSV \(field larger"):
        parse_any_layout("Metadata_Well\n" + "x" * 200_000 + "\n", source="big.csv")


def test_a_blank_plate_is_every_plate() -> None:
    layout = set_well_control(PlateLayout(wells=()), "A1", "pos", plate="  ")
    assert [(w.well, w.plate) for w in layout.wells] == [("A01", None)]
    assert parse_layout(format_layout(layout)).wells == layout.wells
