"""Multi-channel fields in one file: multi-page and OME-TIFF stacked to ``(C, Y, X)``.

Some instruments and exports write every channel of a field into one TIFF (one page
per channel, or an OME-TIFF with ``CYX`` axes). :func:`read_stack` reads such a file
into a ``(C, Y, X)`` array with the same guards as
:func:`~plateseg.imaging.read_image`: the declared size is checked against
``Settings.max_image_pixels`` before decoding, and every problem is an
:class:`~plateseg.errors.ImageError` naming the file. Single-plane files (TIFF, PNG,
JPEG) come back as ``(1, Y, X)``.
"""

from __future__ import annotations

import io

import numpy as np

from plateseg.errors import ImageReadError, ImageShapeError

__all__ = ["CHANNEL_AXES", "read_stack"]

#: tifffile axis codes read as channels: C channel, S sample, I/Q generic pages.
CHANNEL_AXES = "CSIQ"


def read_stack(data: bytes, key: str, max_pixels: int | None = None) -> np.ndarray:
    """Decode a file holding one field's channels.

    Parameters
    ----------
    data : bytes
    key : str
        Store key or path, named in every error.
    max_pixels : int, optional
        Largest accepted ``C * Y * X``; default ``Settings.max_image_pixels``.

    Returns
    -------
    np.ndarray
        ``(C, Y, X)`` in the file's dtype.

    Raises
    ------
    ImageReadError
        Empty, corrupt or truncated bytes; a TIFF cut short or zero-filled at the end
        (an interrupted copy), or far larger than the pixels it declares; NaN or
        infinite pixels.
    ImageShapeError
        Z-stacks or time series (more than one plane per channel), too many pixels,
        empty planes, an unsupported dtype.
    """
    from plateseg.imaging import (
        check_plane,
        decode_failure_reason,
        read_image,
        sniff_format,
        too_many_pixels,
    )
    from plateseg.imaging.codecs import is_missing_codec, missing_codec_error, palette_to_grey
    from plateseg.imaging.integrity import check_complete, check_file_size
    from plateseg.settings import get_settings

    limit = get_settings().max_image_pixels if max_pixels is None else max_pixels
    if sniff_format(data) != "tiff":
        return read_image(data, key, limit)[None]
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            if not tif.pages or not tif.series:
                raise ImageReadError(key, "corrupt or truncated TIFF (no readable image)")
            series = tif.series[0]
            shape = tuple(int(n) for n in series.shape)
            axes = str(series.axes)
            if int(np.prod(shape, dtype=np.int64)) > limit:
                raise too_many_pixels(key, shape, limit)
            check_file_size(len(data), sum(int(each.nbytes) for each in tif.series), key)
            page = series.keyframe
            check_complete(data, tif, key)
            try:
                array = np.asarray(series.asarray())
            except Exception as exc:
                if is_missing_codec(exc):
                    raise missing_codec_error(key, page, decode_failure_reason(exc)) from None
                raise
            if page.photometric == tifffile.PHOTOMETRIC.PALETTE:  # as read_image does
                array = palette_to_grey(array, page.colormap, key)
    except (ImageReadError, ImageShapeError):
        raise
    except Exception as exc:  # tifffile raises many types on bad bytes
        raise ImageReadError(key, f"corrupt or truncated TIFF ({exc})") from None
    kept = [(axis, size) for axis, size in zip(axes, shape, strict=True) if size != 1]
    spatial = [axis for axis, _ in kept if axis in "YX"]
    others = [(axis, size) for axis, size in kept if axis not in "YX"]
    if len(spatial) != 2:
        raise ImageShapeError(key, f"no 2-D plane in a TIFF of shape {shape} (axes {axes})")
    if any(axis not in CHANNEL_AXES for axis, _ in others) or len(others) > 1:
        listed = ", ".join(f"{size} {axis}" for axis, size in others)
        raise ImageShapeError(
            key,
            f"holds more than channels ({listed}; axes {axes}): plateseg segments 2-D "
            "fields, project z-stacks and split time series first",
        )
    squeezed = array.reshape([size for _, size in kept])
    if others:
        position = [axis for axis, _ in kept].index(others[0][0])
        squeezed = np.moveaxis(squeezed, position, 0)
    else:
        squeezed = squeezed[None]
    return np.stack([check_plane(plane, key) for plane in squeezed])
