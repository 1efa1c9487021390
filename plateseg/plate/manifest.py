"""Image metadata from vendor file names, and the manifest of an experiment.

The default pattern reads ImageXpress names, ``<anything>_<Well>_s<field>_w<channel>
[<GUID>].<tif|tiff|png|jpg|jpeg>``::

    P1_B03_s1_w1.tif                                 plate P1, well B03, field 1, w1
    Plate1_a1_s2_w2A1B2C3D4-1111-2222-3333-444455556666.tif   well A01, field 2, w2

Keys look like ``experiments/<experiment_id>/<plate>/<file>``: the plate is the folder
directly under the experiment; for files directly in the experiment folder it is the
text before the well in the file name, else ``"P1"``.

Other instruments have presets (:data:`PRESETS`, chosen by name with
:func:`naming_pattern`), and any regex with named groups works too::

    imagexpress    P1_B03_s1_w1.tif                         (the default)
    operetta       r02c03f01p01-ch1sk1fk1fl1.tiff           Opera Phenix / Operetta
    opera-phenix   (Harmony export; row number 2 → B; planes: see below)
    cellomics      MFGTMP_140206180002_B03f00d0.TIF         (fields from 0; d0 = channel)
    incell         B - 3(fld 1 wv DAPI - DAPI).tif          (channel = excitation name)

Without a ``naming``, the convention is **detected** (:func:`choose_naming`): the preset
that reads every image file of the experiment, when exactly one does; otherwise
ImageXpress, with the reason (how many files each preset reads) in Lookup's report.

Duplicates (the same plate, well, field and channel twice) keep the first key in key
order; the later ones are listed in :attr:`ManifestReport.duplicates` with the key they
collide with, and Lookup refuses such an experiment (which file is the real one is the
scientist's call, not ours). Keys that differ only in a ``plane`` or ``timepoint`` group
(Operetta ``p02``, IN Cell ``z 2``) are not duplicates: the first plane is used and the
others are listed in :attr:`ManifestReport.extra_planes`, or, for a recipe with
``planes: "max"``, kept in :attr:`ManifestItem.planes` for a maximum projection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from plateseg.contracts import ManifestItem
from plateseg.plate.channels import channel_sort_key
from plateseg.plate.naming import (
    IMAGE_SUFFIXES,
    PRESETS,
    compile_naming,
    naming_pattern,
)
from plateseg.store.keys import experiment_prefix

__all__ = [
    "NO_IMAGE_FILES",
    "ImageName",
    "ManifestReport",
    "NamingChoice",
    "build_manifest",
    "choose_naming",
    "parse_key",
]

_WELL = re.compile(r"^([A-Za-z]{1,2})0*(\d{1,3})$")


@dataclass(frozen=True)
class ImageName:
    """Metadata of one image key."""

    plate: str
    well: str
    field: int
    channel: str
    key: str
    plane: str = ""
    timepoint: str = ""


@dataclass
class ManifestReport:
    """Keys that did not become part of the manifest, by reason.

    Attributes
    ----------
    ignored : list of str
        Not images (other suffixes, ``layout.csv``).
    unmatched : list of str
        Image files whose name the pattern does not read.
    duplicates : list of str
        A second key for an already seen plate/well/field/channel (the first is kept).
    duplicate_of : dict of str to str
        Each key of ``duplicates`` → the first key of the same plate/well/field/channel.
    extra_planes : list of str
        Further planes (Z or time) of an already seen channel.
    projected : bool
        The further planes are kept for a maximum projection (else the first is used).
    """

    ignored: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    duplicate_of: dict[str, str] = field(default_factory=dict)
    extra_planes: list[str] = field(default_factory=list)
    projected: bool = False

    @property
    def has_findings(self) -> bool:
        """Whether any key was ignored, unmatched, a duplicate or a further plane."""
        return bool(self.ignored or self.unmatched or self.duplicates or self.extra_planes)

    def summary(self) -> str:
        """One line naming only what was found, e.g. ``"2 ignored (not images), 1
        unmatched name"`` (``"no files ignored"`` when nothing was)."""
        counts = {
            "ignored (not images)": len(self.ignored),
            f"unmatched name{'s' if len(self.unmatched) != 1 else ''}": len(self.unmatched),
            f"duplicate{'s' if len(self.duplicates) != 1 else ''}": len(self.duplicates),
        }
        parts = [f"{count} {what}" for what, count in counts.items() if count]
        if self.extra_planes:
            planes = len(self.extra_planes)
            how = "max-projected"
            if not self.projected:
                how = 'first plane used; recipe "planes": "max" projects them'
            parts.append(f"{planes} extra plane{'s' if planes != 1 else ''} ({how})")
        examples = (self.unmatched + self.duplicates)[:3]
        shown = f" (e.g. {', '.join(examples)})" if examples else ""
        return (", ".join(parts) or "no files ignored") + shown


def normalise_well(row: str, column: str | int) -> str:
    """``("b", "3")`` → ``"B03"``: upper-case row, column zero-padded to 2 digits.

    A numeric row (Opera/Operetta ``r02``) becomes its letter(s): 2 → B, 27 → AA.
    """
    if row.isdigit():
        number = int(row)
        if number < 1:
            raise ValueError(f"row number {row!r} must be >= 1")
        row = chr(ord("A") + number - 1) if number <= 26 else "A" + chr(ord("A") + number - 27)
    return f"{row.upper()}{int(column):02d}"


def parse_key(
    key: str, experiment_id: str, pattern: str | re.Pattern[str] | None = None
) -> ImageName | None:
    """Read plate, well, field and channel from one key; ``None`` if it does not match.

    Parameters
    ----------
    key : str
        ``experiments/<experiment_id>/...``.
    experiment_id : str
    pattern : str or re.Pattern, optional
        A regex with named groups ``well`` (or ``row`` + ``column``), ``channel`` and
        optionally ``plate``, ``field``, ``plane``, ``timepoint`` (keys differing only
        in these two are planes of one image, not duplicates), searched in the path
        below the experiment folder. Default: ImageXpress names
        (:data:`DEFAULT_PATTERN`, file name only).

    Examples
    --------
    >>> name = parse_key("experiments/E1/P2/P2_b3_s1_w1.tif", "E1")
    >>> name.plate, name.well, name.field, name.channel
    ('P2', 'B03', 1, 'w1')
    """
    compiled = compile_naming(pattern)
    base = experiment_prefix(experiment_id)
    if not key.startswith(base):
        return None
    relative = key[len(base) :]
    folders, _, name = relative.rpartition("/")
    match = compiled.match(name) if pattern is None else compiled.search(relative)
    if match is None:
        return None
    groups = {k: v for k, v in match.groupdict().items() if v is not None}
    if "well" in groups:
        parts = _WELL.match(groups["well"])
        if parts is None:
            return None
        well = normalise_well(parts.group(1), parts.group(2))
    elif "row" in groups and "column" in groups and groups["column"].isdigit():
        if groups["row"].isdigit() and not 1 <= int(groups["row"]) <= 32:
            return None
        well = normalise_well(groups["row"], groups["column"])
    else:
        return None
    if groups.get("plate"):
        plate = groups["plate"]
    elif folders:
        plate = folders.split("/")[0]
    else:
        plate = groups.get("prefix") or "P1"
    field_text = groups.get("field", "1")
    if not field_text.isdigit():
        return None
    plane = "/".join(groups[g] for g in ("plane", "timepoint") if g in groups)
    timepoint = groups.get("timepoint", "")
    channel = groups["channel"].lower()
    return ImageName(plate, well, int(field_text), channel, key, plane, timepoint)


def build_manifest(
    keys: Iterable[str],
    experiment_id: str,
    pattern: str | re.Pattern[str] | None = None,
    *,
    project: bool = False,
) -> tuple[list[ManifestItem], ManifestReport]:
    """Group the images of an experiment into fields of view.

    Parameters
    ----------
    keys : iterable of str
        Store keys under ``experiments/<experiment_id>/``.
    experiment_id : str
    pattern : str or re.Pattern, optional
        See :func:`parse_key`.
    project : bool
        Keep the further planes of each channel in :attr:`ManifestItem.planes` (the
        recipe's ``planes: "max"``); otherwise only the first plane is used.

    Returns
    -------
    items : list of ManifestItem
        One per (plate, well, field), sorted by plate, well, field; channels ordered
        ``w1, w2, ..., w10``.
    report : ManifestReport
        Ignored, unmatched and duplicate keys.
    """
    compiled = compile_naming(pattern)
    report = ManifestReport()
    report.projected = project
    groups: dict[tuple[str, str, int], dict[str, str]] = {}
    planes: dict[str, ImageName] = {}  # kept key -> its name
    further: dict[str, list[tuple[str, str]]] = {}  # kept key -> (plane, key) of the others
    for key in sorted(keys):
        if not _is_image(key):
            report.ignored.append(key)
            continue
        parsed = parse_key(key, experiment_id, None if pattern is None else compiled)
        if parsed is None:
            report.unmatched.append(key)
            continue
        channels = groups.setdefault((parsed.plate, parsed.well, parsed.field), {})
        if parsed.channel in channels:
            first = channels[parsed.channel]
            if parsed.plane != planes[first].plane:
                report.extra_planes.append(key)
                if parsed.timepoint == planes[first].timepoint:  # Z only, never over time
                    further.setdefault(first, []).append((parsed.plane, key))
            else:
                report.duplicates.append(key)
                report.duplicate_of[key] = first
            continue
        channels[parsed.channel] = key
        planes[key] = parsed
    items = [
        ManifestItem(
            plate=plate,
            well=well,
            field=field_,
            channels={c: channels[c] for c in sorted(channels, key=channel_sort_key)},
            planes=_further_planes(channels, further) if project else None,
        )
        for (plate, well, field_), channels in sorted(
            groups.items(), key=lambda kv: (kv[0][0], _well_order(kv[0][1]), kv[0][2])
        )
    ]
    return items, report


def _further_planes(
    channels: dict[str, str], further: dict[str, list[tuple[str, str]]]
) -> dict[str, list[str]] | None:
    """Channel → keys of its further planes in plane order (``p2`` before ``p10``), for
    the channels that have some; ``None`` when none has."""
    planes = {
        channel: [k for _, k in sorted(further[key], key=lambda pk: channel_sort_key(pk[0]))]
        for channel, key in channels.items()
        if key in further
    }
    return planes or None


def _well_order(well: str) -> tuple[int, str, int]:
    match = _WELL.match(well)
    if match is None:
        return (0, well, 0)
    return (len(match.group(1)), match.group(1), int(match.group(2)))


#: :attr:`NamingChoice.reason` when an experiment holds no image file at all.
NO_IMAGE_FILES = "no image files to read"
#: Presets tried by :func:`choose_naming`, in order (``opera-phenix`` is ``operetta``).
DETECTABLE = ("imagexpress", "operetta", "cellomics", "incell")


@dataclass(frozen=True)
class NamingChoice:
    """How an experiment's file names are read, and why.

    Attributes
    ----------
    name : str
        The preset used, or ``"custom"`` for a regex given by the caller.
    pattern : str or None
        For :func:`build_manifest` (``None``: ImageXpress).
    detected : bool
        Chosen by detection, not given.
    reason : str
        One line for reports and the UI.
    """

    name: str
    pattern: str | None
    detected: bool
    reason: str


def _is_image(key: str) -> bool:
    """Whether ``key`` names an image file (by extension; ``layout.csv`` is not one)."""
    name = key.rsplit("/", 1)[-1].lower()
    return name.endswith(IMAGE_SUFFIXES) and name != "layout.csv"


def choose_naming(keys: Iterable[str], experiment_id: str, naming: str | None) -> NamingChoice:
    """The naming to read ``keys`` with: ``naming`` when given, else detected.

    Detection tries each preset of :data:`DETECTABLE` on every image file and takes the
    one preset that reads them all. When none or several do, ImageXpress is used (the
    files it cannot read are reported as unmatched, as before) and ``reason`` says how
    many files each preset reads, so the scientist can set ``naming``.

    Raises
    ------
    InputError
        ``naming`` is given but neither a preset nor a usable regex.
    """
    if naming is not None:
        pattern = naming_pattern(naming)
        name = naming.lower() if naming.lower() in PRESETS else "custom"
        return NamingChoice(name, pattern, False, f"naming {name!r} given with the run")
    images = [key for key in keys if _is_image(key)]
    if not images:
        return NamingChoice("imagexpress", None, True, NO_IMAGE_FILES)
    counts: dict[str, int] = {}
    for preset in DETECTABLE:
        pattern = naming_pattern(preset)
        compiled = None if pattern is None else compile_naming(pattern)
        counts[preset] = sum(parse_key(key, experiment_id, compiled) is not None for key in images)
    fits = [preset for preset, count in counts.items() if count == len(images)]
    if len(fits) == 1:
        reason = f"detected: all {len(images)} image files read as {fits[0]}"
        return NamingChoice(fits[0], naming_pattern(fits[0]), True, reason)
    if fits:
        reason = (
            f"several presets read all {len(images)} image files ({', '.join(fits)}); "
            "using imagexpress — set 'naming' to choose"
        )
    else:
        read = ", ".join(f"{preset} {count}" for preset, count in counts.items())
        reason = (
            f"no preset reads all {len(images)} image files (files read: {read}); using "
            "imagexpress — set 'naming' to a preset or a regex"
        )
    return NamingChoice("imagexpress", None, True, reason)
