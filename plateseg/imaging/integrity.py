"""Is all of a TIFF's image data in the file? Cut-short and zero-filled copies.

A copy that stops early leaves one of two files, and both used to decode as a good image
with fewer nuclei:

- **cut short**: the file ends before the strips (or tiles) its header lists; tifffile
  reads what is there. :func:`check_complete` refuses a page whose strip runs past the
  end of the file, naming the rows that are missing.
- **zero-filled**: the copy tool pre-allocated the file at its full size and was
  interrupted, so the file has the right size but its tail is zero bytes. The rule works
  on the file's bytes, not only the decoded pixels, so that images whose background is
  genuinely 0 are never flagged:

  * the file must end in a run of zero bytes that reaches into the image data (at least
    :data:`MIN_ZERO_RUN` bytes of a strip or tile, or all of a shorter one);
  * a compressed strip or tile made only of zero bytes is never real data (LZW, Deflate,
    PackBits and the rest encode a run of black pixels as non-zero bytes), so such a
    page is refused;
  * an uncompressed page is refused only if its trailing rows are all exactly zero
    while every full row before them has no zero pixel at all: a camera with an offset
    (the usual case: 100 counts or so) never gives a whole row of exact zeros. An
    all-black field, or one whose background is 0, is left alone (it segments with the
    ``QC_Empty`` flag or as an ordinary image);
  * compressed data that ends in the zero bytes and no longer decodes is named as an
    interrupted copy rather than "corrupt";
  * a chain of page headers (IFDs) that leads into the zero bytes means later pages
    were never written (tifffile puts the headers of pages 2+ after the pixels), even
    when tifffile would make a shorter image of what is left.

Both raise an :class:`~plateseg.errors.ImageReadError` naming the key, the rows and, in
a multi-page file, the page, which Segment records as a per-image error.

:func:`check_file_size` refuses a file far larger than the pixels its header declares
(a different file renamed ``.tif``, or a TIFF with a huge appendix).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

from plateseg.errors import ImageReadError

if TYPE_CHECKING:
    import tifffile

__all__ = ["FILE_SIZE_SLACK", "MIN_ZERO_RUN", "check_complete", "check_file_size"]

#: Zero bytes at the end of the file that must fall inside one strip or tile (or all of
#: a shorter one) before the strip counts as zero-filled: compressed streams can end in
#: a zero byte or two (a checksum), never in sixteen.
MIN_ZERO_RUN = 16

#: Metadata allowance of :func:`check_file_size`: a file may exceed twice the size of
#: the pixels its header declares by this much (OME-XML, ImageJ overlays, thumbnails).
FILE_SIZE_SLACK = 16 * 1024 * 1024

_CHUNK = 1 << 16


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size} bytes"


def check_file_size(size: int, declared: int, key: str) -> None:
    """Refuse a file of ``size`` bytes whose header declares only ``declared`` bytes of
    pixels, when it exceeds twice that by more than :data:`FILE_SIZE_SLACK`.

    Raises
    ------
    ImageReadError
    """
    if size > 2 * declared + FILE_SIZE_SLACK:
        raise ImageReadError(
            key,
            f"the file is {_megabytes(size)} but its TIFF header declares only "
            f"{_megabytes(declared)} of pixels: most of the file is not the image "
            "(a different file renamed .tif?)",
        )


def _trailing_zero_start(view: np.ndarray) -> int:
    """Index just after the last non-zero byte (0 when every byte is zero)."""
    end = view.size
    while end > 0:
        start = max(0, end - _CHUNK)
        chunk = view[start:end]
        if chunk.any():
            return start + int(np.flatnonzero(chunk)[-1]) + 1
        end = start
    return 0


def _segment_rows(page: tifffile.TiffPage, index: int, count: int) -> tuple[int, int]:
    """First and one-past-last image row held by strip or tile ``index`` of ``count``."""
    height = int(page.imagelength)
    planes = int(page.samplesperpixel) if int(page.planarconfig) == 2 else 1
    per_plane = max(1, count // max(1, planes))
    local = index % per_plane
    if page.is_tiled:
        across = -(-int(page.imagewidth) // max(1, int(page.tilewidth)))
        first = (local // across) * int(page.tilelength)
        return first, min(first + int(page.tilelength), height)
    rows = int(page.rowsperstrip) or height
    first = local * rows
    return min(first, height), min(first + rows, height)


def _first_missing_row(
    page: tifffile.TiffPage, index: int, offset: int, count: int, total: int, size: int
) -> int:
    """First row of strip or tile ``index`` that a file of ``size`` bytes lacks: exact
    for an uncompressed strip, the strip's first row otherwise."""
    first, end = _segment_rows(page, index, total)
    if int(page.compression) != 1 or page.is_tiled or end <= first or count % (end - first):
        return first
    return first + max(0, size - offset) // (count // (end - first))


#: Whole zero rows at the bottom of an otherwise offset image are taken for an
#: interrupted copy only from this fraction of the image on (below it they are the
#: padding of a registered or stitched field), unless the last written row is cut.
MIN_UNWRITTEN_FRACTION = 0.1


def _zero_tail_rows(rows: np.ndarray, evidence_end: int | None = None) -> int | None:
    """First row of an all-zero tail of ``rows`` (``(N, ...)``, in file order) below rows
    with no zero pixel, or ``None``.

    ``evidence_end`` caps the rows that must hold no zero (tiles: the rows above the
    first tile the zero bytes reach); by default every row before the last non-zero
    one, which the copy may have cut part-way.
    """
    rows = rows.reshape(rows.shape[0], -1)
    filled = np.flatnonzero(rows.any(axis=1))
    if filled.size == 0:  # all black: a field with nothing in it, not a broken copy
        return None
    last = int(filled[-1])
    upto = last if evidence_end is None else min(last, evidence_end)
    if last + 1 >= rows.shape[0] or upto < 1:
        return None
    # The camera's offset is what tells a broken copy from a dark image.
    if not bool(rows[:upto].all()):
        return None
    # ... and a registered or stitched field padded with a few whole zero rows from one
    # with a broken tail: a copy stops mid-row (the last written row ends in zeros) or
    # leaves a large part of the image unwritten.
    cut_mid_row = not bool(rows[last].all())
    unwritten = rows.shape[0] - (last + 1)
    if cut_mid_row or unwritten >= MIN_UNWRITTEN_FRACTION * rows.shape[0]:
        return last + 1
    return None


def _interrupted(key: str, rows: str, why: str) -> ImageReadError:
    return ImageReadError(
        key, f"rows {rows} {why}: the file looks like an interrupted copy (copy it again)"
    )


def _truncated(key: str, size: int, end: int, rows: str) -> ImageReadError:
    return ImageReadError(
        key,
        f"truncated TIFF: the file is {size} bytes but its image data runs to byte {end}; "
        f"rows {rows} are missing (the copy was cut short: copy the file again)",
    )


_ZERO_ROWS = "are all zero while the rows above have no zero pixel (a camera offset)"


def check_complete(data: bytes, tif: tifffile.TiffFile, key: str) -> None:
    """Refuse a TIFF whose first series is cut short or zero-filled at the end.

    Parameters
    ----------
    data : bytes
        The whole file.
    tif : tifffile.TiffFile
        The file, opened on ``data``; its first series is what will be decoded.
    key : str
        Store key, named in the error.

    Raises
    ------
    ImageReadError
        A strip or tile ends past the end of the file ("truncated"); or the file's
        trailing zero bytes fill strips of a compressed page, make it undecodable, or
        are the trailing rows of an image whose other rows hold no zero, or hold the
        headers of further pages ("looks like an interrupted copy").
    """
    series = tif.series[0]
    zero_start = _trailing_zero_start(np.frombuffer(data, np.uint8))
    pages = [page for page in series.pages if page is not None]
    if series.dataoffset is not None and pages:  # uncompressed, one contiguous block
        _check_contiguous(data, series, zero_start, key)
    else:
        for number, page in enumerate(pages):
            where = f" of page {number + 1}" if len(pages) > 1 else ""
            _check_page(data, page, zero_start, where, key)
    _check_page_headers(data, tif, zero_start, key)


def _check_contiguous(
    data: bytes, series: tifffile.TiffPageSeries, zero_start: int, key: str
) -> None:
    """The checks of :func:`check_complete` on a series stored as one block of samples."""
    shape, axes = tuple(int(n) for n in series.shape), str(series.axes)
    start, end = int(series.dataoffset or 0), int(series.dataoffset or 0) + int(series.nbytes)
    y_axis = axes.index("Y") if "Y" in axes else 0
    height = shape[y_axis]
    count = int(np.prod(shape[: y_axis + 1], dtype=np.int64))  # rows of all planes, in order

    def rows(first: int) -> str:
        plane, row = divmod(first, height)
        where = f" of plane {plane + 1}" if count > height else ""
        return f"{row}-{height - 1}{where}"

    if end > len(data):
        raise _truncated(key, len(data), end, rows((len(data) - start) // (series.nbytes // count)))
    if end - max(start, zero_start) < MIN_ZERO_RUN:
        return
    first_zero = _zero_tail_rows(np.asarray(series.asarray()).reshape(count, -1))
    if first_zero is not None:
        raise _interrupted(key, rows(first_zero), _ZERO_ROWS)


def _check_page(
    data: bytes,
    page: tifffile.TiffPage | tifffile.TiffFrame,
    zero_start: int,
    where: str,
    key: str,
) -> None:
    """The checks of :func:`check_complete` on one page stored in strips or tiles."""
    from plateseg.imaging.codecs import is_missing_codec

    geometry = page.keyframe
    if geometry is None:  # a frame without its key page: nothing to check it by
        return
    height, total = int(geometry.imagelength), len(page.dataoffsets)
    segments = [
        (index, int(offset), int(count))
        for index, (offset, count) in enumerate(
            zip(page.dataoffsets, page.databytecounts, strict=False)
        )
        if offset > 0 and count > 0
    ]
    short = [each for each in segments if each[1] + each[2] > len(data)]
    if short:
        first = min(_first_missing_row(geometry, *each, total, len(data)) for each in short)
        end = max(offset + count for _, offset, count in segments)
        raise _truncated(key, len(data), end, f"{first}-{height - 1}{where}")
    touched = [
        (index, offset, count)
        for index, offset, count in segments
        if offset + count - max(offset, zero_start) >= min(count, MIN_ZERO_RUN)
    ]
    if not touched:
        return
    first = min(_segment_rows(geometry, index, total)[0] for index, _, _ in touched)
    size = len(data)
    if int(geometry.compression) != 1 and any(offset >= zero_start for _, offset, _ in touched):
        # A strip or tile of nothing but zero bytes: no codec writes that.
        raise _interrupted(
            key,
            f"{first}-{height - 1}{where}",
            f"run into the file's last {size - zero_start} bytes, which are all zero "
            "(compressed image data never is)",
        )
    try:
        pixels = np.asarray(page.asarray())
    except Exception as exc:
        if is_missing_codec(exc):
            raise
        raise _interrupted(
            key,
            f"{first}-{height - 1}{where}",
            f"end in {size - zero_start} zero bytes and no longer decode ({type(exc).__name__})",
        ) from None
    axes = str(geometry.axes)
    rows = np.moveaxis(pixels, axes.index("Y"), 0) if "Y" in axes else pixels
    first_zero = _zero_tail_rows(rows, first if geometry.is_tiled else None)
    if first_zero is not None:
        raise _interrupted(key, f"{first_zero}-{height - 1}{where}", _ZERO_ROWS)


def _check_page_headers(data: bytes, tif: tifffile.TiffFile, zero_start: int, key: str) -> None:
    """Refuse a file whose chain of page headers (IFDs) runs into its zero-filled tail:
    the pages after it were never copied, whatever tifffile made of the rest."""
    if len(data) - zero_start < MIN_ZERO_RUN:
        return
    form = tif.tiff  # byte order, sizes and struct formats of the file's kind of TIFF
    offset, number, seen = int(tif.pages.first.offset), 1, set()
    while 0 < offset < len(data) and offset not in seen:
        if offset >= zero_start:
            raise ImageReadError(
                key,
                f"the header of page {number} lies in the file's last "
                f"{len(data) - zero_start} bytes, which are all zero: page {number} and any "
                "after it were never written; the file looks like an interrupted copy "
                "(copy it again)",
            )
        seen.add(offset)
        try:
            (tags,) = struct.unpack_from(form.tagnoformat, data, offset)
            at = offset + form.tagnosize + int(tags) * form.tagsize
            (offset,) = struct.unpack_from(form.offsetformat, data, at)
        except struct.error:  # a header running off the end: tifffile reports that
            return
        number += 1
