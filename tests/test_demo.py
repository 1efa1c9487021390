"""The synthetic demo experiment: layout, determinism, ground truth, and the accuracy the
default recipe reaches on it (the `make run` acceptance criterion, on a subset of wells)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from plateseg.contracts import Recipe
from plateseg.demo import DemoTruth, demo_layout, load_truth, write_demo_experiment
from plateseg.demo_check import count_matches_truth
from plateseg.imaging import read_image
from plateseg.imaging.field import read_field
from plateseg.plate.manifest import build_manifest
from plateseg.segmentation import segment_field
from plateseg.segmentation.evaluate import match_objects
from plateseg.store import LocalStore

#: negative control, positive control, top and low dose, a dim and an empty well (seed 0)
WELLS = ["A01", "D12", "B08", "H11", "C06", "C03", "E10"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, DemoTruth]:
    store = LocalStore(tmp_path_factory.mktemp("demo"))
    return store, write_demo_experiment(store, "DEMO-T", wells=WELLS)


def test_layout_marks_controls_and_doses() -> None:
    rows = {row["well"]: row for row in demo_layout()}
    assert len(rows) == 96
    assert rows["A01"]["control"] == "neg" and rows["H12"]["control"] == "pos"
    assert rows["B05"]["compound"] == "CPD-1" and rows["F05"]["compound"] == "CPD-2"
    assert float(rows["B11"]["concentration"]) > float(rows["B02"]["concentration"])


def test_writes_images_layout_and_truth(demo: tuple[LocalStore, DemoTruth]) -> None:
    store, truth = demo
    keys = [info.key for info in store.list("experiments/DEMO-T/")]
    assert "experiments/DEMO-T/layout.csv" in keys
    assert "experiments/DEMO-T/P1/P1_A01_s2_w2.tif" in keys
    assert len(truth.image_keys) == len(WELLS) * 2 * 2
    layout = store.get_bytes("experiments/DEMO-T/layout.csv").decode()
    table = list(csv.DictReader(io.StringIO(layout)))
    assert {"well", "condition", "compound", "concentration", "control"} <= set(table[0])
    image = read_image(store.get_bytes("experiments/DEMO-T/P1/P1_A01_s1_w1.tif"), "k")
    assert image.dtype == np.uint16 and image.shape == (512, 512)
    mask = read_image(store.get_bytes(truth.mask_keys["P1_A01_1"]), "m")
    assert int(mask.max()) == truth.field_counts["P1_A01_1"] > 0
    assert load_truth(store, "DEMO-T").well_counts == truth.well_counts


def test_plate_shows_its_biology(demo: tuple[LocalStore, DemoTruth]) -> None:
    _store, truth = demo
    counts = truth.well_counts
    assert truth.empty_wells == ["C03", "D11", "E10"]
    assert counts["P1_C03"] == counts["P1_E10"] == 0
    assert counts["P1_A01"] > 2 * counts["P1_D12"] > 0  # dose response: control > positive
    assert "C06" in truth.dim_wells


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    one, two = LocalStore(tmp_path / "one"), LocalStore(tmp_path / "two")
    write_demo_experiment(one, "D", wells=["B02"], fields=1, size=128, seed=3)
    write_demo_experiment(two, "D", wells=["B02"], fields=1, size=128, seed=3)
    key = "experiments/D/P1/P1_B02_s1_w1.tif"
    assert one.get_bytes(key) == two.get_bytes(key)
    write_demo_experiment(two, "D", wells=["B02"], fields=1, size=128, seed=4)
    assert one.get_bytes(key) != two.get_bytes(key)


def test_default_recipe_counts_match_the_truth_and_f1(
    demo: tuple[LocalStore, DemoTruth],
) -> None:
    store, truth = demo
    keys = [info.key for info in store.list("experiments/DEMO-T/")]
    items, _report = build_manifest(keys, "DEMO-T")
    counts: dict[str, int] = {}
    tp = fp = fn = 0
    for item in items:
        result = segment_field(read_field(store, item, ["w1", "w2"]), Recipe())
        well = f"{item.plate}_{item.well}"
        counts[well] = counts.get(well, 0) + result.object_count
        mask = read_image(store.get_bytes(truth.mask_keys[item.image_id]), "truth")
        a, b, c = match_objects(mask, result.labels)
        tp, fp, fn = tp + a, fp + b, fn + c
    assert 2 * tp / (2 * tp + fp + fn) >= 0.95
    for well, expected in truth.well_counts.items():
        if expected == 0:
            assert counts[well] == 0, well
        else:
            assert count_matches_truth(counts[well], expected), (well, counts[well], expected)


def test_truth_records_the_dilution_series_ic50s(demo: tuple[LocalStore, DemoTruth]) -> None:
    from plateseg.demo import COMPOUNDS, NEG_DENSITY, _expected_density
    from plateseg.results.dose_response import four_pl

    store, truth = demo
    assert truth.compounds == load_truth(store, "DEMO-T").compounds
    assert {c.name: c.ic50_um for c in COMPOUNDS} == {"CPD-1": 0.8, "CPD-2": 6.0}
    layout = {row["well"]: row for row in demo_layout()}
    for compound in COMPOUNDS:
        known = truth.compounds[compound.name]
        assert (known["ic50"], known["hill_slope"]) == (compound.ic50_um, -1.0)
        assert known["top"] == NEG_DENSITY and known["bottom"] == pytest.approx(0.35 * NEG_DENSITY)
        # the wells' expected nuclei per field follow that 4PL at the layout's concentrations
        for column in range(2, 12):
            well = f"{compound.rows[0]}{column:02d}"
            assert layout[well]["compound"] == compound.name
            conc = float(layout[well]["concentration"])
            expected = four_pl(
                np.log10(conc), known["top"], known["bottom"], np.log10(known["ic50"]), 1.0
            )
            assert _expected_density(well) == pytest.approx(float(expected), rel=0.01)
