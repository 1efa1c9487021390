"""The training script of the shipped learned model runs end to end (a short run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plateseg.segmentation.onnx_model import load_model_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("depth", "multiple"), [(3, 8), (4, 16)])
def test_one_short_run_on_two_images_exports_a_valid_model(
    tmp_path: Path, depth: int, multiple: int
) -> None:
    """The shipped architecture (3 poolings) and a deeper one (``--depth 4``, whose tile
    sides must be multiples of 16: the model says so)."""
    out = tmp_path / "quick.onnx"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "train_nuclei_net.py"),
            "--quick",
            "--depth",
            str(depth),
            "--data",
            str(ROOT / "tests" / "data" / "bbbc039"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(summary["validation"]) == {"ap50_pooled", "ap50_mean", "map"}
    model = load_model_bytes("quick", out.read_bytes())
    assert model.kind == "nuclei-3class" and model.diameter == 14.0
    assert model.multiple == multiple


def test_halos_spread_the_light_of_a_brighter_nucleus_around_it() -> None:
    """``--halos``: a chosen nucleus gets 2-6x brighter and part of its light is blurred
    around it (light conserved); the inputs, and so the target, are untouched."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "tools"))
    from train_nuclei_net import add_halos

    yy, xx = np.mgrid[:160, :160]
    labels = ((yy - 80) ** 2 + (xx - 80) ** 2 <= 49).astype(np.int32)
    signal = labels.astype(np.float64)
    rng = np.random.default_rng(0)
    out = add_halos(rng, signal, labels, 14.0)
    while np.array_equal(out, signal):  # this nucleus was not chosen: draw again
        out = add_halos(rng, signal, labels, 14.0)
    assert np.array_equal(labels, signal.astype(np.int32))  # inputs untouched
    assert 2.0 - 1e-6 <= out.sum() / signal.sum() <= 6.0 + 1e-6
    near = (labels == 0) & ((yy - 80) ** 2 + (xx - 80) ** 2 <= 14**2)
    assert out[near].sum() > 0.1 * out.sum()  # a halo: light outside the nucleus
