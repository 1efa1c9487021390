"""A synthetic high-content screening experiment with known ground truth.

:func:`write_demo_experiment` writes one (or more) 96-well plates of two-channel,
16-bit fluorescence fields to a store, laid out as an ImageXpress acquisition::

    experiments/<id>/P1/P1_B03_s1_w1.tif     w1: nuclei (DAPI-like)
    experiments/<id>/P1/P1_B03_s1_w2.tif     w2: cytoplasm (GFP-like)
    experiments/<id>/layout.csv              plate map: well, condition, compound, ...
    truth/<id>/masks/P1_B03_1.tif            uint16 ground-truth nuclear labels
    truth/<id>/counts.json                   {"wells": {"P1_B03": n}, "fields": {...},
                                              "compounds": {"CPD-1": {"ic50": 0.8, ...}}}

The images are meant to look like the real thing to a classical pipeline: elliptical
nuclei of varied size (equivalent diameters 12-30 px) and orientation, some touching
pairs that overlap moderately, texture, an uneven illumination field, Poisson and
read noise, a dose response across the plate, a few dim wells and a few empty wells.

The dose response is a known four-parameter logistic: two compounds (:data:`COMPOUNDS`)
in a ten-point 3-fold dilution series (0.01-197 uM, about half a decade per step), four
replicate rows each, whose expected nuclei per field fall from :data:`NEG_DENSITY` to
``(1 - MAX_KILL) * NEG_DENSITY`` with Hill slope -1 and the compound's IC50. The truth
file records each compound's IC50, Hill slope, top and bottom (nuclei per field), so a
fit of the measured nuclei counts can be checked against it.
Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``: the same
arguments write the same bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from plateseg.imaging import write_tiff
from plateseg.segmentation.filters import gaussian
from plateseg.store import Store, get_json, put_json
from plateseg.store.keys import experiment_prefix, layout_key, truth_counts_key, truth_mask_key

__all__ = [
    "COMPOUNDS",
    "DemoCompound",
    "DemoTruth",
    "FieldTruth",
    "demo_layout",
    "load_truth",
    "render_field",
    "write_demo_experiment",
]

ROWS = "ABCDEFGH"
COLUMNS = range(1, 13)
#: Equivalent nuclear diameters drawn uniformly from this range (pixels).
DIAMETER_RANGE = (12.0, 30.0)
#: Nuclei per 512x512 field in an untreated (negative control) well.
NEG_DENSITY = 70
#: Fraction of the nuclei a compound removes at saturating concentration (and the
#: positive control): the 4PL's bottom is ``(1 - MAX_KILL) * NEG_DENSITY``.
MAX_KILL = 0.65
_CONCENTRATIONS_UM = [0.01 * 3**i for i in range(10)]  # columns 2..11


@dataclass(frozen=True)
class DemoCompound:
    """A compound of the demo plate: its name, the rows of its dilution series and its
    true IC50 (uM) on nuclei per field (Hill slope -1)."""

    name: str
    rows: str
    ic50_um: float


#: The dilution series of the demo plate, with the IC50s a fit should recover.
COMPOUNDS = (DemoCompound("CPD-1", "ABCD", 0.8), DemoCompound("CPD-2", "EFGH", 6.0))


@dataclass(frozen=True)
class FieldTruth:
    """Ground truth of one rendered field.

    Attributes
    ----------
    labels : np.ndarray
        (Y, X) uint16 nuclear labels, 0 = background.
    w1, w2 : np.ndarray
        (Y, X) uint16 nuclei and cytoplasm channel images.
    """

    labels: np.ndarray
    w1: np.ndarray
    w2: np.ndarray

    @property
    def count(self) -> int:
        return int(self.labels.max())


@dataclass
class DemoTruth:
    """What :func:`write_demo_experiment` wrote, and the true nuclei counts.

    Attributes
    ----------
    experiment_id : str
    well_counts : dict of str to int
        ``"P1_B03"`` → nuclei over all fields of that well.
    field_counts : dict of str to int
        ``"P1_B03_1"`` (the manifest ``image_id``) → nuclei in that field.
    image_keys : list of str
        Every image key written, sorted.
    mask_keys : dict of str to str
        ``image_id`` → key of the ground-truth label image.
    empty_wells, dim_wells : list of str
        Wells (``"B03"``) seeded empty / imaged dim, on every plate.
    compounds : dict of str to dict
        Compound name → the true 4PL of its nuclei per field: ``ic50`` (uM),
        ``hill_slope`` (-1), ``top`` and ``bottom`` (nuclei per field at this field size).
    """

    experiment_id: str
    well_counts: dict[str, int] = field(default_factory=dict)
    field_counts: dict[str, int] = field(default_factory=dict)
    image_keys: list[str] = field(default_factory=list)
    mask_keys: dict[str, str] = field(default_factory=dict)
    empty_wells: list[str] = field(default_factory=list)
    dim_wells: list[str] = field(default_factory=list)
    compounds: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "experiment_id": self.experiment_id,
            "wells": self.well_counts,
            "fields": self.field_counts,
            "masks": self.mask_keys,
            "empty_wells": self.empty_wells,
            "dim_wells": self.dim_wells,
            "compounds": self.compounds,
        }


def _well_names() -> list[str]:
    return [f"{row}{col:02d}" for row in ROWS for col in COLUMNS]


def demo_layout() -> list[dict[str, str]]:
    """The plate map of the demo plate: one row per well.

    Column 1 holds negative controls (DMSO, ``control="neg"``), column 12 positive
    controls (staurosporine, ``control="pos"``); columns 2-11 a 3-fold dilution series of
    CPD-1 (rows A-D) or CPD-2 (rows E-H), 0.01-197 uM.
    """
    rows = []
    for well in _well_names():
        row, col = well[0], int(well[1:])
        if col == 1:
            entry = ("DMSO", "DMSO", "0", "neg")
        elif col == 12:
            entry = ("staurosporine", "staurosporine", "1", "pos")
        else:
            name = _compound_of(row).name
            conc = _CONCENTRATIONS_UM[col - 2]
            entry = (f"{name} {conc:.3g} uM", name, f"{conc:.3g}", "")
        rows.append(
            {
                "well": well,
                "condition": entry[0],
                "compound": entry[1],
                "concentration": entry[2],
                "control": entry[3],
            }
        )
    return rows


def _compound_of(row: str) -> DemoCompound:
    return next(compound for compound in COMPOUNDS if row in compound.rows)


def _expected_density(well: str) -> float:
    """Nuclei per 512x512 field: a Hill dose response across columns 2-11, i.e. the 4PL
    ``bottom + (top - bottom) / (1 + conc / IC50)`` with top ``NEG_DENSITY`` and bottom
    ``(1 - MAX_KILL) * NEG_DENSITY``."""
    row, col = well[0], int(well[1:])
    if col == 1:
        return NEG_DENSITY
    if col == 12:
        return NEG_DENSITY * (1.0 - MAX_KILL)
    ic50 = _compound_of(row).ic50_um
    conc = _CONCENTRATIONS_UM[col - 2]
    return NEG_DENSITY * (1.0 - MAX_KILL * conc / (conc + ic50))


def _compound_truth(scale: float) -> dict[str, dict[str, float]]:
    """The true 4PL of each compound's nuclei per field (``scale``: field area / 512²)."""
    top = NEG_DENSITY * scale
    return {
        compound.name: {
            "ic50": compound.ic50_um,
            "hill_slope": -1.0,
            "top": top,
            "bottom": top * (1.0 - MAX_KILL),
        }
        for compound in COMPOUNDS
    }


def _ellipse_axes(rng: np.random.Generator) -> tuple[float, float, float]:
    """Semi-axes (a >= b) and orientation of one nucleus."""
    diameter = rng.uniform(*DIAMETER_RANGE)
    aspect = rng.uniform(1.0, 1.6)
    a = diameter / 2 * np.sqrt(aspect)
    return a, diameter / 2 / np.sqrt(aspect), rng.uniform(0, np.pi)


def _radius_towards(a: float, b: float, theta: float, phi: float) -> float:
    """Distance from an ellipse's centre to its boundary in direction ``phi``."""
    t = phi - theta
    return float(a * b / np.hypot(b * np.cos(t), a * np.sin(t)))


def _place_nuclei(
    rng: np.random.Generator, n: int, size: int
) -> list[tuple[float, float, float, float, float]]:
    """Centres, semi-axes and orientations: separated nuclei plus touching pairs."""
    placed: list[tuple[float, float, float, float, float]] = []
    centres = np.empty((n + 2, 3))  # cy, cx, a of every placed nucleus
    attempts = 0
    while len(placed) < n and attempts < 50 * n + 100:
        attempts += 1
        a, b, theta = _ellipse_axes(rng)
        margin = a + 3
        cy, cx = rng.uniform(margin, size - margin, 2)
        group = [(cy, cx, a, b, theta)]
        if rng.random() < 0.22 and len(placed) + 1 < n:  # a touching pair
            a2, b2, theta2 = _ellipse_axes(rng)
            phi = rng.uniform(0, 2 * np.pi)
            r1 = _radius_towards(a, b, theta, phi)
            r2 = _radius_towards(a2, b2, theta2, phi + np.pi)
            # overlap by 10-30 % of the smaller radius: a visible neck, like real nuclei
            dist = r1 + r2 - min(r1, r2) * rng.uniform(0.1, 0.3)
            cy2, cx2 = cy + dist * np.sin(phi), cx + dist * np.cos(phi)
            if not (a2 + 3 <= cy2 <= size - a2 - 3 and a2 + 3 <= cx2 <= size - a2 - 3):
                continue
            group.append((cy2, cx2, a2, b2, theta2))
        done = centres[: len(placed)]
        if all(
            np.all(np.hypot(done[:, 0] - g[0], done[:, 1] - g[1]) > done[:, 2] + g[2] + 3.0)
            for g in group
        ):
            for g in group:
                centres[len(placed)] = g[:3]
                placed.append(g)
    return placed


def _illumination(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field: vignetting plus a linear gradient, 0.65-1.0."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1) - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    field_ = 1.0 - 0.5 * (yy**2 + xx**2) + 0.12 * (np.cos(angle) * xx + np.sin(angle) * yy)
    return (field_ / field_.max()).astype(np.float32)


def render_field(
    rng: np.random.Generator,
    n_nuclei: int,
    size: int = 512,
    brightness: float = 1.0,
    illum: np.ndarray | None = None,
) -> FieldTruth:
    """Render one two-channel field with ``n_nuclei`` nuclei (fewer if they do not fit).

    Parameters
    ----------
    rng : numpy.random.Generator
    n_nuclei : int
        Nuclei to place; dense fields may hold fewer.
    size : int
        Side of the square field in pixels.
    brightness : float
        Multiplies the stain intensity (dim wells use ~0.35).
    illum : np.ndarray, optional
        (size, size) float32 illumination field (one per microscope); drawn if absent.

    Returns
    -------
    FieldTruth
        uint16 labels and uint16 w1/w2 images, all (size, size).
    """
    nuclei = _place_nuclei(rng, n_nuclei, size) if n_nuclei > 0 else []
    labels = np.zeros((size, size), np.uint16)
    best = np.full((size, size), np.inf, np.float32)  # normalised radius of the owner
    dapi = np.zeros((size, size), np.float32)
    cyto = np.zeros((size, size), np.float32)
    texture = gaussian(rng.standard_normal((size, size)).astype(np.float32), 1.5, truncate=4.0)
    texture *= 0.12 / max(float(texture.std()), 1e-6)
    for index, (cy, cx, a, b, theta) in enumerate(nuclei, start=1):
        level = rng.lognormal(0.0, 0.25)
        reach = int(np.ceil(a * 2.4)) + 2
        y0, y1 = max(0, int(cy) - reach), min(size, int(cy) + reach + 1)
        x0, x1 = max(0, int(cx) - reach), min(size, int(cx) + reach + 1)
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
        cos, sin = np.cos(theta), np.sin(theta)
        u, v = dx * cos + dy * sin, -dx * sin + dy * cos
        rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        inside = rho <= 1.0
        window = (slice(y0, y1), slice(x0, x1))
        owner = inside & (rho < best[window])
        labels[window][owner] = index
        best[window][owner] = rho[owner]
        # projected thickness of an ellipsoid: bright middle, dimmer rim
        profile = level * (0.45 + 0.55 * np.sqrt(np.clip(1.0 - rho**2, 0.0, None))) * inside
        dapi[window] = np.maximum(dapi[window], profile)
        cell = np.clip(1.0 - (rho / rng.uniform(1.8, 2.4)) ** 2, 0.0, None)
        cyto[window] = np.maximum(cyto[window], rng.lognormal(0.0, 0.3) * cell)
    if illum is None:
        illum = _illumination(size, rng)
    dapi = gaussian(dapi * (1.0 + texture), 1.0, truncate=4.0)
    cyto = gaussian(cyto * (1.0 + 2 * texture), 2.0, truncate=4.0)
    w1 = _expose(rng, dapi * brightness * 2600.0, illum, background=180.0)
    w2 = _expose(rng, cyto * brightness * 900.0, illum, background=260.0)
    return FieldTruth(labels=labels, w1=w1, w2=w2)


def _expose(
    rng: np.random.Generator, signal: np.ndarray, illum: np.ndarray, background: float
) -> np.ndarray:
    """Photon counts under uneven illumination: shot noise (Gaussian approximation of
    Poisson, exact enough at these counts), read noise (sd 6) and a camera offset of 100."""
    expected = (signal + np.float32(background)) * illum
    noise = rng.standard_normal(expected.shape, dtype=np.float32)
    noise *= np.sqrt(expected + np.float32(36.0))
    expected += noise
    expected += np.float32(100.0)
    return np.clip(expected, 0, 65535).astype(np.uint16)


def _special_wells(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Three empty and three dim wells, never controls."""
    candidates = [w for w in _well_names() if 2 <= int(w[1:]) <= 11]
    chosen = rng.choice(len(candidates), size=6, replace=False)
    picked = [candidates[i] for i in chosen]
    return sorted(picked[:3]), sorted(picked[3:])


def write_demo_experiment(
    store: Store,
    experiment_id: str = "DEMO-001",
    *,
    plates: int = 1,
    fields: int = 2,
    size: int = 512,
    seed: int = 0,
    wells: Iterable[str] | None = None,
) -> DemoTruth:
    """Write a synthetic 96-well experiment, its plate map and its ground truth.

    Parameters
    ----------
    store : Store
        Where to write (keys under ``experiments/<id>/`` and ``truth/<id>/``).
    experiment_id : str
    plates : int
        Plates ``P1``..``Pn``, each a full 96-well plate.
    fields : int
        Fields (sites) per well.
    size : int
        Side of each square field, pixels; nuclei keep their size, counts scale with area.
    seed : int
        Seed of the one random generator; same arguments, same bytes.
    wells : iterable of str, optional
        Only write these wells (e.g. ``["A01", "B05"]``), for quick tests. The random
        draws of a well do not depend on which other wells are written.

    Returns
    -------
    DemoTruth
    """
    wanted = {w.upper() for w in wells} if wells is not None else None
    empty, dim = _special_wells(np.random.default_rng(seed))
    scale = (size / 512) ** 2
    truth = DemoTruth(
        experiment_id=experiment_id,
        empty_wells=empty,
        dim_wells=dim,
        compounds=_compound_truth(scale),
    )
    illum = _illumination(size, np.random.default_rng([seed, 0]))
    for plate_index in range(1, plates + 1):
        plate = f"P{plate_index}"
        for well_index, well in enumerate(_well_names()):
            if wanted is not None and well not in wanted:
                continue
            rng = np.random.default_rng([seed, plate_index, well_index])
            density = 0.0 if well in empty else _expected_density(well) * scale
            total = 0
            for site in range(1, fields + 1):
                n = int(rng.poisson(density)) if density > 0 else 0
                rendered = render_field(
                    rng, n, size, brightness=0.35 if well in dim else 1.0, illum=illum
                )
                for channel, image in (("w1", rendered.w1), ("w2", rendered.w2)):
                    name = f"{plate}/{plate}_{well}_s{site}_{channel}.tif"
                    key = f"{experiment_prefix(experiment_id)}{name}"
                    store.put_bytes(key, write_tiff(image, compress=False), "image/tiff")
                    truth.image_keys.append(key)
                image_id = f"{plate}_{well}_{site}"
                mask_key = truth_mask_key(experiment_id, image_id)
                store.put_bytes(mask_key, write_tiff(rendered.labels), "image/tiff")
                truth.mask_keys[image_id] = mask_key
                truth.field_counts[image_id] = rendered.count
                total += rendered.count
            truth.well_counts[f"{plate}_{well}"] = total
    truth.image_keys.sort()
    store.put_bytes(layout_key(experiment_id), _layout_csv(), "text/csv")
    put_json(store, truth_counts_key(experiment_id), truth.to_json())
    return truth


def _layout_csv() -> bytes:
    buffer = io.StringIO()
    columns = ["well", "condition", "compound", "concentration", "control"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(demo_layout())
    return buffer.getvalue().encode()


def load_truth(store: Store, experiment_id: str) -> DemoTruth:
    """Read back the ``truth/<id>/counts.json`` that :func:`write_demo_experiment` wrote."""
    data = get_json(store, truth_counts_key(experiment_id))
    return DemoTruth(
        experiment_id=data["experiment_id"],
        well_counts={k: int(v) for k, v in data["wells"].items()},
        field_counts={k: int(v) for k, v in data["fields"].items()},
        mask_keys=dict(data["masks"]),
        empty_wells=list(data["empty_wells"]),
        dim_wells=list(data["dim_wells"]),
        compounds={
            name: {k: float(v) for k, v in params.items()}
            for name, params in data.get("compounds", {}).items()
        },
    )
