"""Shelf packing of object windows and the packed distance transform."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import disk

from plateseg.segmentation import declump as classical
from plateseg.segmentation.packing import pack_windows


def test_windows_do_not_overlap_and_map_back() -> None:
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(40):
        y, x = rng.integers(0, 300, 2)
        h, w = rng.integers(1, 30, 2)
        boxes.append((slice(int(y), int(y + h)), slice(int(x), int(x + w))))
    packing = pack_windows(boxes, width=128)
    owner, dy, dx = packing.offsets()
    assert packing.shape[1] == 128
    for index, (box, place) in enumerate(zip(packing.boxes, packing.places, strict=True)):
        assert (owner[place] == index).all()
        assert place[0].start + dy[index] == box[0].start
        assert place[1].start + dx[index] == box[1].start
        grown = (
            slice(place[0].start - 1, place[0].stop + 1),
            slice(place[1].start - 1, place[1].stop + 1),
        )
        ring = owner[grown].copy()
        ring[1:-1, 1:-1] = -1
        assert (ring == -1).all()  # a gap of background around every window
    image = rng.random((330, 330))
    canvas = packing.gather(image)
    np.testing.assert_array_equal(canvas[packing.places[3]], image[boxes[3]])


def test_packed_distance_equals_whole_image_distance() -> None:
    labels = np.zeros((120, 160), np.int32)
    for n, (y, x, r) in enumerate([(30, 30, 12), (80, 100, 20), (30, 120, 8), (95, 30, 15)], 1):
        labels[disk((y, x), r, shape=labels.shape)] = n
    distance, py, px = classical._distance(labels, classical._windows(labels))
    whole = ndi.uniform_filter(ndi.distance_transform_edt(labels > 0).astype(np.float32), 3)
    whole[labels == 0] = 0
    np.testing.assert_allclose(distance, whole, atol=1e-5)
    assert set(labels[py, px].tolist()) == {1, 2, 3, 4}
