"""Decode microscopy images from bytes into 2-D arrays, with typed errors.

:func:`read_image` sniffs the format from magic bytes (TIFF, PNG, JPEG), checks the
declared size against ``Settings.max_image_pixels`` *before* decoding (a guard against
decompression bombs), and returns one ``(Y, X)`` plane. Anything unusable raises an
:class:`~plateseg.errors.ImageError` naming the key and the problem, which Segment
turns into a per-image error record.

A grey-scale image saved as RGB or RGBA (all colour channels equal, alpha constant —
how many tools export a single channel, e.g. the DSB 2018 PNGs) is read as that one
grey plane, and so is one stain shown in one colour (the other channels constant, e.g.
DAPI as the blue of a black RGB); a colour image with two differing varying channels is
refused (which holds the nuclei cannot be guessed): save one grey-scale file per channel.
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np

from plateseg.errors import ImageReadError, ImageShapeError, ObjectNotFoundError, StoreKeyError
from plateseg.imaging.codecs import (
    grey_from_colour,
    is_colour_shape,
    is_missing_codec,
    missing_codec_error,
    palette_to_grey,
)
from plateseg.imaging.integrity import FILE_SIZE_SLACK, check_complete, check_file_size
from plateseg.settings import get_settings
from plateseg.store import Store

if TYPE_CHECKING:
    import tifffile

__all__ = [
    "MIN_FIELD_SIDE",
    "STACK",
    "check_field_size",
    "check_plane",
    "decode_failure_reason",
    "get_image_bytes",
    "max_file_bytes",
    "read_image",
    "sniff_format",
    "too_many_pixels",
    "write_tiff",
]

#: Smallest side, in pixels, of a field of view worth segmenting. A nucleus of the
#: classical segmenter's smallest diameter (``min_diameter`` > 1, default 10 px) needs
#: background around it for the threshold and the local-mean check; a 1x1 or 4x4
#: "field" is an export or acquisition mistake, so it is a per-image error rather
#: than a silent "0 objects".
MIN_FIELD_SIDE = 16

_MAGIC = (
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
)
_SUPPORTED_KINDS = "biuf"  # bool, signed, unsigned, float


def sniff_format(data: bytes) -> str | None:
    """``"tiff"``, ``"png"``, ``"jpeg"`` from the leading bytes, or ``None``."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return None


def read_image(
    data: bytes, key: str, max_pixels: int | None = None, *, project: bool = False
) -> np.ndarray:
    """Decode one single-plane image (or, with ``project``, one Z-stack as its maximum
    projection).

    Parameters
    ----------
    data : bytes
        The file's bytes.
    key : str
        Its store key, used in error messages.
    max_pixels : int, optional
        Largest accepted ``Y * X * samples``; default ``get_settings().max_image_pixels``.
    project : bool
        A TIFF holding a stack over one axis that is Z (or pages the file does not name,
        tifffile's ``I``/``Q``) is read as its pixel-wise maximum (the recipe's
        ``planes: "max"``); a stack over channels or time is still refused.

    Returns
    -------
    np.ndarray
        ``(Y, X)`` array in the file's dtype (bool, integer or float) and native byte
        order, singleton dimensions squeezed. Values are never rescaled: a 12-bit
        image stored in 16 bits comes back as ``uint16`` with values up to 4095, and a
        TIFF packed at 12 bits per sample also comes back as ``uint16``.

    Raises
    ------
    ImageReadError
        Empty, truncated or corrupt bytes; unknown format; NaN or infinite pixels; a
        compressed TIFF whose codec is missing (the message names the compression and
        the ``imagecodecs`` package rather than calling the file corrupt); a TIFF cut
        short or zero-filled at the end (an interrupted copy, see
        :mod:`plateseg.imaging.integrity`), or far larger than the pixels it declares.
    ImageShapeError
        Not a single 2-D plane (RGB, stack), larger than ``max_pixels``, empty, or an
        unsupported dtype.

    Notes
    -----
    TIFF is read by tifffile, which decodes LZW, Deflate, Zstd, JPEG, JPEG-XR and
    JPEG 2000 (among others) through the ``imagecodecs`` package, in either byte order
    (``II`` or ``MM``). The first image series of the file is read: a TIFF or OME-TIFF
    holding more than one plane (Z, time or channels) is refused with an
    :class:`~plateseg.errors.ImageShapeError`, never silently cut to one plane (a file
    of channels is read with :func:`plateseg.imaging.stack.read_stack`; a Z-stack is
    projected with ``project``; time series are split first).

    A palette TIFF (``PhotometricInterpretation`` 3: indices plus a 16-bit
    ``ColorMap``) is mapped through its colormap to one grey plane:

    * a grey map whose entries are the identity ramp (``i``, ``256 * i`` or
      ``257 * i`` for index ``i``, on all three channels) returns the indices
      themselves, in their own dtype (``uint8`` for 8-bit indices): the image is
      then exactly an ordinary grey-scale image;
    * any other grey map (red = green = blue) returns the map's values, as
      ``uint16`` (the TIFF map is 16-bit, so no precision is lost);
    * a non-grey map returns each index's colour converted to luminance with the
      ITU-R BT.601 weights (``0.299 R + 0.587 G + 0.114 B``), rounded, as ``uint16``.
    """
    limit = get_settings().max_image_pixels if max_pixels is None else max_pixels
    if not data:
        raise ImageReadError(key, "the file is empty (0 bytes)")
    kind = sniff_format(data)
    if kind is None:
        raise ImageReadError(
            key, f"unknown image format (first bytes {data[:8]!r}); expected TIFF, PNG or JPEG"
        )
    if kind == "tiff":
        array = _read_tiff(data, key, limit, project)
    else:
        array = _read_pillow(data, key, limit, kind)
    return check_plane(array, key)


def _plane_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop singleton axes beyond two: ``(1, 64, 64)`` → ``(64, 64)``, ``(1, 1)`` stays.

    A 1x1 or 1xN image is still one plane (too small, but a plane); only axes of
    length 1 that make a 2-D plane look like a stack are removed.
    """
    dims = list(shape)
    while len(dims) > 2 and 1 in dims:
        dims.remove(1)
    return (1,) * (2 - len(dims)) + tuple(dims) if len(dims) < 2 else tuple(dims)


def too_many_pixels(key: str, shape: tuple[int, ...], limit: int) -> ImageShapeError:
    return ImageShapeError(
        key,
        f"image of shape {shape} has {int(np.prod(shape, dtype=np.int64))} pixels, over the "
        f"limit of {limit} (Settings.max_image_pixels)",
    )


#: Axes of a TIFF series a maximum projection may run over: Z, or pages whose meaning the
#: file does not say (tifffile's ``I`` and ``Q``; a plain multi-page TIFF).
_PROJECTABLE_AXES = "ZIQ"


def _projection_axis(key: str, shape: tuple[int, ...], axes: str) -> int:
    """The one axis of a stack a maximum projection runs over (see ``read_image``).

    Raises
    ------
    ImageShapeError
        The stack runs over channels or time, or over more than one axis.
    """
    stacked = [i for i, size in enumerate(shape) if size > 1 and axes[i : i + 1] not in "YXS"]
    rest = tuple(size for i, size in enumerate(shape) if i not in stacked)
    if len(stacked) == 1 and axes[stacked[0]] in _PROJECTABLE_AXES and len(_plane_shape(rest)) == 2:
        return stacked[0]
    over = ", ".join(f"{axes[i : i + 1] or '?'} ({shape[i]})" for i in stacked)
    raise ImageShapeError(
        key,
        f"a stack over {over} of shape {shape} (axes {axes!r}); a recipe's "
        '"planes": "max" projects a stack over Z only (save channels and timepoints as '
        "separate files)",
    )


def _read_tiff(data: bytes, key: str, limit: int, project: bool = False) -> np.ndarray:
    import tifffile

    # tifffile logs an error for each malformed tag of a broken file; the file is
    # reported here, by key, as a typed error, so those lines would only be noise on
    # the user's terminal (from every worker process).
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    page: tifffile.TiffPage | None = None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            if not tif.pages:
                raise ImageReadError(key, "corrupt or truncated TIFF (no readable image)")
            series = tif.series[0]
            shape = tuple(int(n) for n in series.shape)
            if int(np.prod(shape, dtype=np.int64)) > limit:
                raise too_many_pixels(key, shape, limit)
            plane = _plane_shape(shape)
            colour = is_colour_shape(plane)
            axis = None
            if len(plane) != 2 and not colour:
                if not project:
                    raise _not_a_plane(key, shape)
                axis = _projection_axis(key, shape, str(series.axes))
            check_file_size(len(data), sum(int(each.nbytes) for each in tif.series), key)
            page = series.keyframe
            check_complete(data, tif, key)
            array = np.asarray(series.asarray())
            if axis is not None:
                array = array.max(axis=axis)
            palette = page.photometric == tifffile.PHOTOMETRIC.PALETTE
            colormap = page.colormap if palette else None
    except (ImageReadError, ImageShapeError):
        raise
    except Exception as exc:  # tifffile raises many types on bad bytes
        if page is not None and is_missing_codec(exc):
            raise missing_codec_error(key, page, decode_failure_reason(exc)) from None
        raise ImageReadError(
            key, f"corrupt or truncated TIFF ({decode_failure_reason(exc)})"
        ) from None
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if palette:
        array = palette_to_grey(array, colormap, key)
    if colour:
        array = grey_from_colour(array.reshape(_plane_shape(array.shape)), key)
    return array


def _read_pillow(data: bytes, key: str, limit: int, kind: str) -> np.ndarray:
    from PIL import Image

    if kind == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        # Check the declared size before Pillow parses anything (its own bomb check
        # would raise first, with a message about Pillow's limit, not ours).
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if width * height > limit:
            raise too_many_pixels(key, (height, width), limit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                bands = len(img.getbands())
                shape = (height, width) if bands == 1 else (height, width, bands)
                if height * width * bands > limit:
                    raise too_many_pixels(key, shape, limit)
                if bands != 1 and img.mode not in ("RGB", "RGBA"):
                    raise _not_a_plane(key, shape, mode=img.mode)
                img.load()
                array = np.asarray(img)
    except (ImageReadError, ImageShapeError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageShapeError(
            key,
            f"declared image size is a likely decompression bomb ({decode_failure_reason(exc)})",
        ) from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError...
        raise ImageReadError(
            key, f"corrupt or truncated {kind.upper()} ({decode_failure_reason(exc)})"
        ) from None
    return grey_from_colour(array, key) if array.ndim == 3 else array


#: How a file holding several planes is described: the start of the
#: :class:`~plateseg.errors.ImageShapeError`'s ``problem`` that refuses it.
STACK = "a multi-plane stack (Z, time or channels)"


def _not_a_plane(key: str, shape: tuple[int, ...], mode: str = "") -> ImageShapeError:
    if len(shape) == 3 and shape[-1] in (3, 4):
        what = f"an RGB{'A' if shape[-1] == 4 else ''} colour image"
    elif mode:
        what = f"a multi-band ({mode}) image"
    else:
        what = STACK
    hint = ' (a Z-stack is read as its maximum projection with the recipe\'s "planes": "max")'
    return ImageShapeError(
        key,
        f"{what} of shape {shape}; expected one grey-scale plane per channel file"
        + (hint if what == STACK else ""),
    )


def decode_failure_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def check_plane(array: np.ndarray, key: str) -> np.ndarray:
    array = array.reshape(_plane_shape(tuple(array.shape))) if array.ndim > 2 else array
    if array.ndim != 2:
        raise _not_a_plane(key, tuple(array.shape))
    if array.size == 0:
        raise ImageShapeError(key, f"image of shape {array.shape} has no pixels")
    if array.dtype.kind not in _SUPPORTED_KINDS:
        raise ImageShapeError(key, f"unsupported pixel type {array.dtype}")
    if array.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise ImageReadError(
                key, f"{bad} pixel(s) are NaN or infinite; a float image must be finite"
            )
    return array


def check_field_size(image: np.ndarray, key: str) -> np.ndarray:
    """Return ``image`` if it is large enough to be a field of view, else raise.

    Parameters
    ----------
    image : np.ndarray
        ``(Y, X)`` plane of any dtype.
    key : str
        Its store key or path, named in the error.

    Raises
    ------
    ImageShapeError
        A side is shorter than :data:`MIN_FIELD_SIDE` pixels.
    """
    height, width = image.shape[:2]
    if min(height, width) < MIN_FIELD_SIDE:
        raise ImageShapeError(
            key,
            f"image of {width}x{height} pixels is too small for a field of view "
            f"(at least {MIN_FIELD_SIDE}x{MIN_FIELD_SIDE} pixels)",
        )
    return image


def write_tiff(array: np.ndarray, *, compress: bool = True) -> bytes:
    """Encode a 2-D array as a TIFF (zlib-compressed by default).

    Parameters
    ----------
    array : np.ndarray
        ``(Y, X)`` array, e.g. uint16/uint32 labels.
    compress : bool
        zlib (deflate) compression at level 1, which every TIFF reader decodes: a 2048²
        label image shrinks ~55x in ~70 ms (the default level 6: ~90x in ~140 ms, time
        Segment spends on every field).

    Returns
    -------
    bytes
    """
    import tifffile

    buffer = io.BytesIO()
    if compress:
        tifffile.imwrite(
            buffer,
            np.ascontiguousarray(array),
            compression="zlib",
            compressionargs={"level": TIFF_ZLIB_LEVEL},
        )
    else:
        tifffile.imwrite(buffer, np.ascontiguousarray(array))
    return buffer.getvalue()


#: zlib level of the TIFFs plateseg writes (label images): the fastest.
TIFF_ZLIB_LEVEL = 1


def max_file_bytes(max_pixels: int) -> int:
    """Largest file read as an image of at most ``max_pixels`` pixels: twice the raw size
    at 8 bytes a sample (float64, the widest type read; twice for compression that
    expands, pyramids and thumbnails) plus 16 MiB of metadata.

    >>> max_file_bytes(1000)
    16793216
    """
    return 16 * max_pixels + FILE_SIZE_SLACK


def get_image_bytes(store: Store, key: str, max_pixels: int | None = None) -> bytes:
    """Read an image file's bytes, after checking its size without reading it.

    Parameters
    ----------
    store : Store
    key : str
    max_pixels : int, optional
        Default ``get_settings().max_image_pixels``; files over
        :func:`max_file_bytes` of it are refused before a byte is read.

    Raises
    ------
    ImageReadError
        The object is gone, or its key is one the store refuses (``\\``, ``..``, a
        symbolic link out of a local store).
    ImageShapeError
        The file is larger than any image of ``max_pixels`` pixels can be.
    """
    limit = get_settings().max_image_pixels if max_pixels is None else max_pixels
    try:
        size = store.size(key)
        if size > max_file_bytes(limit):
            raise ImageShapeError(
                key,
                f"the file is {size / 1e9:.2f} GB, more than an image of at most {limit} "
                f"pixels (Settings.max_image_pixels) can take ({max_file_bytes(limit) / 1e9:.2f}"
                " GB); it was not read",
            )
        return store.get_bytes(key)
    except ObjectNotFoundError:
        raise ImageReadError(key, "the image file no longer exists in the store") from None
    except StoreKeyError as exc:  # legal on S3 (e.g. a backslash), refused by the store
        raise ImageReadError(key, f"cannot be read: {exc}") from None
