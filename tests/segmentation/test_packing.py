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
    packed = classical.packed_distance(labels, classical._windows(labels))
    whole = ndi.uniform_filter(ndi.distance_transform_edt(labels > 0).astype(np.float32), 3)
    whole[labels == 0] = 0
    np.testing.assert_allclose(packed.to_image(labels.shape), whole, atol=1e-5)
    assert packed.ids.tolist() == [1, 2, 3, 4]


def test_declump_splits_only_the_clump_and_reports_areas() -> None:
    labels = np.zeros((100, 160), np.int32)
    labels[disk((50, 40), 15)] = 1
    labels[disk((50, 67), 15)] = 1  # two touching disks: one component
    labels[disk((50, 130), 12)] = 2  # a lone disk
    areas = np.bincount(labels.ravel())
    result = classical.declump(labels.copy(), 2, areas, areas > 0, 5.0, 50.0, 0.05)
    assert result.areas[1] == 0  # the clump's id is gone ...
    assert result.areas[2] == areas[2]  # ... the lone disk is untouched
    pieces = result.areas[3:]
    assert len(pieces) == 2 and pieces.sum() == areas[1]
    assert np.array_equal(np.bincount(result.labels.ravel(), minlength=5), result.areas)
