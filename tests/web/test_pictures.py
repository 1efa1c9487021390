"""The bounded cache of pictures the web draws from label masks and source images."""

from __future__ import annotations

import doctest
import io
from pathlib import Path

import numpy as np
import pytest
import tifffile

from plateseg.errors import ImageReadError, ImageShapeError
from plateseg.imaging import write_tiff
from plateseg.store import LocalStore
from plateseg.web import pictures
from plateseg.web.pictures import PictureCache, field_overlay, field_thumbnail
from plateseg.web.render import overlay_png, thumbnail_png

MAX_PIXELS = 1 << 24


def test_docstring_examples_hold() -> None:
    result = doctest.testmod(pictures)
    assert result.attempted > 0 and result.failed == 0


def test_least_recently_used_pictures_leave_first_within_the_byte_bound() -> None:
    cache = PictureCache(max_bytes=10)
    cache.get_or_draw("a", lambda: b"aaaa")
    cache.get_or_draw("b", lambda: b"bbbb")
    cache.get_or_draw("a", lambda: b"redrawn")  # a is used again: b is now the oldest
    cache.get_or_draw("c", lambda: b"cccc")
    assert cache.size_bytes == 8 and len(cache) == 2
    assert cache.get_or_draw("a", lambda: b"redrawn") == b"aaaa"
    assert cache.get_or_draw("b", lambda: b"redrawn") == b"redrawn"


@pytest.fixture
def field(tmp_path: Path) -> tuple[LocalStore, np.ndarray, np.ndarray]:
    store = LocalStore(tmp_path)
    image = np.zeros((300, 200), np.uint16)
    labels = np.zeros((300, 200), np.uint16)
    labels[50:80, 50:90] = 1
    image[labels > 0] = 1000
    store.put_bytes("experiments/E/P1/f_w1.tif", write_tiff(image))
    store.put_bytes("runs/r/masks/f.tif", write_tiff(labels))
    return store, image, labels


def _mask(store: LocalStore) -> tuple[str, bytes]:
    return "runs/r/masks/f.tif", store.get_bytes("runs/r/masks/f.tif")


def test_an_overlay_is_drawn_once_and_again_when_its_mask_changes(
    field: tuple[LocalStore, np.ndarray, np.ndarray],
) -> None:
    store, image, labels = field
    cache = PictureCache()
    source = "experiments/E/P1/f_w1.tif"
    first = field_overlay(cache, store, source, _mask(store), MAX_PIXELS)
    assert first == overlay_png(image, labels)
    size = len(store.get_bytes(source))
    store.put_bytes(source, b"x" * size)  # same size, never read again: the overlay is kept
    assert field_overlay(cache, store, source, _mask(store), MAX_PIXELS) == first
    store.put_bytes(source, write_tiff(image))
    labels[150:200, 100:150] = 2  # the run id segmented again: a new mask
    store.put_bytes("runs/r/masks/f.tif", write_tiff(labels))
    assert field_overlay(cache, store, source, _mask(store), MAX_PIXELS) == overlay_png(
        image, labels
    )
    assert len(cache) == 2


def test_a_thumbnail_is_cached_by_source_and_size(
    field: tuple[LocalStore, np.ndarray, np.ndarray],
) -> None:
    store, image, _labels = field
    cache = PictureCache()
    source = "experiments/E/P1/f_w1.tif"
    assert field_thumbnail(cache, store, source, MAX_PIXELS) == thumbnail_png(image)
    assert len(cache) == 1
    store.put_bytes(source, b"replaced by a file of another size")
    with pytest.raises(ImageReadError):
        field_thumbnail(cache, store, source, MAX_PIXELS)


def test_plane_files_are_drawn_as_their_maximum_projection(
    field: tuple[LocalStore, np.ndarray, np.ndarray],
) -> None:
    """A run with ``"planes": "max"`` is drawn as it was segmented."""
    store, image, labels = field
    top, bottom = image.copy(), image.copy()
    top[150:], bottom[:150] = 0, 0
    store.put_bytes("experiments/E/P1/f_p1.tif", write_tiff(top))
    store.put_bytes("experiments/E/P1/f_p2.tif", write_tiff(bottom))
    planes = ("experiments/E/P1/f_p1.tif", "experiments/E/P1/f_p2.tif")
    cache = PictureCache()
    assert field_overlay(cache, store, planes, _mask(store), MAX_PIXELS) == overlay_png(
        image, labels
    )
    assert field_thumbnail(cache, store, planes, MAX_PIXELS) == thumbnail_png(image)
    assert field_thumbnail(cache, store, planes[0], MAX_PIXELS) == thumbnail_png(top)


def test_a_z_stack_file_of_a_projecting_run_is_drawn_as_its_projection(
    field: tuple[LocalStore, np.ndarray, np.ndarray],
) -> None:
    """A projecting run's source is a tuple even of one file: a Z-stack file is drawn as
    the maximum projection Segment measured; as a plain key it is refused as a stack."""
    store, image, labels = field
    top, bottom = image.copy(), image.copy()
    top[150:], bottom[:150] = 0, 0
    data = io.BytesIO()
    tifffile.imwrite(data, np.stack([top, bottom]), imagej=True, metadata={"axes": "ZYX"})
    store.put_bytes("experiments/E/P1/stack_w1.tif", data.getvalue())
    cache = PictureCache()
    source = ("experiments/E/P1/stack_w1.tif",)
    assert field_overlay(cache, store, source, _mask(store), MAX_PIXELS) == overlay_png(
        image, labels
    )
    with pytest.raises(ImageShapeError, match="multi-plane stack"):
        field_thumbnail(cache, store, source[0], MAX_PIXELS)


def test_a_missing_source_is_the_error_a_reader_gets_and_nothing_is_kept(
    field: tuple[LocalStore, np.ndarray, np.ndarray],
) -> None:
    store, _image, _labels = field
    cache = PictureCache()
    with pytest.raises(ImageReadError):
        field_overlay(cache, store, "experiments/E/P1/gone_w1.tif", _mask(store), MAX_PIXELS)
    with pytest.raises(ImageReadError):
        field_thumbnail(cache, store, "experiments/E/P1/gone_w1.tif", MAX_PIXELS)
    assert len(cache) == 0
