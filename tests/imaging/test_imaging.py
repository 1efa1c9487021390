"""Decoding images from bytes: good formats decode, every bad kind gets its typed error."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from plateseg.contracts import ManifestItem
from plateseg.errors import ImageReadError, ImageShapeError
from plateseg.imaging import read_image, write_tiff
from plateseg.imaging.field import read_field
from plateseg.store import LocalStore

KEY = "experiments/E1/P1/P1_A01_s1_w1.tif"


def tiff_bytes(array: np.ndarray, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG") if mode else Image.fromarray(
        array
    ).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_decodes_in_its_dtype(dtype: type) -> None:
    array = (np.arange(60).reshape(6, 10) * 3).astype(dtype)
    decoded = read_image(tiff_bytes(array), KEY)
    assert decoded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(decoded, array)


def test_singleton_dimensions_are_squeezed() -> None:
    array = np.arange(20, dtype=np.uint16).reshape(1, 4, 5)
    assert read_image(tiff_bytes(array), KEY).shape == (4, 5)


def test_png_8_and_16_bit_decode() -> None:
    eight = np.arange(48, dtype=np.uint8).reshape(6, 8)
    np.testing.assert_array_equal(read_image(png_bytes(eight), "a.png"), eight)
    sixteen = (np.arange(48, dtype=np.uint16) * 1000).reshape(6, 8)
    assert read_image(png_bytes(sixteen), "b.png").max() == 47000


def test_write_tiff_round_trips_labels() -> None:
    labels = np.zeros((40, 50), np.uint16)
    labels[5:10, 5:10] = 1
    labels[20:30, 20:45] = 65000
    data = write_tiff(labels)
    assert len(data) < labels.nbytes / 5  # compressed
    np.testing.assert_array_equal(read_image(data, "mask.tif"), labels)


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", ImageReadError, "empty"),
        (b"\x00\x01garbage bytes that are no image" * 3, ImageReadError, "unknown image format"),
        (b"II*\x00" + bytes(range(256)) * 4, ImageReadError, "corrupt or truncated TIFF"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ImageReadError, "PNG"),
    ],
    ids=["zero-bytes", "random-bytes", "tiff-magic-then-junk", "png-magic-then-junk"],
)
def test_unreadable_bytes(data: bytes, error: type, words: str) -> None:
    with pytest.raises(error) as caught:
        read_image(data, KEY)
    assert caught.value.key == KEY
    assert KEY in str(caught.value) and words in str(caught.value)


def test_truncated_tiff_is_a_read_error() -> None:
    data = tiff_bytes(np.arange(256 * 256, dtype=np.uint16).reshape(256, 256))
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(data[: len(data) // 2], KEY)


def test_declared_size_over_the_limit_is_refused_before_decoding() -> None:
    data = tiff_bytes(np.zeros((100, 100), np.uint16))
    with pytest.raises(ImageShapeError, match=r"10000 pixels, over the limit of 5000"):
        read_image(data, KEY, max_pixels=5000)


def test_png_over_the_limit_is_refused() -> None:
    with pytest.raises(ImageShapeError, match="over the limit"):
        read_image(png_bytes(np.zeros((50, 50), np.uint8)), "x.png", max_pixels=100)


def test_colour_rgb_is_a_shape_error() -> None:
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[2, 3, 2] = 200  # a blue pixel and a red one: a real colour image
    rgb[5, 1, 0] = 90
    with pytest.raises(
        ImageShapeError,
        match=r"RGB colour image of shape \(8, 8, 3\) \(its colour channels differ\)",
    ):
        read_image(tiff_bytes(rgb, photometric="rgb"), KEY)
    with pytest.raises(ImageShapeError, match="RGB"):
        read_image(png_bytes(rgb), "x.png")


@pytest.mark.parametrize("lut", [(0, 0, 1), (0, 1, 1), (1, 0, 1)], ids=["blue", "cyan", "magenta"])
def test_one_stain_in_one_colour_reads_as_that_plane(lut: tuple[int, int, int]) -> None:
    """DAPI exported as the blue of an RGB (the other channels black), or in a two-channel
    colour such as cyan: the varying channels are equal, so the plane is unambiguous."""
    stain = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 3) % 251
    rgb = np.dstack([stain * on for on in lut]).astype(np.uint8)
    for data, key in ((png_bytes(rgb), "x.png"), (tiff_bytes(rgb, photometric="rgb"), KEY)):
        np.testing.assert_array_equal(read_image(data, key), stain)


@pytest.mark.parametrize(
    "lut", [(1.0, 0.647, 0.0), (0.5, 1.0, 0.25), (1.0, 0.0, 0.9)], ids=["orange", "lime", "pink"]
)
def test_one_stain_through_a_linear_colour_table_reads_as_its_widest_channel(
    lut: tuple[float, float, float],
) -> None:
    """A channel exported in an ImageJ-style colour (orange: R = grey, G = round(0.647
    grey)): the varying channels are proportional, so the plane is still unambiguous;
    the channel with the widest range (the most grey levels) is returned."""
    stain = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 4) % 251
    rgb = np.dstack([np.rint(stain * weight) for weight in lut]).astype(np.uint8)
    widest = rgb[..., int(np.argmax(lut))]
    for data, key in ((png_bytes(rgb), "x.png"), (tiff_bytes(rgb, photometric="rgb"), KEY)):
        np.testing.assert_array_equal(read_image(data, key), widest)
    curved = rgb.copy()  # a non-linear table (G = R squared): which plane is meant is unclear
    curved[..., 1] = (rgb[..., 0].astype(np.uint16) ** 2 // 255).astype(np.uint8)
    curved[..., 2] = 0
    with pytest.raises(ImageShapeError, match="its colour channels differ"):
        read_image(png_bytes(curved), "x.png")


def test_grey_saved_as_rgb_or_rgba_reads_as_its_grey_plane() -> None:
    """How many tools export one channel (the DSB 2018 PNGs are RGBA, R = G = B)."""
    grey = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 3) % 251
    rgb = np.dstack([grey] * 3)
    rgba = np.dstack([grey] * 3 + [np.full_like(grey, 255)])
    np.testing.assert_array_equal(read_image(tiff_bytes(rgb, photometric="rgb"), KEY), grey)
    np.testing.assert_array_equal(read_image(png_bytes(rgb), "x.png"), grey)
    np.testing.assert_array_equal(read_image(png_bytes(rgba), "x.png"), grey)
    varying = rgba.copy()
    varying[0, 0, 3] = 0
    with pytest.raises(ImageShapeError, match="alpha channel varies"):
        read_image(png_bytes(varying), "x.png")


def test_stack_is_a_shape_error() -> None:
    stack = np.zeros((5, 8, 8), np.uint16)
    with pytest.raises(ImageShapeError, match=r"multi-plane stack .* \(5, 8, 8\)"):
        read_image(tiff_bytes(stack), KEY)


@pytest.mark.parametrize(
    ("shape", "plane"), [((1, 1), (1, 1)), ((1, 64), (1, 64)), ((1, 1, 1), (1, 1))]
)
def test_a_line_or_a_single_pixel_is_one_small_plane_not_a_stack(
    shape: tuple[int, ...], plane: tuple[int, int]
) -> None:
    assert read_image(tiff_bytes(np.ones(shape, np.uint16)), KEY).shape == plane


def test_png_bomb_is_refused_from_its_header_before_pillow_parses_it() -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    with pytest.raises(ImageShapeError, match=r"\(100000, 100000\) has 10000000000 pixels"):
        read_image(bomb, "bomb.png")


def test_nan_in_a_float_image_is_refused() -> None:
    array = np.ones((6, 6), np.float32)
    array[2, 3] = np.nan
    array[4, 4] = np.inf
    with pytest.raises(ImageReadError, match="2 pixel"):
        read_image(tiff_bytes(array), KEY)


@pytest.fixture
def field_store(tmp_path: object) -> LocalStore:
    store = LocalStore(str(tmp_path))
    store.put_bytes("e/a_w1.tif", tiff_bytes(np.ones((16, 16), np.uint16)))
    store.put_bytes("e/a_w2.tif", tiff_bytes(np.ones((16, 17), np.uint16)))
    store.put_bytes("e/b_w2.tif", tiff_bytes(np.full((16, 16), 7, np.uint16)))
    store.put_bytes("e/tiny_w1.tif", tiff_bytes(np.ones((1, 1), np.uint16)))
    return store


def test_read_field_returns_each_channel(field_store: LocalStore) -> None:
    item = ManifestItem(
        plate="P1", well="A01", field=1, channels={"w1": "e/a_w1.tif", "w2": "e/b_w2.tif"}
    )
    images = read_field(field_store, item, ["w1", "w2"])
    assert list(images) == ["w1", "w2"]
    assert images["w2"].max() == 7


def test_read_field_channels_must_share_a_shape(field_store: LocalStore) -> None:
    item = ManifestItem(
        plate="P1", well="A01", field=1, channels={"w1": "e/a_w1.tif", "w2": "e/a_w2.tif"}
    )
    with pytest.raises(
        ImageShapeError, match=r"channels differ in shape: w1 \(16, 16\), w2 \(16, 17\)"
    ):
        read_field(field_store, item, ["w1", "w2"])


def test_read_field_projects_the_planes_of_a_channel(field_store: LocalStore) -> None:
    """The maximum of every plane, pixel by pixel; channels without planes as read."""
    planes = [np.zeros((16, 16), np.uint16) for _ in range(3)]
    planes[0][2, 3], planes[1][2, 3], planes[2][9, 9] = 5, 40, 12
    for z, plane in enumerate(planes):
        field_store.put_bytes(f"e/z_p0{z + 1}_w1.tif", tiff_bytes(plane))
    item = ManifestItem(
        plate="P1",
        well="A01",
        field=1,
        channels={"w1": "e/z_p01_w1.tif", "w2": "e/b_w2.tif"},
        planes={"w1": ["e/z_p02_w1.tif", "e/z_p03_w1.tif"]},
    )
    images = read_field(field_store, item, ["w1", "w2"])
    np.testing.assert_array_equal(images["w1"], np.maximum.reduce(planes))
    assert images["w1"].dtype == np.uint16
    assert images["w2"].max() == 7


def test_read_field_planes_must_match(field_store: LocalStore) -> None:
    item = ManifestItem(
        plate="P1",
        well="A01",
        field=1,
        channels={"w1": "e/a_w1.tif"},
        planes={"w1": ["e/a_w2.tif"]},
    )
    with pytest.raises(ImageShapeError, match=r"e/a_w2.tif: a plane of \(16, 17\) uint16, unlike"):
        read_field(field_store, item, ["w1"])


def test_read_field_refuses_a_field_smaller_than_the_minimum(field_store: LocalStore) -> None:
    item = ManifestItem(plate="P1", well="A01", field=1, channels={"w1": "e/tiny_w1.tif"})
    with pytest.raises(ImageShapeError, match=r"e/tiny_w1.tif: image of 1x1 pixels is too small"):
        read_field(field_store, item, ["w1"])


def test_read_field_turns_a_key_the_store_refuses_into_a_read_error(
    field_store: LocalStore,
) -> None:
    item = ManifestItem(plate="P1", well="A01", field=1, channels={"w1": "e\\a_w1.tif"})
    with pytest.raises(ImageReadError, match=r"cannot be read: unsafe store key"):
        read_field(field_store, item, ["w1"])


def test_read_field_names_a_missing_channel_and_a_missing_file(field_store: LocalStore) -> None:
    item = ManifestItem(
        plate="P1", well="A01", field=1, channels={"w1": "e/a_w1.tif", "w3": "e/gone.tif"}
    )
    with pytest.raises(
        ImageReadError, match=r"P1_A01_1: has no channel 'w2' \(channels found: w1, w3\)"
    ):
        read_field(field_store, item, ["w1", "w2"])
    with pytest.raises(ImageReadError, match=r"e/gone.tif: the image file no longer exists"):
        read_field(field_store, item, ["w3"])


# --- multi-channel files (plateseg.imaging.stack) ---------------------------------------


def _tiff(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack", **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def test_multipage_and_ome_tiff_stack_channels() -> None:
    from plateseg.imaging.stack import read_stack

    planes = np.arange(3 * 20 * 30, dtype=np.uint16).reshape(3, 20, 30)
    pages = read_stack(_tiff(planes), "multi.tif", max_pixels=10**6)
    assert pages.shape == (3, 20, 30) and pages.dtype == np.uint16
    np.testing.assert_array_equal(pages, planes)
    ome = read_stack(_tiff(planes, ome=True, metadata={"axes": "CYX"}), "f.ome.tif", 10**6)
    np.testing.assert_array_equal(ome, planes)
    assert read_stack(_tiff(planes[0]), "one.tif", max_pixels=10**6).shape == (1, 20, 30)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"II*\x00garbage", ImageReadError, "bad.tif: corrupt or truncated TIFF"),
        (b"", ImageReadError, "bad.tif: the file is empty"),
        (b"GIF89a", ImageReadError, "bad.tif: unknown image format"),
    ],
)
def test_bad_stacks_are_typed_errors(data: bytes, error: type[Exception], message: str) -> None:
    from plateseg.imaging.stack import read_stack

    with pytest.raises(error, match=message):
        read_stack(data, "bad.tif", max_pixels=10**6)


def test_stacks_refuse_z_bombs_and_nan() -> None:
    from plateseg.imaging.stack import read_stack

    zstack = _tiff(np.zeros((2, 4, 16, 16), np.uint16), ome=True, metadata={"axes": "CZYX"})
    with pytest.raises(ImageShapeError, match=r"z.tif: holds more than channels \(2 C, 4 Z"):
        read_stack(zstack, "z.tif", max_pixels=10**6)
    with pytest.raises(ImageShapeError, match=r"big.tif: image of shape .* over the limit"):
        read_stack(_tiff(np.zeros((3, 64, 64), np.uint8)), "big.tif", max_pixels=1000)
    floats = np.zeros((2, 8, 8), np.float32)
    floats[1, 2, 2] = np.nan
    with pytest.raises(ImageReadError, match="nan.tif: 1 pixel"):
        read_stack(_tiff(floats), "nan.tif", max_pixels=10**6)
