"""``tools/nuclei_data.orientations``: the benchmark's eight views of one annotated image."""

from __future__ import annotations

from types import ModuleType

import numpy as np


def test_orientations_are_the_eight_distinct_views_with_labels_moving_along(
    nuclei_data: ModuleType,
) -> None:
    image = np.arange(6 * 4, dtype=np.uint16).reshape(6, 4)  # no symmetry of its own
    labels = (image % 5 == 0).astype(np.int32) * (1 + image // 5)
    item = nuclei_data.Annotated("field", image, labels, 3.0)

    views = nuclei_data.orientations(item)

    assert len(views) == 8
    assert len({view.image.tobytes() + bytes(view.image.shape) for view in views}) == 8
    assert views[0].name == "field-r0" and np.array_equal(views[0].image, image)
    for view in views:
        assert view.image.flags.c_contiguous and view.diameter == 3.0
        # each label sits on the same pixel value as in the original
        for value in np.unique(labels[labels > 0]):
            assert set(view.image[view.labels == value]) == set(image[labels == value])
