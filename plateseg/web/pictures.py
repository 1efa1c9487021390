"""The pictures the web draws on request, kept in a bounded cache.

Segment stores label images only; the outline overlay of a run's field and the channel
thumbnails of an experiment are drawn by :mod:`plateseg.web.render` when a browser asks.
Drawing a 2048² field reads and decodes its source image (8 MB) and costs ~0.2 s of CPU,
so the PNGs are kept, least recently used first out, up to :data:`CACHE_BYTES`.

A cached picture is keyed by what it is drawn from, so it is never stale:

* overlay: the source key(s) and size(s), and the SHA-256 of the label mask's bytes (read
  on every request: a run id segmented again gets new masks);
* thumbnail: the source key(s) and size(s);

(several source keys: the planes of a channel, drawn as their maximum projection, as a
run with ``"planes": "max"`` segmented them)

and by the display range asked for (the contrast stretch's percentiles).

>>> cache = PictureCache(max_bytes=10)
>>> cache.get_or_draw(("a",), lambda: b"12345")
b'12345'
>>> cache.get_or_draw(("a",), lambda: b"other")
b'12345'
>>> cache.get_or_draw(("b",), lambda: b"too large to keep")
b'too large to keep'
>>> len(cache)
1
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from plateseg.errors import StoreError
from plateseg.imaging import get_image_bytes, read_image
from plateseg.imaging.field import read_projection
from plateseg.store import Store
from plateseg.web.render import STRETCH_PERCENTILES, overlay_png, thumbnail_png

__all__ = [
    "CACHE_BYTES",
    "PictureCache",
    "Source",
    "field_overlay",
    "field_thumbnail",
    "read_source",
]

#: Bytes of PNG kept: ~60 overlays of a 2048² field, or ~1,000 thumbnails.
CACHE_BYTES = 64 * 2**20


class PictureCache:
    """PNG bytes by key, least recently used dropped beyond ``max_bytes`` (thread-safe).

    Two requests for a picture not yet cached both draw it; the second result is kept.
    A picture larger than ``max_bytes`` is returned and not kept.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes held now (at most ``max_bytes``)."""
        with self._lock:
            return self._bytes

    def get_or_draw(self, key: Hashable, draw: Callable[[], bytes]) -> bytes:
        """The picture cached under ``key``, or ``draw()``'s, kept for next time."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        picture = draw()  # outside the lock: other pictures are served meanwhile
        if len(picture) > self.max_bytes:
            return picture
        with self._lock:
            previous = self._entries.pop(key, None)
            self._bytes -= len(previous) if previous is not None else 0
            self._entries[key] = picture
            self._bytes += len(picture)
            while self._bytes > self.max_bytes:
                _key, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)
        return picture


#: One source image file, or the plane files of one channel as a projecting run read them
#: (a tuple, even of one file: a file holding a Z-stack is projected too).
Source = str | tuple[str, ...]


def _source_size(store: Store, source: Source) -> int | None:
    """The source files' total size for the cache key; ``None`` (draw, do not keep) when
    the store will not say: drawing then raises the error a reader gets for that file."""
    total = 0
    for key in (source,) if isinstance(source, str) else source:
        try:
            total += store.size(key)
        except StoreError:
            return None
    return total


def read_source(store: Store, source: Source, max_pixels: int) -> Any:
    """The image of ``source``: one file as read; a tuple of files (a projecting run's)
    as their maximum projection, a Z-stack file's included."""
    if isinstance(source, str):
        return read_image(get_image_bytes(store, source, max_pixels), source, max_pixels)
    return read_projection(store, source, max_pixels, project=True)


def _draw_kept(cache: PictureCache, key: tuple[object, ...], draw: Callable[[], bytes]) -> bytes:
    return draw() if None in key else cache.get_or_draw(key, draw)


def field_overlay(
    cache: PictureCache,
    store: Store,
    source_key: Source,
    mask: tuple[str, bytes],
    max_pixels: int,
    max_side: int = 1024,
    percentiles: tuple[float, float] = STRETCH_PERCENTILES,
) -> bytes:
    """The outline overlay PNG of one field: its label mask over one of its channels.

    Parameters
    ----------
    cache : PictureCache
    store : Store
    source_key : str or tuple of str
        The channel's image file, or its plane files (drawn as their maximum projection).
    mask : (str, bytes)
        The label mask's key and bytes (read by the caller, which knows what a missing
        mask means).
    max_pixels : int
        Largest source image read (its file size is checked first).
    max_side : int
        Longest side of the PNG.
    percentiles : (float, float)
        The percentiles of the channel drawn black and white
        (:func:`plateseg.web.render.check_percentiles`).

    Raises
    ------
    ImageError
        The source or the mask cannot be read as an image.
    """
    mask_key, mask_bytes = mask
    digest = hashlib.sha256(mask_bytes).hexdigest()
    size = _source_size(store, source_key)
    key = ("overlay", source_key, size, digest, max_side, percentiles)

    def draw() -> bytes:
        image = read_source(store, source_key, max_pixels)
        labels = read_image(mask_bytes, mask_key)
        return overlay_png(image, labels, max_side=max_side, percentiles=percentiles)

    return _draw_kept(cache, key, draw)


def field_thumbnail(
    cache: PictureCache,
    store: Store,
    source_key: Source,
    max_pixels: int,
    max_side: int = 256,
    percentiles: tuple[float, float] = STRETCH_PERCENTILES,
) -> bytes:
    """The grey thumbnail PNG of one channel of one field (see :func:`field_overlay`)."""
    key = ("thumbnail", source_key, _source_size(store, source_key), max_side, percentiles)

    def draw() -> bytes:
        image = read_source(store, source_key, max_pixels)
        return thumbnail_png(image, max_side=max_side, percentiles=percentiles)

    return _draw_kept(cache, key, draw)
