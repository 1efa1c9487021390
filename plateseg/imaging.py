"""Decode microscopy images from bytes into 2-D arrays, with typed errors.

:func:`read_image` sniffs the format from magic bytes (TIFF, PNG, JPEG), checks the
declared size against ``Settings.max_image_pixels`` *before* decoding (a guard against
decompression bombs), and returns one ``(Y, X)`` plane. Anything unusable raises an
:class:`~plateseg.errors.ImageError` naming the key and the problem, which Segment
turns into a per-image error record.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable

import numpy as np

from plateseg.contracts import ManifestItem
from plateseg.errors import ImageReadError, ImageShapeError, ObjectNotFoundError
from plateseg.settings import get_settings
from plateseg.store import Store

__all__ = ["read_field", "read_image", "sniff_format", "write_tiff"]

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


def read_image(data: bytes, key: str, max_pixels: int | None = None) -> np.ndarray:
    """Decode one single-plane image.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    key : str
        Its store key, used in error messages.
    max_pixels : int, optional
        Largest accepted ``Y * X * samples``; default ``get_settings().max_image_pixels``.

    Returns
    -------
    np.ndarray
        ``(Y, X)`` array in the file's dtype (bool, integer or float), singleton
        dimensions squeezed.

    Raises
    ------
    ImageReadError
        Empty, truncated or corrupt bytes; unknown format; NaN or infinite pixels.
    ImageShapeError
        Not a single 2-D plane (RGB, stack), larger than ``max_pixels``, empty, or an
        unsupported dtype.
    """
    limit = get_settings().max_image_pixels if max_pixels is None else max_pixels
    if not data:
        raise ImageReadError(key, "the file is empty (0 bytes)")
    kind = sniff_format(data)
    if kind is None:
        raise ImageReadError(
            key, f"unknown image format (first bytes {data[:8]!r}); expected TIFF, PNG or JPEG"
        )
    array = _read_tiff(data, key, limit) if kind == "tiff" else _read_pillow(data, key, limit, kind)
    return _check_plane(array, key)


def _too_big(key: str, shape: tuple[int, ...], limit: int) -> ImageShapeError:
    return ImageShapeError(
        key,
        f"image of shape {shape} has {int(np.prod(shape, dtype=np.int64))} pixels, over the "
        f"limit of {limit} (Settings.max_image_pixels)",
    )


def _read_tiff(data: bytes, key: str, limit: int) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            if not tif.pages:
                raise ImageReadError(key, "corrupt or truncated TIFF (no readable image)")
            shape = tuple(int(n) for n in tif.series[0].shape)
            if int(np.prod(shape, dtype=np.int64)) > limit:
                raise _too_big(key, shape, limit)
            squeezed = tuple(n for n in shape if n != 1)
            if len(squeezed) != 2:
                raise _not_a_plane(key, shape)
            array = tif.series[0].asarray()
    except (ImageReadError, ImageShapeError):
        raise
    except Exception as exc:  # tifffile raises many types on bad bytes
        raise ImageReadError(key, f"corrupt or truncated TIFF ({_reason(exc)})") from None
    return np.asarray(array)


def _read_pillow(data: bytes, key: str, limit: int, kind: str) -> np.ndarray:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                bands = len(img.getbands())
                shape = (height, width) if bands == 1 else (height, width, bands)
                if height * width * bands > limit:
                    raise _too_big(key, shape, limit)
                if bands != 1:
                    raise _not_a_plane(key, shape, mode=img.mode)
                img.load()
                array = np.asarray(img)
    except (ImageReadError, ImageShapeError):
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError...
        raise ImageReadError(key, f"corrupt or truncated {kind.upper()} ({_reason(exc)})") from None
    return array


def _not_a_plane(key: str, shape: tuple[int, ...], mode: str = "") -> ImageShapeError:
    if len(shape) == 3 and shape[-1] in (3, 4):
        what = f"an RGB{'A' if shape[-1] == 4 else ''} colour image"
    elif mode:
        what = f"a multi-band ({mode}) image"
    else:
        what = "a multi-plane stack (Z, time or channels)"
    return ImageShapeError(
        key, f"{what} of shape {shape}; expected one grey-scale plane per channel file"
    )


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _check_plane(array: np.ndarray, key: str) -> np.ndarray:
    array = np.squeeze(array)
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


def write_tiff(array: np.ndarray, *, compress: bool = True) -> bytes:
    """Encode a 2-D array as a TIFF (zlib-compressed by default).

    Parameters
    ----------
    array : np.ndarray
        ``(Y, X)`` array, e.g. uint16/uint32 labels.
    compress : bool
        zlib (deflate) compression; labels shrink ~20x.

    Returns
    -------
    bytes
    """
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.ascontiguousarray(array), compression="zlib" if compress else None)
    return buffer.getvalue()


def read_field(store: Store, item: ManifestItem, channels: Iterable[str]) -> dict[str, np.ndarray]:
    """Read the given channels of one field of view.

    Parameters
    ----------
    store : Store
    item : ManifestItem
        The field: its channel name → key map.
    channels : iterable of str
        Channel names to read, e.g. ``["w1", "w2"]``.

    Returns
    -------
    dict of str to np.ndarray
        Channel name → ``(Y, X)`` array; all the same shape.

    Raises
    ------
    ImageReadError
        A channel is missing from the item or its object is gone, or decoding failed.
    ImageShapeError
        A channel is not a plane, or the channels differ in shape.
    """
    images: dict[str, np.ndarray] = {}
    for channel in channels:
        key = item.channels.get(channel)
        if key is None:
            known = ", ".join(sorted(item.channels)) or "none"
            raise ImageReadError(
                item.image_id, f"has no channel {channel!r} (channels found: {known})"
            )
        try:
            data = store.get_bytes(key)
        except ObjectNotFoundError:
            raise ImageReadError(key, "the image file no longer exists in the store") from None
        images[channel] = read_image(data, key)
    shapes = {channel: image.shape for channel, image in images.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{c} {s}" for c, s in shapes.items())
        raise ImageShapeError(item.image_id, f"channels differ in shape: {listed}")
    return images
