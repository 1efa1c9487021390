"""The Map settings have one owner: their defaults (local, and a deployment's where
``cdk.json`` names none) are written in ``plateseg/map_settings.py`` and nowhere else, and
every user renders the definition with them through one function."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plateseg.definition import load_definition
from plateseg.errors import DefinitionError, InputError
from plateseg.map_settings import (
    DEFAULTS,
    DEFINITION_PATH,
    DEPLOYMENT_DEFAULTS,
    MapSettings,
    apply_tunables,
    read_definition,
)

ROOT = Path(__file__).resolve().parents[1]
OWNER = ROOT / "plateseg" / "map_settings.py"

#: Every name a Map setting goes by: the model's, the ASL field's, ``cdk.json``'s and the
#: planning model's. A numeric literal equal to the default under any of them is a copy.
NAMES: dict[str, tuple[str, ...]] = {
    "items_per_batch": ("items_per_batch", "MaxItemsPerBatch", "batch_size", "batch"),
    "max_bytes_per_batch": ("max_bytes_per_batch", "MaxInputBytesPerBatch", "max_bytes"),
    "max_concurrency": ("max_concurrency", "map_max_concurrency", "MaxConcurrency"),
    "tolerated_failure_percentage": ("tolerated_failure_percentage", "ToleratedFailurePercentage"),
    "segment_memory_mb": ("segment_memory_mb", "memory_mb", "memory"),
}


def _sources() -> list[Path]:
    """The code base: the library, stacks, handlers, benchmarks, tools, the CDK app and
    the ASL. ``cdk.json`` is one deployment's explicit choice, not a default, and tests
    state expectations."""
    files = [ROOT / "app.py", *ROOT.glob("statemachines/*.json")]
    for folder in ("plateseg", "stacks", "lambdas", "bench", "tools"):
        files.extend((ROOT / folder).rglob("*.py"))
    return sorted(f for f in files if f.is_file() and f.resolve() != OWNER.resolve())


def _number(value: float) -> str:
    """A regex for ``value`` as a literal: digits with optional ``_``, optional ``.0``."""
    digits = str(int(value))
    return "_?".join(digits) + r"(?:\.0*)?(?![\w.])"


#: Every default: (which defaults, field, value); a deployment's only where they differ.
DEFAULT_VALUES = [("DEFAULTS", field, getattr(DEFAULTS, field)) for field in sorted(NAMES)] + [
    ("DEPLOYMENT_DEFAULTS", field, getattr(DEPLOYMENT_DEFAULTS, field))
    for field in sorted(NAMES)
    if getattr(DEPLOYMENT_DEFAULTS, field) != getattr(DEFAULTS, field)
]


def _patterns(field: str, value: float) -> list[re.Pattern[str]]:
    number = _number(value)
    names = "|".join(NAMES[field])
    return [
        # name = 4, name: int = 4, name=Field(default=4, ...), name: int = Field(4)
        re.compile(
            rf"\b(?:{names})\b\s*(?::[^=\n]*)?=\s*(?:Field\(\s*(?:default\s*=\s*)?)?{number}"
        ),
        # "name": 4 (JSON, dicts)
        re.compile(rf"[\"'](?:{names})[\"']\s*:\s*{number}"),
        # .get("name", 4)
        re.compile(rf"[\"'](?:{names})[\"']\s*,\s*{number}\s*\)"),
    ]


def _copies(field: str, value: float, text: str) -> list[str]:
    patterns = _patterns(field, value)
    return [line.strip() for line in text.splitlines() if any(p.search(line) for p in patterns)]


@pytest.mark.parametrize(("which", "field", "value"), DEFAULT_VALUES)
def test_each_map_default_is_written_once(which: str, field: str, value: float) -> None:
    found = [
        f"{path.relative_to(ROOT)}: {line}"
        for path in _sources()
        for line in _copies(field, value, path.read_text(encoding="utf-8"))
    ]
    assert found == [], (
        f"{which}.{field} ({value!r}) is written again; "
        f"import it from plateseg.map_settings ({which}, MapSettings) instead"
    )


@pytest.mark.parametrize(("which", "field", "value"), DEFAULT_VALUES)
def test_the_scan_finds_the_one_definition(which: str, field: str, value: float) -> None:
    # The patterns match the owner's own line, so a copy written the same way is caught.
    assert len(_copies(field, value, OWNER.read_text(encoding="utf-8"))) == 1, which


@pytest.mark.parametrize(
    "line",
    [
        "    batch_size: int = 4,",
        '        "MaxConcurrency": 16,',
        "    max_bytes_per_batch: int = Field(default=65_536, ge=1)",
        "    tolerated_failure_percentage: float = 10.0",
        '    memory = segment.get("segment_memory_mb", 2048)',
        "    map_max_concurrency: int = Field(default=100, ge=1, le=10_000)",
    ],
)
def test_the_scan_catches_a_second_literal(line: str) -> None:
    assert any(_copies(field, value, line) for _, field, value in DEFAULT_VALUES)


def test_one_apply_tunables_in_the_code_base() -> None:
    definitions = [
        path.relative_to(ROOT)
        for path in [*_sources(), OWNER]
        if path.suffix == ".py"
        and re.search(r"^\s*def apply_tunables\(", path.read_text(encoding="utf-8"), re.M)
    ]
    assert definitions == [OWNER.relative_to(ROOT)]


def test_the_file_holds_no_settings_of_its_own() -> None:
    raw = read_definition(DEFINITION_PATH)
    segment = raw["States"]["Segment"]
    assert "run_settings" not in raw["States"]["Aggregate"]["Parameters"]
    # the Map's fields are AWS's own defaults (unlimited, none tolerated) and limits
    assert (segment["MaxConcurrency"], segment["ToleratedFailurePercentage"]) == (0, 0)


def test_rendering_writes_the_same_settings_into_the_map_and_aggregate() -> None:
    settings = MapSettings(
        items_per_batch=7,
        max_bytes_per_batch=4096,
        max_concurrency=3,
        tolerated_failure_percentage=25,
        child_execution_type="EXPRESS",
        segment_memory_mb=3008,
    )
    rendered = load_definition(settings=settings)
    segment = rendered["States"]["Segment"]
    assert segment["ItemBatcher"]["MaxItemsPerBatch"] == 7
    assert segment["ItemBatcher"]["MaxInputBytesPerBatch"] == 4096
    assert segment["MaxConcurrency"] == 3
    assert segment["ToleratedFailurePercentage"] == 25
    assert segment["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] == "EXPRESS"
    recorded = rendered["States"]["Aggregate"]["Parameters"]["run_settings"]
    assert MapSettings.model_validate(recorded) == settings.model_copy(
        update={"max_bytes_per_batch": DEFAULTS.max_bytes_per_batch}
    )


def test_rendering_fills_placeholders_and_names_a_missing_one() -> None:
    raw = read_definition()
    with pytest.raises(DefinitionError, match="BucketName"):
        apply_tunables(raw, DEFAULTS, {"LookupFunctionArn": "x"})


def test_options_outside_the_limits_are_input_errors() -> None:
    assert MapSettings.from_options(items_per_batch=None, max_concurrency=0) == MapSettings(
        max_concurrency=0
    )
    with pytest.raises(InputError, match="items_per_batch = 1001"):
        MapSettings.from_options(items_per_batch=1001)
