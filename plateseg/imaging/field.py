"""A field of view read from the store: its channels, each one file or the maximum
projection of its plane files (:attr:`~plateseg.contracts.ManifestItem.planes`) or of
the Z-stack one file holds (the recipe's ``planes: "max"``).

Decoding and its guards are :func:`plateseg.imaging.read_image` and
:func:`plateseg.imaging.get_image_bytes`; this module only assembles fields from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from plateseg.contracts import ManifestItem, Planes
from plateseg.errors import ImageReadError, ImageShapeError
from plateseg.imaging import check_field_size, get_image_bytes, read_image
from plateseg.store import Store

__all__ = ["read_channel", "read_field", "read_projection"]


def read_field(
    store: Store, item: ManifestItem, channels: Iterable[str], *, project: bool = False
) -> dict[str, np.ndarray]:
    """Read the given channels of one field of view; a channel with further planes
    (:attr:`~plateseg.contracts.ManifestItem.planes`) is their maximum projection, and
    with ``project`` (the recipe's ``planes: "max"``) so is a Z-stack in one file.

    Parameters
    ----------
    store : Store
    item : ManifestItem
        The field: its channel name → key map (and further planes).
    channels : iterable of str
        Channel names to read, e.g. ``["w1", "w2"]``.

    Returns
    -------
    dict of str to np.ndarray
        Channel name → ``(Y, X)`` array; all the same shape.

    Raises
    ------
    ImageReadError
        A channel is missing from the item, its object is gone, its key is one the
        store refuses (``\\``, ``..``, a link out of a local store), or decoding
        failed (including a truncated or zero-filled TIFF).
    ImageShapeError
        A file larger than :func:`~plateseg.imaging.max_file_bytes` (refused before it is read), a
        channel is not a plane, is smaller than :data:`~plateseg.imaging.MIN_FIELD_SIDE` pixels on a
        side, or the channels (or the planes of one) differ in shape.
    """
    images: dict[str, np.ndarray] = {}
    for channel in channels:
        if channel not in item.channels:
            raise _no_channel(item, channel)
        images[channel] = read_projection(store, item.plane_keys(channel), project=project)
    shapes = {channel: image.shape for channel, image in images.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{c} {s}" for c, s in shapes.items())
        raise ImageShapeError(item.image_id, f"channels differ in shape: {listed}")
    return images


def _no_channel(item: ManifestItem, channel: str) -> ImageReadError:
    known = ", ".join(sorted(item.channels)) or "none"
    return ImageReadError(item.image_id, f"has no channel {channel!r} (channels found: {known})")


def read_channel(
    store: Store,
    item: ManifestItem,
    channel: str,
    max_pixels: int | None = None,
    *,
    planes: Planes = "first",
) -> np.ndarray:
    """One channel of one field as a run with the recipe's ``planes`` reads it.

    ``"max"``: the maximum projection of the channel's plane files
    (:attr:`~plateseg.contracts.ManifestItem.planes`), a Z-stack in one file counting as
    its projection; ``"first"``: its first plane file alone (further planes ignored, as
    Lookup leaves them out of such a run's manifest), a file holding a Z-stack refused
    with an :class:`ImageShapeError` that names the remedy.

    Returns
    -------
    np.ndarray
        The ``(Y, X)`` channel in its file's dtype.

    Raises
    ------
    ImageReadError
        The item has no such channel, or a file cannot be read.
    ImageShapeError
        See :func:`read_projection`.
    """
    if channel not in item.channels:
        raise _no_channel(item, channel)
    project = planes == "max"
    keys = item.plane_keys(channel) if project else [item.channels[channel]]
    return read_projection(store, keys, max_pixels, project=project)


def read_projection(
    store: Store, keys: Sequence[str], max_pixels: int | None = None, *, project: bool = False
) -> np.ndarray:
    """The image at ``keys[0]``, or the pixel-wise maximum of the planes at ``keys`` (a
    maximum-intensity projection; :attr:`~plateseg.contracts.ManifestItem.planes`); with
    ``project``, a file holding a Z-stack counts as its projection
    (:func:`~plateseg.imaging.read_image`).

    Raises
    ------
    ImageShapeError
        The planes differ in shape or dtype (named by their keys).
    """

    def plane_at(key: str) -> np.ndarray:
        data = get_image_bytes(store, key, max_pixels)
        return check_field_size(read_image(data, key, max_pixels, project=project), key)

    first = plane_at(keys[0])
    projection = first.copy() if len(keys) > 1 else first
    for key in keys[1:]:
        plane = plane_at(key)
        if plane.shape != first.shape or plane.dtype != first.dtype:
            raise ImageShapeError(
                key,
                f"a plane of {plane.shape} {plane.dtype}, unlike its first plane "
                f"{keys[0]} ({first.shape} {first.dtype}): planes of a channel must match "
                "to be projected",
            )
        np.maximum(projection, plane, out=projection)
    return projection
