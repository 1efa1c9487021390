"""Sample measurement on a real (tiny) experiment; the store is never written."""

from __future__ import annotations

import pytest

from plateseg.errors import ExperimentIdError, NotFoundError, RecipeError
from plateseg.planning.sampling import RecordingStore
from plateseg.planning.workload import measure_engine, measure_workload, sample_indices
from plateseg.settings import Settings
from plateseg.store import LocalStore


def test_sample_indices_spread_evenly() -> None:
    assert sample_indices(100, 3) == [0, 50, 99]
    assert sample_indices(2, 5) == [0, 1]
    assert sample_indices(7, 1) == [0]


def test_measure_workload_counts_and_times_without_writing(
    settings: Settings, store: LocalStore, demo: str
) -> None:
    before = sorted(info.key for info in store.list(""))
    workload = measure_workload(demo, sample=2, workers=1, settings=settings)
    assert sorted(info.key for info in store.list("")) == before
    assert workload.fields == 4
    assert workload.sample == 2
    assert workload.channels_per_field == 2
    p = workload.profile
    assert p.seconds_per_field > 0
    assert p.bytes_per_field > 2 * 128 * 128  # two uint16 channels, TIFF headers
    assert p.puts_per_field == 1  # the label mask (the UI draws its pictures from it)
    assert p.puts_per_batch >= 1  # the Parquet part (and a checkpoint, if any)
    assert p.peak_mb > 50  # a Python process with numpy and scikit-image
    assert workload.cpu_profile.seconds_per_field > 0
    assert 0 < workload.core_share <= 1
    assert workload.output_bytes_per_field > 0
    assert p.item_bytes > 50


def test_unknown_experiment_is_not_found(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="NOPE"):
        measure_workload("NOPE", settings=settings)


def test_unsafe_experiment_id_is_refused(settings: Settings) -> None:
    with pytest.raises(ExperimentIdError):
        measure_workload("../etc", settings=settings)


def test_missing_nuclei_channel_names_the_channels(settings: Settings, demo: str) -> None:
    with pytest.raises(RecipeError, match="'w9'.*w1, w2"):
        measure_workload(demo, recipe={"channels": {"nuclei": "w9"}}, settings=settings)


def test_a_plate_without_w1_is_planned_with_its_first_channel(
    settings: Settings, store: LocalStore, demo: str
) -> None:
    """As Lookup does: the default recipe on an Operetta plate segments ``ch1``."""
    for well, column in (("A01", 1), ("B02", 2)):
        for channel in (1, 2):
            image = store.get_bytes(f"experiments/{demo}/P1/P1_{well}_s1_w{channel}.tif")
            row = "01" if well == "A01" else "02"
            name = f"r{row}c{column:02d}f01p01-ch{channel}sk1fk1fl1.tiff"
            store.put_bytes(f"experiments/OP-PLAN/P1/{name}", image)
    workload = measure_workload("OP-PLAN", sample=1, workers=1, settings=settings)
    assert (workload.fields, workload.channels_per_field) == (2, 2)
    assert workload.profile.seconds_per_field > 0


def test_a_projecting_recipe_is_measured_reading_every_plane(
    settings: Settings, store: LocalStore, demo: str
) -> None:
    for channel, planes in ((1, (1, 2)), (2, (1,))):
        image = store.get_bytes(f"experiments/{demo}/P1/P1_A01_s1_w{channel}.tif")
        for plane in planes:
            name = f"r01c01f01p0{plane}-ch{channel}sk1fk1fl1.tiff"
            store.put_bytes(f"experiments/OP-Z/P1/{name}", image)
    first = measure_workload("OP-Z", sample=1, workers=1, settings=settings)
    both = measure_workload("OP-Z", recipe={"planes": "max"}, sample=1, settings=settings)
    assert (first.channels_per_field, first.profile.gets_per_field) == (2, 2)
    assert (both.channels_per_field, both.profile.gets_per_field) == (2, 3)
    assert both.profile.bytes_per_field > first.profile.bytes_per_field


def test_bad_recipe_names_the_field(settings: Settings, demo: str) -> None:
    with pytest.raises(RecipeError, match="recipe"):
        measure_workload(demo, recipe={"segmenter": 5}, settings=settings)


def test_recording_store_reads_through_and_keeps_writes(store: LocalStore) -> None:
    store.put_bytes("a/x", b"1")
    recording = RecordingStore(store)
    recording.put_bytes("a/y", b"22")
    assert recording.get_bytes("a/x") == b"1"
    assert recording.get_bytes("a/y") == b"22"
    assert recording.exists("a/y") and not store.exists("a/y")
    assert recording.puts == [("a/y", 2)]
    assert recording.delete_prefix("a/") == 1
    assert store.exists("a/x")


def test_measure_engine_reports_startup_and_per_child_cost(settings: Settings) -> None:
    overhead = measure_engine(workers=2, children=8)
    assert overhead.startup_seconds > 0
    assert overhead.per_child_seconds > 0
    platform = overhead.platform()
    assert platform.slots == 2 and platform.engine == "local"
    assert platform.startup_seconds == overhead.startup_seconds
