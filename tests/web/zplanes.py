"""Z-stacked copies of a demo experiment for the Models page tests: each channel of a
field as two planes whose maximum is the demo's image (``halves``), held as one ImageJ
Z-stack file per channel, or as Operetta plane files ``p01``/``p02``."""

from __future__ import annotations

import io

import numpy as np
import tifffile

from plateseg.imaging import read_image, write_tiff
from plateseg.store import Store
from tests.cli.console import halves


def imagej_stack(planes: tuple[np.ndarray, ...]) -> bytes:
    """One ImageJ TIFF holding ``planes`` as a ``ZYX`` stack (as confocal software saves)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.stack(planes), imagej=True, metadata={"axes": "ZYX"})
    return buffer.getvalue()


def _channel_key(source: str, image_id: str, channel: int) -> str:
    plate, well, field = image_id.split("_")
    return f"experiments/{source}/{plate}/{plate}_{well}_s{field}_w{channel}.tif"


def write_stack_files(store: Store, source: str, target: str, image_ids: list[str]) -> None:
    """``target``: the fields ``image_ids`` of ``source`` (ImageXpress names), each channel
    one ImageJ Z-stack file of the same name."""
    for image_id in image_ids:
        for channel in (1, 2):
            key = _channel_key(source, image_id, channel)
            stack = imagej_stack(halves(read_image(store.get_bytes(key), key)))
            store.put_bytes(_channel_key(target, image_id, channel), stack)


def write_plane_files(
    store: Store, source: str, target: str, image_ids: list[str], *, planes: bool = True
) -> None:
    """``target``: the fields ``image_ids`` of ``source`` under Operetta names, as two plane
    files per channel (``planes``) or as the whole image in plane 1 alone."""
    for image_id in image_ids:
        plate, well, field = image_id.split("_")
        stem = f"r{ord(well[0]) - 64:02d}c{int(well[1:]):02d}f{int(field):02d}"
        for channel in (1, 2):
            key = _channel_key(source, image_id, channel)
            pixels = read_image(store.get_bytes(key), key)
            parts = halves(pixels) if planes else (pixels,)
            for plane, part in enumerate(parts, start=1):
                name = f"{stem}p{plane:02d}-ch{channel}sk1fk1fl1.tiff"
                store.put_bytes(f"experiments/{target}/{plate}/{name}", write_tiff(part))
