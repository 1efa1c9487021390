"""What microscopes write: compressed, big-endian, packed, palette and OME TIFFs.

Every file is made here with tifffile (which encodes through imagecodecs) and read back
through :func:`plateseg.imaging.read_image`. Lossless codecs must round-trip exactly;
JPEG, JPEG-XR and JPEG 2000 are written losslessly where the codec allows it, and
their lossy forms are checked within a tolerance.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable

import imagecodecs
import numpy as np
import pytest
import tifffile

from plateseg.errors import ImageReadError, ImageShapeError
from plateseg.imaging import read_image
from tests.imaging.test_imaging import KEY, tiff_bytes

#: Read bytes as if ``import imagecodecs`` failed (see :func:`without_imagecodecs`).
Reader = Callable[[bytes], np.ndarray]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(13)


def plane(rng: np.random.Generator, dtype: type, high: int | None = None) -> np.ndarray:
    """A 24x40 test plane of noise over a gradient, spanning ``dtype`` (or ``0..high``)."""
    if np.dtype(dtype).kind == "f":
        return rng.normal(100.0, 30.0, (24, 40)).astype(dtype)
    top = int(np.iinfo(dtype).max) if high is None else high
    ramp = np.linspace(0, top, 40)[None, :] * np.ones((24, 1))
    noise = rng.integers(-top // 8, top // 8 + 1, (24, 40))
    return np.clip(ramp + noise, 0, top).astype(dtype)


def compression_of(data: bytes) -> int:
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        return int(tif.pages.first.compression)


# --- codecs ----------------------------------------------------------------------------

LOSSLESS = [
    # (compression, dtype, compressionargs, predictor, TIFF Compression tag written)
    ("lzw", np.uint8, None, None, 5),
    ("lzw", np.uint16, None, "horizontal", 5),
    ("lzw", np.float32, None, None, 5),
    ("adobe_deflate", np.uint16, None, None, 8),
    ("adobe_deflate", np.uint16, {"level": 9}, "horizontal", 8),
    ("adobe_deflate", np.float32, None, "floatingpoint", 8),
    ("zstd", np.uint16, None, None, 50000),
    ("zstd", np.float32, {"level": 3}, None, 50000),
    # Lossless JPEG (SOF3, libjpeg-turbo 3) in compression 7: 8-bit grey.
    ("jpeg", np.uint8, {"lossless": True}, None, 7),
    # JPEG-XR at quality level 1.0 is lossless.
    ("jpegxr", np.uint8, {"level": 1.0}, None, 34934),
    ("jpegxr", np.uint16, {"level": 1.0}, None, 34934),
    # JPEG 2000 is lossless (reversible 5/3 wavelet) unless a level is given.
    ("jpeg2000", np.uint8, None, None, 34712),
    ("jpeg2000", np.uint16, None, None, 34712),
]


@pytest.mark.parametrize(
    ("compression", "dtype", "args", "predictor", "tag"),
    LOSSLESS,
    ids=[
        f"{c}-{np.dtype(d).name}{'-' + p if p else ''}{'-' + str(a) if a else ''}"
        for c, d, a, p, _ in LOSSLESS
    ],
)
def test_lossless_compressed_tiff_round_trips_exactly(
    rng: np.random.Generator,
    compression: str,
    dtype: type,
    args: dict[str, object] | None,
    predictor: str | None,
    tag: int,
) -> None:
    array = plane(rng, dtype)
    data = tiff_bytes(
        array,
        photometric="minisblack",
        compression=compression,
        compressionargs=args,
        predictor=predictor,
    )
    assert compression_of(data) == tag  # the file really is compressed that way
    decoded = read_image(data, KEY)
    assert decoded.dtype == np.dtype(dtype) and decoded.shape == (24, 40)
    np.testing.assert_array_equal(decoded, array)


LOSSY = [
    # (compression, dtype, compressionargs, TIFF tag, largest mean absolute error)
    ("jpeg", np.uint8, {"level": 90}, 7, 4.0),
    ("jpegxr", np.uint8, {"level": 0.9}, 34934, 4.0),
    ("jpegxr", np.uint16, {"level": 0.9}, 34934, 4.0 * 257),
    ("jpeg2000", np.uint8, {"level": 40}, 34712, 4.0),
    ("jpeg2000", np.uint16, {"level": 60}, 34712, 4.0 * 257),
]


@pytest.mark.parametrize(
    ("compression", "dtype", "args", "tag", "tolerance"),
    LOSSY,
    ids=[f"{c}-{np.dtype(d).name}" for c, d, *_ in LOSSY],
)
def test_lossy_compressed_tiff_decodes_close_to_what_was_written(
    rng: np.random.Generator,
    compression: str,
    dtype: type,
    args: dict[str, object],
    tag: int,
    tolerance: float,
) -> None:
    array = plane(rng, dtype)
    data = tiff_bytes(
        array, photometric="minisblack", compression=compression, compressionargs=args
    )
    assert compression_of(data) == tag
    decoded = read_image(data, KEY)
    assert decoded.dtype == np.dtype(dtype) and decoded.shape == array.shape
    error = np.abs(decoded.astype(np.float64) - array.astype(np.float64))
    assert error.mean() <= tolerance
    # Lossy, yet the same picture: the gradient across the field survives.
    assert np.corrcoef(decoded.ravel(), array.ravel())[0, 1] > 0.95


# --- bit depths and byte order -----------------------------------------------------------

DEPTHS = [
    ("uint8", np.uint8, None),
    ("uint12-in-uint16", np.uint16, 4095),
    ("uint16", np.uint16, None),
    ("float32", np.float32, None),
]


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["little-endian", "big-endian"])
@pytest.mark.parametrize(("dtype", "high"), [d[1:] for d in DEPTHS], ids=[d[0] for d in DEPTHS])
def test_bit_depths_in_either_byte_order_read_unchanged_in_native_order(
    rng: np.random.Generator, dtype: type, high: int | None, byteorder: str
) -> None:
    array = plane(rng, dtype, high)
    data = tiff_bytes(array, byteorder=byteorder, compression="lzw")
    assert data[:2] == (b"MM" if byteorder == ">" else b"II")
    decoded = read_image(data, KEY)
    assert decoded.dtype == np.dtype(dtype) and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, array)
    if high is not None:  # 12-bit data in 16 bits is not rescaled
        assert decoded.max() == array.max() <= high


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["little-endian", "big-endian"])
def test_packed_12_bit_tiff_reads_as_uint16_without_rescaling(
    rng: np.random.Generator, byteorder: str
) -> None:
    array = plane(rng, np.uint16, 4095)
    data = bytearray(tiff_bytes(array, bitspersample=12, byteorder=byteorder, rowsperstrip=24))
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        assert page.bitspersample == 12 and len(page.dataoffsets) == 1
        start, count = page.dataoffsets[0], page.databytecounts[0]
    # Packed samples are one MSB-first bit stream whatever the byte order. tifffile
    # 2026.3.3 packs a big-endian file's samples byte-swapped (its writer's bug, not
    # the reader's), so the strip is replaced by the correct packing of the plane.
    packed = imagecodecs.packints_encode(array, 12)
    assert count == len(packed) == array.size * 3 // 2  # really packed: 1.5 bytes a pixel
    if byteorder == "<":
        assert data[start : start + count] == packed
    data[start : start + count] = packed
    decoded = read_image(bytes(data), KEY)
    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, array)


# --- OME-TIFF --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "axes"),
    [((24, 40), "YX"), ((1, 24, 40), "CYX"), ((1, 1, 1, 24, 40), "TCZYX")],
    ids=["YX", "one-channel", "TCZYX-all-one"],
)
def test_single_plane_ome_tiff_reads_its_plane(
    rng: np.random.Generator, shape: tuple[int, ...], axes: str
) -> None:
    array = plane(rng, np.uint16).reshape(shape)
    data = tiff_bytes(array, ome=True, metadata={"axes": axes}, compression="zstd")
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        assert tif.is_ome and 'SizeX="40" SizeY="24"' in str(tif.ome_metadata)
    decoded = read_image(data, KEY)
    np.testing.assert_array_equal(decoded, array.reshape(24, 40))


@pytest.mark.parametrize("axes", ["CYX", "ZYX", "TYX"])
def test_multi_plane_ome_tiff_is_refused_not_cut_to_one_plane(
    rng: np.random.Generator, axes: str
) -> None:
    stack = np.stack([plane(rng, np.uint16) for _ in range(3)])
    data = tiff_bytes(stack, ome=True, metadata={"axes": axes}, compression="lzw")
    with pytest.raises(ImageShapeError, match=r"multi-plane stack .* \(3, 24, 40\)") as caught:
        read_image(data, KEY)
    assert caught.value.key == KEY


@pytest.mark.parametrize(
    ("layout", "axes"),
    [
        ({"imagej": True, "metadata": {"axes": "ZYX"}}, "ZYX"),
        ({"ome": True, "metadata": {"axes": "ZYX"}, "compression": "zlib"}, "ZYX"),
        ({"photometric": "minisblack"}, "QYX"),
        ({"photometric": "minisblack", "metadata": None}, "IYX"),
    ],
    ids=["imagej", "ome", "shaped", "pages"],
)
def test_a_z_stack_is_its_maximum_projection_when_asked(
    rng: np.random.Generator, layout: dict[str, object], axes: str
) -> None:
    """The recipe's ``planes: "max"`` for a file holding a Z-stack (or pages the file
    does not name): the pixel-wise maximum, in the file's dtype."""
    stack = np.stack([plane(rng, np.uint16) for _ in range(4)])
    data = tiff_bytes(stack, **layout)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        assert tif.series[0].axes == axes
    projected = read_image(data, KEY, project=True)
    np.testing.assert_array_equal(projected, stack.max(axis=0))
    assert projected.dtype == np.uint16
    with pytest.raises(ImageShapeError, match=r'multi-plane stack .*"planes": "max"\)$'):
        read_image(data, KEY)


@pytest.mark.parametrize("axes", ["CYX", "TYX", "TZYX"])
def test_a_stack_over_channels_or_time_is_never_projected(
    rng: np.random.Generator, axes: str
) -> None:
    shape = (2, 3, 24, 40) if len(axes) == 4 else (3, 24, 40)
    stack = rng.integers(0, 4000, shape).astype(np.uint16)
    data = tiff_bytes(stack, ome=True, metadata={"axes": axes})
    with pytest.raises(ImageShapeError, match=r"a stack over .* projects a stack over Z only"):
        read_image(data, KEY, project=True)


# --- palette TIFFs ---------------------------------------------------------------------


def palette_bytes(indices: np.ndarray, colormap: np.ndarray) -> bytes:
    data = tiff_bytes(indices, photometric="palette", colormap=colormap)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        assert tif.pages.first.photometric == tifffile.PHOTOMETRIC.PALETTE
    return data


@pytest.fixture
def indices(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (24, 40), dtype=np.uint8)


@pytest.mark.parametrize("step", [1, 256, 257])
def test_palette_with_the_identity_grey_ramp_reads_as_its_indices(
    indices: np.ndarray, step: int
) -> None:
    ramp = np.arange(256, dtype=np.uint16) * step
    decoded = read_image(palette_bytes(indices, np.stack([ramp] * 3)), KEY)
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, indices)


def test_palette_with_another_grey_ramp_reads_its_16_bit_values(indices: np.ndarray) -> None:
    # A gamma curve (grey, monotonic, not the identity) reaching the full 16 bits.
    ramp = np.rint(65535 * (np.arange(256) / 255) ** 2.2).astype(np.uint16)
    decoded = read_image(palette_bytes(indices, np.stack([ramp] * 3)), KEY)
    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, ramp[indices])
    assert decoded.max() > 255  # the 16-bit values, not indices


def test_palette_with_colours_reads_as_bt601_luminance() -> None:
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, 1] = (65535, 0, 0)  # red
    colormap[:, 2] = (0, 65535, 0)  # green
    colormap[:, 3] = (0, 0, 65535)  # blue
    colormap[:, 4] = (65535, 65535, 65535)  # white
    colormap[:, 5] = (1000, 2000, 3000)
    indices = np.tile(np.arange(6, dtype=np.uint8), (16, 3))
    decoded = read_image(palette_bytes(indices, colormap), KEY)
    assert decoded.dtype == np.uint16 and decoded.shape == (16, 18)
    # 0.299 R + 0.587 G + 0.114 B, rounded: 19594.965, 38469.045, 7470.99, 65535, 1815.
    np.testing.assert_array_equal(decoded[0, :6], [0, 19595, 38469, 7471, 65535, 1815])
    np.testing.assert_array_equal(decoded, decoded[0, :6][indices])


def test_palette_with_16_bit_indices_maps_every_index(rng: np.random.Generator) -> None:
    indices = rng.integers(0, 65536, (24, 40), dtype=np.uint16)
    colormap = np.stack([np.arange(65536) // 2] * 3).astype(np.uint16)  # grey, not identity
    decoded = read_image(palette_bytes(indices, colormap), KEY)
    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, indices // 2)


# --- a missing codec ---------------------------------------------------------------------


def _no_compression_module(*args: object, **kwargs: object) -> bytes:
    raise ModuleNotFoundError("No module named 'compression'")


@pytest.fixture
def without_imagecodecs() -> Reader:
    """Read through ``read_image`` as tifffile does when ``import imagecodecs`` fails.

    tifffile then binds its pure-Python fallback module in place of imagecodecs (at
    its import; patched here, with its cached codec tables reset). Files must be
    written before reading, since writing needs the real encoders.
    """
    import tifffile.tifffile as module
    from tifffile import _imagecodecs as fallback

    def read(data: bytes) -> np.ndarray:
        with pytest.MonkeyPatch.context() as patch:
            patch.setitem(sys.modules, "imagecodecs", None)  # import imagecodecs fails
            patch.setattr(module, "imagecodecs", fallback)
            patch.setattr(tifffile.TIFF, "DECOMPRESSORS", module.CompressionCodec(encode=False))
            patch.setattr(tifffile.TIFF, "UNPREDICTORS", module.PredictorCodec(encode=False))
            # Zstd falls back to compression.zstd, which Python has only from 3.14.
            patch.setattr(fallback, "zstd_decode", _no_compression_module)
            return read_image(data, KEY)

    return read


MISSING = [
    ("lzw", np.uint16, {}, "LZW-compressed TIFF"),
    ("zstd", np.uint16, {}, "Zstd-compressed TIFF"),
    ("jpeg", np.uint8, {"compressionargs": {"lossless": True}}, "JPEG-compressed TIFF"),
    ("jpegxr", np.uint16, {"compressionargs": {"level": 1.0}}, "JPEG-XR-compressed TIFF"),
    ("jpeg2000", np.uint16, {}, "JPEG 2000-compressed TIFF"),
    (
        "adobe_deflate",
        np.float32,
        {"predictor": "floatingpoint"},
        "Deflate-compressed TIFF with the floatingpoint predictor",
    ),
    (None, np.uint16, {"bitspersample": 12}, "12-bit packed TIFF"),
]


@pytest.mark.parametrize(
    ("compression", "dtype", "options", "what"), MISSING, ids=[m[3] for m in MISSING]
)
def test_a_missing_codec_is_named_not_called_corruption(
    rng: np.random.Generator,
    without_imagecodecs: Reader,
    compression: str | None,
    dtype: type,
    options: dict[str, object],
    what: str,
) -> None:
    high = 4095 if options.get("bitspersample") == 12 else None
    array = plane(rng, dtype, high)
    data = tiff_bytes(array, photometric="minisblack", compression=compression, **options)
    np.testing.assert_array_equal(read_image(data, KEY), array)  # readable with the codec
    with pytest.raises(ImageReadError) as caught:
        without_imagecodecs(data)
    assert caught.value.key == KEY
    assert caught.value.problem.startswith(
        f"{what} needs the imagecodecs package, which is not installed"
    )
    assert "corrupt" not in str(caught.value)


def test_deflate_still_reads_without_imagecodecs(
    rng: np.random.Generator, without_imagecodecs: Reader
) -> None:
    # tifffile's fallback has zlib: the simulated absence removes only what it should.
    array = plane(rng, np.uint16)
    data = tiff_bytes(array, compression="adobe_deflate", predictor="horizontal")
    np.testing.assert_array_equal(without_imagecodecs(data), array)


def test_a_codec_missing_from_an_installed_imagecodecs_says_so(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tifffile.tifffile as module

    data = tiff_bytes(plane(rng, np.uint16), compression="lzw")

    class Partial:  # an imagecodecs build without LZW
        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(module, "imagecodecs", Partial())
    monkeypatch.setattr(tifffile.TIFF, "DECOMPRESSORS", module.CompressionCodec(encode=False))
    with pytest.raises(
        ImageReadError,
        match=rf"^{KEY}: LZW-compressed TIFF needs a codec that the installed imagecodecs "
        "package lacks",
    ):
        read_image(data, KEY)


def test_a_corrupt_compressed_tiff_is_still_corrupt(rng: np.random.Generator) -> None:
    data = bytearray(tiff_bytes(plane(rng, np.uint16), compression="zstd"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        start = tif.pages.first.dataoffsets[0]
    data[start : start + 64] = b"\x00" * 64  # wreck the Zstd frame header
    with pytest.raises(ImageReadError, match="corrupt or truncated TIFF") as caught:
        read_image(bytes(data), KEY)
    assert "imagecodecs" not in caught.value.problem


def test_channel_stacks_read_compressed_and_palette_pages_like_single_planes() -> None:
    from plateseg.imaging.stack import read_stack

    channels = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8) % 4
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, channels.astype(np.uint16) * 1000, compression="lzw")
    np.testing.assert_array_equal(
        read_stack(buffer.getvalue(), KEY), channels.astype(np.uint16) * 1000
    )

    colormap = np.zeros((3, 256), np.uint16)
    colormap[0, :4] = [0, 65535, 0, 0]  # black, red, green, blue
    colormap[1, :4] = [0, 0, 65535, 0]
    colormap[2, :4] = [0, 0, 0, 65535]
    palette = io.BytesIO()
    tifffile.imwrite(palette, channels, photometric="palette", colormap=colormap)
    stack = read_stack(palette.getvalue(), KEY)
    assert stack.shape == (2, 8, 8) and stack.dtype == np.uint16
    expected = np.array([0, 19595, 38469, 7471], np.uint16)[channels]  # BT.601 luminance
    np.testing.assert_allclose(stack, expected, atol=1)
