"""File-name metadata and manifest building."""

from __future__ import annotations

import pytest

from plateseg.errors import InputError
from plateseg.plate.manifest import build_manifest, parse_key

EXP = "EXP-1"


def key(rest: str) -> str:
    return f"experiments/{EXP}/{rest}"


@pytest.mark.parametrize(
    ("rest", "plate", "well", "field", "channel"),
    [
        ("P1/P1_B03_s1_w1.tif", "P1", "B03", 1, "w1"),
        ("Plate7/anything_here_b3_s12_w2.TIFF", "Plate7", "B03", 12, "w2"),
        ("P2/P2_AA1_s2_w3.png", "P2", "AA01", 2, "w3"),
        ("Plate1_A01_s2_w2A1B2C3D4-1111-2222-3333-444455556666.tif", "Plate1", "A01", 2, "w2"),
        ("X_H12_s1_w13F4A3C2D-1111-2222-3333-444455556666.tif", "X", "H12", 1, "w1"),
        ("C05_s3_w4.jpg", "P1", "C05", 3, "w4"),
        ("run2/sub/P9_G7_s1_w1.tif", "run2", "G07", 1, "w1"),
    ],
)
def test_parse_key_reads_imagexpress_names(
    rest: str, plate: str, well: str, field: int, channel: str
) -> None:
    name = parse_key(key(rest), EXP)
    assert name is not None
    assert (name.plate, name.well, name.field, name.channel) == (plate, well, field, channel)
    assert name.key == key(rest)


@pytest.mark.parametrize(
    "full_key",
    [
        key("P1/notes.tif"),
        key("P1/P1_B03_w1.tif"),
        key("P1/P1_B03_s1.tif"),
        "experiments/OTHER/P1/P1_A01_s1_w1.tif",
    ],
)
def test_parse_key_returns_none_for_other_names(full_key: str) -> None:
    assert parse_key(full_key, EXP) is None


def test_build_manifest_groups_channels_and_sorts() -> None:
    keys = [
        key("P1/P1_B03_s2_w1.tif"),
        key("P1/P1_A10_s1_w2.tif"),
        key("P1/P1_A10_s1_w1.tif"),
        key("P1/P1_B03_s1_w10.tif"),
        key("P1/P1_B03_s1_w2.tif"),
        key("P1/P1_B03_s1_w1.tif"),
        key("P0/P0_H01_s1_w1.tif"),
        key("P1/P1_A2_s1_w1.tif"),
    ]
    items, report = build_manifest(keys, EXP)
    assert [item.image_id for item in items] == [
        "P0_H01_1",
        "P1_A02_1",
        "P1_A10_1",
        "P1_B03_1",
        "P1_B03_2",
    ]
    assert list(items[3].channels) == ["w1", "w2", "w10"]
    assert items[2].channels == {"w1": key("P1/P1_A10_s1_w1.tif"), "w2": key("P1/P1_A10_s1_w2.tif")}
    assert report.ignored == report.unmatched == report.duplicates == []


def test_build_manifest_reports_ignored_unmatched_and_duplicates() -> None:
    keys = [
        key("layout.csv"),
        key("P1/readme.txt"),
        key("P1/P1_A01_s1_w1.tif"),
        key("P1/P1_A1_s1_w1.tif"),  # the same field and channel again
        key("P1/thumbnail.png"),
        key("P1/P1_A01_s1_w2.tif"),
    ]
    items, report = build_manifest(keys, EXP)
    assert len(items) == 1
    assert items[0].channels["w1"] == key("P1/P1_A01_s1_w1.tif")  # first in key order kept
    assert report.ignored == [key("P1/readme.txt"), key("layout.csv")]
    assert report.unmatched == [key("P1/thumbnail.png")]
    assert report.duplicates == [key("P1/P1_A1_s1_w1.tif")]
    assert report.duplicate_of == {key("P1/P1_A1_s1_w1.tif"): key("P1/P1_A01_s1_w1.tif")}
    assert report.summary().startswith("2 ignored (not images), 1 unmatched name, 1 duplicate")
    assert "thumbnail.png" in report.summary()


def test_custom_pattern_with_plate_row_and_column_groups() -> None:
    pattern = (
        r"(?P<plate>[^/]+)/(?P<row>[A-H])c(?P<column>\d+)f(?P<field>\d+)-(?P<channel>ch\d)\.tiff$"
    )
    keys = [key("PL/Bc3f1-ch1.tiff"), key("PL/Bc3f1-ch2.tiff"), key("PL/r2c3f1-ch1.tiff")]
    items, report = build_manifest(keys, EXP, pattern=pattern)
    assert [(i.plate, i.well, i.field, list(i.channels)) for i in items] == [
        ("PL", "B03", 1, ["ch1", "ch2"])
    ]
    assert report.unmatched == [key("PL/r2c3f1-ch1.tiff")]


@pytest.mark.parametrize("pattern", ["(unclosed", r"(?P<well>\w+)_(?P<field>\d)"])
def test_bad_custom_pattern_is_an_input_error(pattern: str) -> None:
    with pytest.raises(InputError, match="pattern"):
        build_manifest([key("P1/x.tif")], EXP, pattern=pattern)


@pytest.mark.parametrize(
    ("naming", "rest", "plate", "well", "field", "channel"),
    [
        # Opera Phenix / Operetta (Harmony export): numeric row 2 -> B
        ("operetta", "Plate_1/r02c03f01p01-ch1sk1fk1fl1.tiff", "Plate_1", "B03", 1, "ch1"),
        ("opera-phenix", "P2/r16c24f09p03-ch4sk1fk1fl1.tiff", "P2", "P24", 9, "ch4"),
        ("operetta", "r01c01f01p01-ch2sk1fk1fl1.tiff", "P1", "A01", 1, "ch2"),
        # Thermo Cellomics / ArrayScan: plate barcode in the name, fields from 0
        ("cellomics", "MFGTMP_140206180002_B03f00d0.TIF", "MFGTMP_140206180002", "B03", 0, "d0"),
        (
            "cellomics",
            "x/AS_09125_050116000001_A24f12d3.tif",
            "AS_09125_050116000001",
            "A24",
            12,
            "d3",
        ),
        # GE / Cytiva IN Cell Analyzer: channel = excitation filter name
        ("incell", "P1/B - 3(fld 1 wv DAPI - DAPI).tif", "P1", "B03", 1, "dapi"),
        ("incell", "P1/P - 24(fld 12 wv Cy3 - Cy3 z 3).tif", "P1", "P24", 12, "cy3"),
        ("imagexpress", "P1/P1_B03_s1_w1.tif", "P1", "B03", 1, "w1"),
        # a user regex with named groups
        (
            r"(?P<well>[A-H]\d\d)--f(?P<field>\d)--(?P<channel>\w+)\.png$",
            "P3/B07--f2--hoechst.png",
            "P3",
            "B07",
            2,
            "hoechst",
        ),
    ],
)
def test_presets_read_real_instrument_names(
    naming: str, rest: str, plate: str, well: str, field: int, channel: str
) -> None:
    from plateseg.plate.naming import naming_pattern

    parsed = parse_key(key(rest), EXP, naming_pattern(naming))
    assert parsed is not None
    assert (parsed.plate, parsed.well, parsed.field, parsed.channel) == (
        plate,
        well,
        field,
        channel,
    )


def test_presets_group_channels_and_report_the_rest() -> None:
    from plateseg.plate.naming import naming_pattern

    keys = [
        key("P1/r02c03f01p01-ch1sk1fk1fl1.tiff"),
        key("P1/r02c03f01p01-ch2sk1fk1fl1.tiff"),
        key("P1/r02c03f01p02-ch1sk1fk1fl1.tiff"),  # a second plane: first plane used
        key("P1/r40c03f01p01-ch1sk1fk1fl1.tiff"),  # no row 40 on any plate
        key("P1/P1_B03_s1_w1.tif"),  # another instrument's name
    ]
    items, report = build_manifest(keys, EXP, naming_pattern("operetta"))
    assert [(i.well, sorted(i.channels)) for i in items] == [("B03", ["ch1", "ch2"])]
    assert report.duplicates == []
    assert report.extra_planes == [keys[2]]
    assert sorted(report.unmatched) == sorted([keys[3], keys[4]])
    assert "2 unmatched names, 1 extra plane (first plane used;" in report.summary()


def test_summary_names_only_what_was_found() -> None:
    from plateseg.plate.naming import naming_pattern

    keys = [
        key("P1/r02c03f01p01-ch1sk1fk1fl1.tiff"),
        key("P1/r02c03f01p02-ch1sk1fk1fl1.tiff"),
        key("P1/r02c03f01p03-ch1sk1fk1fl1.tiff"),
    ]
    _, report = build_manifest(keys, EXP, naming_pattern("operetta"), project=True)
    assert report.has_findings
    assert report.summary() == "2 extra planes (max-projected)"
    _, clean = build_manifest(keys[:1], EXP, naming_pattern("operetta"))
    assert not clean.has_findings and clean.summary() == "no files ignored"


def test_unknown_naming_is_an_input_error() -> None:
    from plateseg.plate.naming import naming_pattern

    assert naming_pattern(None) is None and naming_pattern("ImageXpress") is None
    with pytest.raises(InputError, match=r"'harmony' is neither a preset \(cellomics, imagexpress"):
        naming_pattern("harmony")
    with pytest.raises(InputError, match="needs named groups 'channel'"):
        naming_pattern(r"(?P<well>\w+)\.tif")
