"""Lookup refuses, before anything is segmented, what would waste or spoil a whole run."""

from __future__ import annotations

from pathlib import Path

import pytest

from plateseg.contracts import LookupRequest
from plateseg.errors import InputError, ModelError
from plateseg.pipeline.lookup import lookup
from plateseg.store import LocalStore, get_json

EXP = "LK-1"


def request(**extra: object) -> LookupRequest:
    return LookupRequest(
        input={"experiment_id": EXP, "run_id": "r1", **extra}, execution_name="x", bucket="b"
    )


@pytest.fixture
def experiment(tmp_path: Path) -> LocalStore:
    """Two fields (A01, B02) with w1 and w2; the bytes do not matter to Lookup."""
    store = LocalStore(tmp_path / "store")
    for well in ("A01", "B02"):
        for channel in ("w1", "w2"):
            store.put_bytes(f"experiments/{EXP}/P1/P1_{well}_s1_{channel}.tif", b"II*\x00")
    return store


def test_duplicates_are_refused_naming_both_files_and_reported_in_full(
    experiment: LocalStore,
) -> None:
    first = f"experiments/{EXP}/P1/P1_A01_s1_w1.tif"
    copies = [f"experiments/{EXP}/P1/copy{n}/P1_A1_s1_w1.tif" for n in range(1, 5)]
    for copy in copies:
        experiment.put_bytes(copy, b"II*\x00")
    with pytest.raises(InputError) as caught:
        lookup(request(), experiment)
    message = str(caught.value)
    assert message.startswith(f"experiment '{EXP}' has 4 duplicate images")
    assert f"'{first}' and '{copies[0]}'" in message and "and 1 more" in message
    assert experiment.uri("runs/r1/lookup-report.json") in message
    report = get_json(experiment, "runs/r1/lookup-report.json")
    assert report["duplicate_pairs"] == [[first, copy] for copy in copies]
    assert not experiment.exists("runs/r1/manifest.json")


def test_further_planes_of_an_operetta_field_are_not_duplicates(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    for plane in ("01", "02", "03"):
        store.put_bytes(f"experiments/{EXP}/P1/r01c01f01p{plane}-ch1sk1fk1fl1.tiff", b"II*\x00")
    result = lookup(request(naming="operetta", recipe={"channels": {"nuclei": "ch1"}}), store)
    assert result.item_count == 1
    report = get_json(store, "runs/r1/lookup-report.json")
    assert report["duplicates"] == [] and len(report["extra_planes"]) == 2
    assert "2 extra planes (first plane used;" in result.message
    (item,) = get_json(store, result.manifest_key)
    assert item["channels"]["ch1"].endswith("p01-ch1sk1fk1fl1.tiff")
    assert "planes" not in item  # the manifest of a first-plane recipe is as before


def test_a_max_projecting_recipe_keeps_every_plane_in_plane_order(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    for plane in ("03", "01", "02"):
        for channel in ("ch1", "ch2"):
            name = f"r01c01f01p{plane}-{channel}sk1fk1fl1.tiff"
            store.put_bytes(f"experiments/{EXP}/P1/{name}", b"II*\x00")
    recipe = {"channels": {"nuclei": "ch1"}, "planes": "max"}
    result = lookup(request(naming="operetta", recipe=recipe), store)
    assert "4 extra planes (max-projected)" in result.message
    (item,) = get_json(store, result.manifest_key)
    assert item["channels"]["ch1"].endswith("p01-ch1sk1fk1fl1.tiff")
    assert {c: [k.rsplit("/", 1)[1][9:12] for k in keys] for c, keys in item["planes"].items()} == {
        "ch1": ["p02", "p03"],
        "ch2": ["p02", "p03"],
    }


def test_max_projection_is_over_z_only_never_over_time(tmp_path: Path) -> None:
    """An IN Cell time series of Z-stacks: the first timepoint's planes are projected; the
    other timepoint is only listed (a projection over time would mix frames)."""
    store = LocalStore(tmp_path / "store")
    for time_ in (1, 2):
        for z in (1, 2):
            name = f"B - 3(fld 1 wv DAPI - DAPI z {z} time {time_} - {time_ * 1000} ms).tif"
            store.put_bytes(f"experiments/{EXP}/P1/{name}", b"II*\x00")
    recipe = {"channels": {"nuclei": "dapi"}, "planes": "max"}
    result = lookup(request(naming="incell", recipe=recipe), store)
    (item,) = get_json(store, result.manifest_key)
    assert "z 1 time 1" in item["channels"]["dapi"]
    assert [k.rsplit("/", 1)[1] for k in item["planes"]["dapi"]] == [
        "B - 3(fld 1 wv DAPI - DAPI z 2 time 1 - 1000 ms).tif"
    ]
    assert len(get_json(store, "runs/r1/lookup-report.json")["extra_planes"]) == 3


@pytest.mark.parametrize(
    ("layout", "words"),
    [
        (b"well,control\nA01,neg\nZZ99,pos\n", "line 3, column 'well': 'ZZ99' is not on a"),
        (b"well,control\nA01,maybe\n", "line 2, column 'control': 'maybe' is not one of"),
        (b"well,dose\nA01,3\n", "line 1, column 2: unknown column 'dose'"),
    ],
    ids=["off-plate-well", "bad-control", "unknown-column"],
)
def test_a_broken_layout_is_refused_by_line_and_column(
    experiment: LocalStore, layout: bytes, words: str
) -> None:
    experiment.put_bytes(f"experiments/{EXP}/layout.csv", layout)
    with pytest.raises(InputError, match=words):
        lookup(request(), experiment)
    assert not experiment.exists("runs/r1/manifest.json")


def test_layout_wells_without_images_are_listed_not_refused(experiment: LocalStore) -> None:
    experiment.put_bytes(
        f"experiments/{EXP}/layout.csv", b"plate,well\n,A01\n,H12\nP1,B02\nP9,C03\n"
    )
    result = lookup(request(), experiment)
    assert result.item_count == 2
    assert "2 layout well(s) without images" in result.message
    report = get_json(experiment, "runs/r1/lookup-report.json")
    assert report["layout_wells_without_images"] == ["P1 H12", "P9 C03"]


def test_a_missing_model_is_refused_by_name(experiment: LocalStore) -> None:
    recipe = {"segmenter": "onnx", "params": {"model": "no-such-model"}}
    with pytest.raises(ModelError, match="model 'no-such-model' not found at"):
        lookup(request(recipe=recipe), experiment)


def test_the_shipped_model_passes_the_check(experiment: LocalStore) -> None:
    recipe = {"segmenter": "onnx", "params": {"model": "nuclei-rf"}}
    assert lookup(request(recipe=recipe), experiment).item_count == 2


def test_an_execution_name_that_is_no_run_id_is_refused_before_anything_is_written(
    experiment: LocalStore,
) -> None:
    # a raw start-execution without run_id: the execution's name becomes the run id
    bad = LookupRequest(input={"experiment_id": EXP}, execution_name="v1.2", bucket="b")
    with pytest.raises(InputError, match=r"invalid run id 'v1\.2': it contains '\.'"):
        lookup(bad, experiment)
    assert not list(experiment.list("runs/"))
