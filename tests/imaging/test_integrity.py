"""Interrupted copies and oversized files are per-image errors, never "ok" images.

The issue's case: a TIFF of the right size whose tail is zeros (a pre-allocated copy
that was interrupted) decoded as an image with a black lower half, and was segmented as
"ok" with 30 nuclei instead of 81. And a 3 GB file named ``.tif`` was read whole into
memory before anything looked at it.
"""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile

from plateseg.contracts import ManifestItem
from plateseg.demo import render_field
from plateseg.errors import ImageReadError, ImageShapeError
from plateseg.imaging import get_image_bytes, max_file_bytes, read_image
from plateseg.imaging.field import read_field
from plateseg.imaging.stack import read_stack
from plateseg.store import LocalStore

KEY = "experiments/E1/P1/P1_B03_s1_w1.tif"
SIDE = 520


@pytest.fixture(scope="module")
def nuclei() -> np.ndarray:
    """A demo nuclei image: 80 nuclei, a camera offset of ~100 counts, no zero pixel."""
    field = render_field(np.random.default_rng(0), 80, SIDE)
    assert field.w1.min() > 0
    return field.w1


def tiff(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack", **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def zero_tail(data: bytes, kept: float) -> bytes:
    """The file a pre-allocated copy leaves when interrupted after ``kept`` of it."""
    cut = int(len(data) * kept)
    return data[:cut] + bytes(len(data) - cut)


def test_the_issue_case_a_zero_filled_uncompressed_tiff_names_the_zero_rows(
    nuclei: np.ndarray,
) -> None:
    data = zero_tail(tiff(nuclei), 0.45)
    with pytest.raises(ImageReadError) as caught:
        read_image(data, KEY)
    assert str(caught.value) == (
        f"{KEY}: rows 234-519 are all zero while the rows above have no zero pixel (a camera "
        "offset): the file looks like an interrupted copy (copy it again)"
    )


@pytest.mark.parametrize("compression", ["zlib", "lzw", "packbits", "zstd"])
@pytest.mark.parametrize("kept", [0.3, 0.7])
def test_a_zero_filled_compressed_tiff_is_an_interrupted_copy(
    nuclei: np.ndarray, compression: str, kept: float
) -> None:
    # PackBits decodes zero bytes without complaint (into black rows): only the bytes
    # show that the strips were never written.
    data = zero_tail(tiff(nuclei, compression=compression, rowsperstrip=64), kept)
    with pytest.raises(ImageReadError, match=r"the file looks like an interrupted copy") as caught:
        read_image(data, KEY)
    assert str(caught.value).startswith(f"{KEY}: rows ")
    assert "-519 " in str(caught.value)


def test_a_zero_filled_tiled_tiff_is_an_interrupted_copy(nuclei: np.ndarray) -> None:
    data = zero_tail(tiff(nuclei[:512, :512], tile=(64, 64)), 0.5)
    with pytest.raises(ImageReadError, match=r"rows 256-511 are all zero"):
        read_image(data, KEY)


def test_a_zero_filled_big_endian_tiff_is_an_interrupted_copy(nuclei: np.ndarray) -> None:
    data = zero_tail(tiff(nuclei.astype(">u2"), byteorder=">"), 0.5)
    assert data.startswith(b"MM")
    with pytest.raises(ImageReadError, match=r"rows 260-519 are all zero"):
        read_image(data, KEY)


def test_a_tiff_cut_short_names_the_missing_rows(nuclei: np.ndarray) -> None:
    data = tiff(nuclei)
    cut = data[: len(data) // 2]
    with pytest.raises(ImageReadError) as caught:
        read_image(cut, KEY)
    assert str(caught.value) == (
        f"{KEY}: truncated TIFF: the file is {len(cut)} bytes but its image data runs to byte "
        f"{len(data)}; rows 259-519 are missing (the copy was cut short: copy the file again)"
    )


def test_a_zero_filled_page_of_a_channel_stack_names_the_page(nuclei: np.ndarray) -> None:
    planes = np.stack([nuclei, nuclei, nuclei])
    data = zero_tail(tiff(planes), 0.9)
    with pytest.raises(ImageReadError, match=r"rows 365-519 of plane 3 are all zero"):
        read_stack(data, KEY, max_pixels=10**7)


def test_an_ome_tiff_whose_later_page_headers_were_never_copied_is_refused(
    nuclei: np.ndarray,
) -> None:
    # tifffile writes the headers of pages 2 and 3 after all the pixels: a zero-filled
    # tail loses them, and the file would otherwise read as fewer channels.
    data = zero_tail(tiff(np.stack([nuclei] * 3), ome=True, metadata={"axes": "CYX"}), 0.999)
    with pytest.raises(ImageReadError) as caught:
        read_stack(data, KEY, max_pixels=10**7)
    assert str(caught.value) == (
        f"{KEY}: the header of page 2 lies in the file's last {len(data) - int(len(data) * 0.999)}"
        " bytes, which are all zero: page 2 and any after it were never written; the file "
        "looks like an interrupted copy (copy it again)"
    )


@pytest.mark.parametrize("compression", [None, "zlib", "packbits"])
def test_images_with_real_zero_rows_are_not_flagged(compression: str | None) -> None:
    black = np.zeros((64, 64), np.uint16)
    assert read_image(tiff(black, compression=compression), KEY).max() == 0
    # A synthetic image with a background of exactly 0 and nothing in its lower half:
    # the file ends in zero bytes, but the rows above have zeros too.
    spots = np.zeros((64, 64), np.uint16)
    spots[10:20, 10:20] = 900
    np.testing.assert_array_equal(read_image(tiff(spots, compression=compression), KEY), spots)


def test_dark_but_not_zero_bottom_rows_of_a_camera_image_are_not_flagged(
    nuclei: np.ndarray,
) -> None:
    dim = nuclei.copy()
    dim[-3:] = 1  # dark but not zero: a real image
    assert read_image(tiff(dim), KEY).shape == (SIDE, SIDE)


def test_a_registered_field_padded_with_a_few_zero_rows_is_not_flagged(
    nuclei: np.ndarray,
) -> None:
    """Channel-shift correction and stitching pad edges with exact zeros: whole rows,
    a few percent of the field. An interrupted copy stops mid-row or leaves much more."""
    shifted = nuclei.copy()
    shifted[-int(0.05 * SIDE) :] = 0
    assert read_image(tiff(shifted), KEY).shape == (SIDE, SIDE)
    cut = nuclei.copy()
    cut[-int(0.05 * SIDE) :] = 0
    cut[-int(0.05 * SIDE) - 1, SIDE // 3 :] = 0  # the last written row stops part-way
    with pytest.raises(ImageReadError, match="interrupted copy"):
        read_image(tiff(cut), KEY)


def test_a_file_far_larger_than_its_header_declares_is_refused(nuclei: np.ndarray) -> None:
    data = tiff(nuclei[:64, :64]) + b"\x01" * (20 * 1024 * 1024)
    with pytest.raises(ImageReadError) as caught:
        read_image(data, KEY)
    assert str(caught.value) == (
        f"{KEY}: the file is 21.0 MB but its TIFF header declares only 8192 bytes of pixels: "
        "most of the file is not the image (a different file renamed .tif?)"
    )


def test_a_3_gb_file_is_refused_from_its_size_without_being_read(
    tmp_path: Path, nuclei: np.ndarray
) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes(KEY, tiff(nuclei))
    with open(store.root / KEY, "r+b") as handle:  # sparse: no 3 GB on the disk
        handle.truncate(3 * 10**9)
    item = ManifestItem(plate="P1", well="B03", field=1, channels={"w1": KEY})
    tracemalloc.start()
    try:
        with pytest.raises(ImageShapeError) as caught:
            read_field(store, item, ["w1"])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024  # nothing like 3 GB was allocated
    limit = 64 * 1024 * 1024
    assert str(caught.value) == (
        f"{KEY}: the file is 3.00 GB, more than an image of at most {limit} pixels "
        f"(Settings.max_image_pixels) can take ({max_file_bytes(limit) / 1e9:.2f} GB); it "
        "was not read"
    )


def test_a_file_within_the_size_limit_is_read_whole(tmp_path: Path, nuclei: np.ndarray) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes(KEY, tiff(nuclei))
    data = get_image_bytes(store, KEY, max_pixels=SIDE * SIDE)
    assert len(data) == store.size(KEY) < max_file_bytes(SIDE * SIDE)
    np.testing.assert_array_equal(read_image(data, KEY), nuclei)
