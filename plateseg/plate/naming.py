"""File-name conventions of HCS instruments: the presets and the check of a ``naming``.

A leaf (``re`` and :mod:`plateseg.errors` only): the execution input's ``naming`` is
checked here at the edge; :mod:`plateseg.plate.manifest` reads file names with it.
"""

from __future__ import annotations

import re

from plateseg.errors import InputError

__all__ = [
    "DEFAULT_PATTERN",
    "IMAGE_SUFFIXES",
    "PRESETS",
    "compile_naming",
    "naming_pattern",
]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
DEFAULT_PATTERN = (
    r"^(?:(?P<prefix>.*)_)?(?P<well>[A-Za-z]{1,2}\d{1,3})_s(?P<field>\d+)"
    r"_(?P<channel>w\d+)(?:[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4,12})*)?\.(?:tiff?|png|jpe?g)$"
)
_DEFAULT = re.compile(DEFAULT_PATTERN, re.IGNORECASE)

#: File-name presets of common HCS instruments: name → regex (searched in the path below
#: the experiment folder, anchored at the file name).
PRESETS: dict[str, str] = {
    "imagexpress": DEFAULT_PATTERN,
    "operetta": (
        r"(?:^|/)r(?P<row>\d{1,2})c(?P<column>\d{1,2})f(?P<field>\d{1,3})p(?P<plane>\d{1,3})"
        r"-(?P<channel>ch\d+)sk\d+fk\d+fl\d+\.tiff?$"
    ),
    "cellomics": (
        r"(?:^|/)(?P<plate>[^/]+?)_(?P<well>[A-Za-z]{1,2}\d{2})f(?P<field>\d{2,3})"
        r"(?P<channel>d\d{1,2})(?:[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4,12})*)?\.tiff?$"
    ),
    "incell": (
        r"(?:^|/)(?P<row>[A-Za-z]{1,2}) - (?P<column>\d{1,3})\(fld (?P<field>\d+) "
        r"wv (?P<channel>[A-Za-z0-9]+)(?: - [^)]*?)?(?: z (?P<plane>\d+))?"
        r"(?: time (?P<timepoint>\d+) - \d+ ms)?\)"
        r"\.tiff?$"
    ),
}
PRESETS["opera-phenix"] = PRESETS["operetta"]


def naming_pattern(naming: str | None) -> str | None:
    """The regex of a preset name, a user regex as given, or ``None`` (ImageXpress).

    Raises
    ------
    InputError
        ``naming`` is neither a preset nor a regex with the needed named groups.
    """
    if naming is None or naming.lower() == "imagexpress":
        return None
    preset = PRESETS.get(naming.lower())
    if preset is not None:
        return preset
    if "(?P<" not in naming:
        known = ", ".join(sorted(PRESETS))
        raise InputError(
            f"{naming[:60]!r} is neither a preset ({known}) nor a regex with named groups"
        )
    compile_naming(naming)
    return naming


def compile_naming(pattern: str | re.Pattern[str] | None) -> re.Pattern[str]:
    if pattern is None:
        return _DEFAULT
    try:
        compiled = re.compile(pattern, re.IGNORECASE) if isinstance(pattern, str) else pattern
    except re.error as exc:
        raise InputError(f"file-name pattern {pattern!r} is not a valid regex: {exc}") from None
    groups = set(compiled.groupindex)
    if "channel" not in groups or not ("well" in groups or {"row", "column"} <= groups):
        raise InputError(
            f"file-name pattern {compiled.pattern!r} needs named groups 'channel' and "
            "'well' (or 'row' and 'column'); optional: 'plate', 'field'"
        )
    return compiled
