"""Bad images, each through the real pipeline: one ``plateseg run`` over one experiment.

The experiment BAD-IMG holds three good fields (A01, A12, H01 of the demo plate, 64 px)
and one field per bad kind below, each with a good ``w2`` and the bad ``w1`` unless the
kind is about channels. ONE run (the ``plateseg`` console script in its own process,
two engine worker processes; once per test session, shared by xdist workers) segments
them all; then every kind is checked where a user would look:

- a per-image error is a ``run_failures`` row (:func:`plateseg.results.run_failures`)
  whose cause names the file and the problem, and an ``images`` row with status error;
- the run itself succeeds with failures: no batch failed (per-image errors never spend
  the Map's tolerated-failure budget), and every good field's results are there;
- the CLI exits 0 and prints the summary; nothing at all is printed on stderr, by the
  CLI or by any worker process, so nobody sees a traceback.

Behaviour chosen where the issue is silent (and documented in
``plateseg.imaging`` / ``plateseg.plate.manifest``): a file is decoded by its content, not
its extension; an all-black field is OK with 0 objects and the ``no_objects`` QC flag
(``QC_Empty`` = 1); a saturated field is OK with ``QC_Saturated`` = 1; a 1x1 image is
a per-image "too small" error (nothing can be segmented in it and it always means a
broken export); colour RGB (channels that differ) and 3-D stacks are per-image errors
naming the shape (silently mixing colour planes or Z slices would give wrong
intensities; a grey image saved as RGB, all channels equal, is read as grey); a missing
nuclei channel is a per-image error while a missing secondary channel is not; unicode and spaces in
keys (and S3's special characters) work end to end, and a key the store refuses (a
backslash, legal on S3) is a per-image error. ``docs/bad-input.md`` has the reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plateseg.db.engine import get_engine
from plateseg.demo import write_demo_experiment
from plateseg.imaging import read_image
from plateseg.results import FailureRow, ImageRow, RunInfo, get_run, image_table, run_failures
from plateseg.settings import Settings, use_settings
from plateseg.store import LocalStore, get_json
from tests.reliability.conftest import BadFiles, CliOutcome, Once, home_settings

pytestmark = pytest.mark.xdist_group("bad_inputs")

EXPERIMENT = "BAD-IMG"
RUN_ID = "bad-images"
GOOD_WELLS = ("A01", "A12", "H01")
UNICODE_PLATE = "Plaque é 2"
#: A plate folder with the characters S3 keys allow but URLs and shells treat specially.
S3_STYLE_PLATE = "Run #3 (50%+) & co=@:,;'!$"
#: A key S3 allows but the store refuses (a backslash): a per-image error, not a crash.
BACKSLASH_NAME = "odd\\name_C06_s1_w1.tif"


def key(name: str, plate: str = "P1") -> str:
    return f"experiments/{EXPERIMENT}/{plate}/{name}"


@dataclass(frozen=True)
class BadField:
    """One bad kind: the files of its field and what the run must say about it."""

    kind: str
    well: str
    error: str  # the error class recorded for the image
    cause: str  # words the recorded cause must contain (after the file's key)


#: Per-image errors: (kind, well, error class, cause).
BAD_FIELDS = [
    BadField("truncated TIFF", "B01", "ImageReadError", "truncated TIFF: the file is"),
    BadField("zero-byte file", "B02", "ImageReadError", "the file is empty (0 bytes)"),
    BadField("text file named .tif", "B04", "ImageReadError", "unknown image format"),
    BadField(
        "TIFF decompression bomb",
        "B05",
        "ImageShapeError",
        "image of shape (100000, 100000) has 10000000000 pixels, over the limit",
    ),
    BadField(
        "PNG decompression bomb",
        "B06",
        "ImageShapeError",
        "image of shape (100000, 100000) has 10000000000 pixels, over the limit",
    ),
    BadField("1x1 image", "B07", "ImageShapeError", "image of 1x1 pixels is too small for a field"),
    BadField("NaN and inf floats", "B10", "ImageReadError", "2 pixel(s) are NaN or infinite"),
    BadField(
        "colour RGB where grayscale expected",
        "B11",
        "ImageShapeError",
        "an RGB colour image of shape (64, 64, 3)",
    ),
    BadField(
        "3-D stack",
        "B12",
        "ImageShapeError",
        "a multi-plane stack (Z, time or channels) of shape (5, 64, 64)",
    ),
    BadField(
        "unsupported pixel type", "C05", "ImageShapeError", "unsupported pixel type complex64"
    ),
]
#: Per-image errors that are about the field, not one file: (kind, well, error, cause).
FIELD_ERRORS = [
    BadField(
        "missing nuclei channel",
        "C01",
        "ImageReadError",
        "has no channel 'w1' (channels found: w2)",
    ),
    BadField(
        "channels of different shapes",
        "C04",
        "ImageShapeError",
        "channels differ in shape: w1 (64, 64), w2 (32, 32)",
    ),
]
#: Odd but usable fields: (kind, image id).
OK_FIELDS = {
    "PNG bytes with a .tif extension": "P1_B03_1",
    "all-black field": "P1_B08_1",
    "saturated field": "P1_B09_1",
    "missing secondary channel": "P1_C02_1",
    "unicode and spaces in the file name": "P1_C03_1",
    "unicode and spaces in the plate folder": f"{UNICODE_PLATE}_A01_1",
    "S3-style special characters in the plate folder": f"{S3_STYLE_PLATE}_A12_1",
}


def _write_bad_experiment(store: LocalStore, files: BadFiles, tmp: Path) -> None:
    write_demo_experiment(store, EXPERIMENT, size=64, fields=1, wells=list(GOOD_WELLS))
    w1_bytes = store.get_bytes(key("P1_A01_s1_w1.tif"))
    w2_bytes = store.get_bytes(key("P1_A01_s1_w2.tif"))
    w1 = read_image(w1_bytes, "w1")
    builders: dict[str, Callable[[], bytes]] = {
        "B01": lambda: files.truncated_tiff(w1),
        "B02": lambda: b"",
        "B04": lambda: b"Plate P1 was imaged on 2026-11-23 by the night shift.\n",
        "B05": lambda: files.tiff_bomb(tmp),
        "B07": lambda: files.tiff(np.full((1, 1), 700, np.uint16)),
        "B10": lambda: files.tiff(_with_nan_and_inf(w1)),
        # two stains (green a different picture): proportional channels would be one stain
        "B11": lambda: files.tiff(
            np.stack([w1, np.rot90(w1) // 2, w1 // 4], axis=-1), photometric="rgb"
        ),
        "B12": lambda: files.tiff(np.stack([w1] * 5), photometric="minisblack"),
        "C05": lambda: files.tiff(w1.astype(np.complex64)),
    }
    for well, build in builders.items():
        store.put_bytes(key(f"P1_{well}_s1_w1.tif"), build())
        store.put_bytes(key(f"P1_{well}_s1_w2.tif"), w2_bytes)
    store.put_bytes(key("P1_B06_s1_w1.png"), files.png_bomb())
    store.put_bytes(key("P1_B06_s1_w2.tif"), w2_bytes)
    # fields about channels
    store.put_bytes(key("P1_C01_s1_w2.tif"), w2_bytes)  # no w1
    store.put_bytes(key("P1_C04_s1_w1.tif"), w1_bytes)
    store.put_bytes(key("P1_C04_s1_w2.tif"), files.tiff(np.ones((32, 32), np.uint16)))
    # odd but usable
    store.put_bytes(key("P1_B03_s1_w1.tif"), files.png(w1))  # PNG bytes, .tif name
    store.put_bytes(key("P1_B03_s1_w2.tif"), w2_bytes)
    black = files.tiff(np.zeros_like(w1))
    store.put_bytes(key("P1_B08_s1_w1.tif"), black)
    store.put_bytes(key("P1_B08_s1_w2.tif"), black)
    saturated = w1.copy()
    saturated[: w1.shape[0] // 2] = np.iinfo(w1.dtype).max
    store.put_bytes(key("P1_B09_s1_w1.tif"), files.tiff(saturated))
    store.put_bytes(key("P1_B09_s1_w2.tif"), w2_bytes)
    store.put_bytes(key("P1_C02_s1_w1.tif"), w1_bytes)  # no w2
    store.put_bytes(key("Ünïcode name Ω_C03_s1_w1.tif"), w1_bytes)
    store.put_bytes(key("Ünïcode name Ω_C03_s1_w2.tif"), w2_bytes)
    store.put_bytes(key(f"{UNICODE_PLATE}_A01_s1_w1.tif", UNICODE_PLATE), w1_bytes)
    store.put_bytes(key(f"{UNICODE_PLATE}_A01_s1_w2.tif", UNICODE_PLATE), w2_bytes)
    store.put_bytes(key(f"{S3_STYLE_PLATE}_A12_s1_w1.tif", S3_STYLE_PLATE), w1_bytes)
    # a key the store refuses to read: written around the store, as another tool would
    (store.root / key(BACKSLASH_NAME)).write_bytes(w1_bytes)
    # objects in the prefix that are not images of this experiment
    store.put_bytes(key("notes.txt"), b"not an image")
    store.put_bytes(key(".DS_Store"), b"\x00\x00\x00\x01Bud1")
    store.put_bytes(key("scan 001.tif"), w1_bytes)  # an image whose name says nothing


def _with_nan_and_inf(image: np.ndarray) -> np.ndarray:
    values = image.astype(np.float32) / 65535
    values[3, 3] = np.nan
    values[4, 4] = np.inf
    return values


@dataclass(frozen=True)
class CorpusRun:
    """The one run over the corpus, as the database, the store and the CLI report it."""

    cli: CliOutcome
    settings: Settings
    run: RunInfo
    images: dict[str, ImageRow]
    failures: dict[str, FailureRow]
    report: dict[str, Any]
    manifest: list[dict[str, Any]]


@pytest.fixture(scope="module")
def corpus(
    once: Once,
    bad_files: BadFiles,
    console_script: Callable[[list[str], Path], CliOutcome],
) -> CorpusRun:
    """Write BAD-IMG and run the real ``plateseg run`` on it, once per session."""

    def build(folder: Path) -> dict[str, Any]:
        home = folder / "home"
        _write_bad_experiment(LocalStore(home_settings(home).store_location), bad_files, folder)
        outcome = console_script(["run", EXPERIMENT, "--run-id", RUN_ID, "--workers", "2"], home)
        return {"code": outcome.code, "out": outcome.out, "err": outcome.err}

    folder, outcome = once("bad-images", build)
    settings = home_settings(folder / "home")
    use_settings(settings)
    try:
        store = LocalStore(settings.store_location)
        engine = get_engine()
        return CorpusRun(
            cli=CliOutcome(**outcome),
            settings=settings,
            run=get_run(engine, RUN_ID),
            images={row.image_id: row for row in image_table(engine, RUN_ID)},
            failures={row.item_id: row for row in run_failures(engine, RUN_ID)},
            report=get_json(store, f"runs/{RUN_ID}/lookup-report.json"),
            manifest=get_json(store, f"runs/{RUN_ID}/manifest.json"),
        )
    finally:
        use_settings(None)


def test_the_cli_run_succeeds_with_failures_and_shows_no_traceback(corpus: CorpusRun) -> None:
    failed = len(BAD_FIELDS) + len(FIELD_ERRORS) + 1  # + the backslash key
    assert corpus.cli.code == 10, corpus.cli.err  # EXIT_SOME_IMAGES_FAILED
    assert f"SUCCEEDED_WITH_FAILURES: {len(corpus.images) - failed} fields segmented, " in (
        corpus.cli.out
    )
    assert f"{failed} failed" in corpus.cli.out
    assert "Traceback" not in corpus.cli.out
    [line] = corpus.cli.err.splitlines()  # from the CLI; not a line from any worker process
    assert line.startswith(f"warning: run {RUN_ID}: {failed} of {len(corpus.images)} images failed")
    assert line.endswith(f"plateseg results {EXPERIMENT} --run-id {RUN_ID} --export images.csv")


def test_no_batch_failed_so_the_tolerated_failure_budget_is_untouched(corpus: CorpusRun) -> None:
    run = corpus.run
    assert run.status == "SUCCEEDED_WITH_FAILURES"
    assert run.batches_failed == 0
    assert run.images_failed == len(BAD_FIELDS) + len(FIELD_ERRORS) + 1
    assert all(row.kind == "image" for row in corpus.failures.values())


def test_every_field_of_the_manifest_has_its_row(corpus: CorpusRun) -> None:
    manifest_ids = {f"{i['plate']}_{i['well']}_{i['field']}" for i in corpus.manifest}
    assert set(corpus.images) == manifest_ids
    assert corpus.report["fields"] == len(manifest_ids)


@pytest.mark.parametrize("bad", BAD_FIELDS, ids=[b.kind for b in BAD_FIELDS])
def test_a_bad_file_is_a_per_image_error_naming_the_file(corpus: CorpusRun, bad: BadField) -> None:
    image_id = f"P1_{bad.well}_1"
    failure = corpus.failures[image_id]
    suffix = "png" if bad.kind.startswith("PNG") else "tif"
    assert failure.error == bad.error
    assert failure.cause.startswith(f"{key(f'P1_{bad.well}_s1_w1.{suffix}')}: "), failure.cause
    assert bad.cause in failure.cause
    assert "Traceback" not in failure.cause and "\n" not in failure.cause
    row = corpus.images[image_id]
    assert (row.status, row.error, row.qc_flags, row.mask_key) == (
        "error",
        bad.error,
        "failed",
        None,
    )


@pytest.mark.parametrize("bad", FIELD_ERRORS, ids=[b.kind for b in FIELD_ERRORS])
def test_a_bad_field_is_a_per_image_error_naming_the_field(
    corpus: CorpusRun, bad: BadField
) -> None:
    failure = corpus.failures[f"P1_{bad.well}_1"]
    assert failure.error == bad.error
    assert failure.cause == f"P1_{bad.well}_1: {bad.cause}"


def test_completed_work_is_kept_for_every_good_field(corpus: CorpusRun) -> None:
    store = LocalStore(corpus.settings.store_location)
    reference = corpus.images["P1_A01_1"].object_count
    assert reference > 0
    for well in GOOD_WELLS:
        row = corpus.images[f"P1_{well}_1"]
        assert row.status == "ok" and row.error is None
        assert row.mask_key is not None and store.exists(row.mask_key)
        assert "Mean_Nuclei_AreaShape_Area" in row.metrics or row.object_count == 0
    objects = list(store.list(f"runs/{RUN_ID}/objects/"))
    assert objects, "the per-object Parquet parts of the good fields are written"


@pytest.mark.parametrize("kind", list(OK_FIELDS))
def test_odd_but_usable_fields_are_segmented(corpus: CorpusRun, kind: str) -> None:
    row = corpus.images[OK_FIELDS[kind]]
    assert row.status == "ok", row.cause
    assert OK_FIELDS[kind] not in corpus.failures


def test_a_file_is_decoded_by_its_content_not_its_extension(corpus: CorpusRun) -> None:
    """PNG bytes in a .tif file give exactly the objects of the same pixels as a TIFF."""
    assert corpus.images["P1_B03_1"].object_count == corpus.images["P1_A01_1"].object_count


def test_an_all_black_field_has_no_objects_and_the_empty_flag(corpus: CorpusRun) -> None:
    row = corpus.images["P1_B08_1"]
    assert row.object_count == 0
    assert row.metrics["QC_Empty"] == 1.0
    assert "no_objects" in row.qc_flags.split(",")


def test_a_saturated_field_is_flagged(corpus: CorpusRun) -> None:
    row = corpus.images["P1_B09_1"]
    assert row.metrics["QC_Saturated"] == 1.0
    assert row.metrics["ImageQuality_PercentMaximal_w1"] == pytest.approx(50.0)
    assert "saturated" in row.qc_flags.split(",")
    assert corpus.images["P1_A01_1"].metrics["QC_Saturated"] == 0.0
    assert "saturated" not in corpus.images["P1_A01_1"].qc_flags.split(",")


def test_a_missing_secondary_channel_still_segments_the_nuclei(corpus: CorpusRun) -> None:
    row = corpus.images["P1_C02_1"]
    assert row.channels == {"w1": key("P1_C02_s1_w1.tif")}
    assert row.object_count == corpus.images["P1_A01_1"].object_count


def test_a_key_the_store_refuses_is_a_per_image_error(corpus: CorpusRun) -> None:
    failure = corpus.failures["P1_C06_1"]
    assert failure.error == "ImageReadError"
    assert failure.cause.startswith(f"{key(BACKSLASH_NAME)}: cannot be read: unsafe store key")


def test_unicode_and_spaces_in_keys_work_end_to_end(corpus: CorpusRun) -> None:
    store = LocalStore(corpus.settings.store_location)
    image_id = f"{UNICODE_PLATE}_A01_1"
    row = corpus.images[image_id]
    assert (row.plate, row.well) == (UNICODE_PLATE, "A01")
    assert row.channels["w1"] == key(f"{UNICODE_PLATE}_A01_s1_w1.tif", UNICODE_PLATE)
    assert row.object_count == corpus.images["P1_A01_1"].object_count
    assert row.mask_key == f"runs/{RUN_ID}/masks/{image_id}.tif"
    assert read_image(store.get_bytes(row.mask_key), row.mask_key).max() == row.object_count
    manifest_keys = {k for item in corpus.manifest for k in item["channels"].values()}
    assert key("Ünïcode name Ω_C03_s1_w1.tif") in manifest_keys
    assert corpus.images["P1_C03_1"].channels["w2"] == key("Ünïcode name Ω_C03_s1_w2.tif")


def test_objects_that_are_not_images_of_the_experiment_are_reported_not_failed(
    corpus: CorpusRun,
) -> None:
    assert key("notes.txt") in corpus.report["ignored"]
    assert key(".DS_Store") in corpus.report["ignored"]
    assert corpus.report["unmatched"] == [key("scan 001.tif")]
    assert corpus.report["duplicates"] == []
    for listed in (key("notes.txt"), key(".DS_Store"), key("scan 001.tif")):
        assert all(listed not in item["channels"].values() for item in corpus.manifest)
