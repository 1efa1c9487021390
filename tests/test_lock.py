"""The hashed locks agree with the requirement files they are compiled from (issue 14 item 13).

``requirements*.txt`` say what the project asks for; ``requirements*.lock`` (tools/lock.sh,
uv with ``--generate-hashes``) pin every transitive package with the sha256 of each file, and
are what ``make`` and the Lambda image install with ``pip install --require-hashes``. A pin
bumped in a requirement file without regenerating the lock fails here, in ``make test``.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNTIME_LOCK = REPO_ROOT / "requirements.lock"
DEV_LOCK = REPO_ROOT / "requirements-dev.lock"
BUILD_LOCK = REPO_ROOT / "requirements-build.lock"
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class LockEntry:
    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]


def read_pins(path: Path) -> dict[str, str]:
    """Top-level ``name==version`` pins of a requirement file, following ``-r`` includes.

    A top-level requirement that is not an exact ``==`` pin raises: the lock could not be
    said to agree with a range.
    """
    pins: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            pins |= read_pins(REPO_ROOT / line.split(maxsplit=1)[1])
            continue
        if line.startswith("-"):
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise ValueError(f"{path.name}: {line!r} is not pinned with ==")
        pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


def parse_lock(text: str) -> list[LockEntry]:
    """Entries of a pip-style lock: ``name==version ; marker`` followed by ``--hash`` options."""
    logical = re.sub(r"\\\n\s*", " ", text)
    entries = []
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        hashes = tuple(re.findall(r"--hash=(\S+)", line))
        spec, _, marker = line.split(" --", 1)[0].partition(";")
        name, _, version = spec.strip().partition("==")
        entries.append(
            LockEntry(canonicalize_name(name), version.strip(), marker.strip() or None, hashes)
        )
    return entries


def disagreements(pins: dict[str, str], lock: list[LockEntry], lock_name: str) -> list[str]:
    """Each way the lock fails the pins: a pin missing or at another version, a hashless entry."""
    problems = []
    locked: dict[str, set[str]] = {}
    for entry in lock:
        locked.setdefault(entry.name, set()).add(entry.version)
        if not entry.hashes:
            problems.append(f"{entry.name}=={entry.version} has no hash in {lock_name}")
        problems += [
            f"{entry.name}=={entry.version} has a malformed hash {h!r} in {lock_name}"
            for h in entry.hashes
            if not SHA256.fullmatch(h)
        ]
    for name, version in sorted(pins.items()):
        if name not in locked:
            problems.append(f"{name}=={version} is pinned but missing from {lock_name}")
        elif locked[name] != {version}:
            found = ", ".join(sorted(locked[name]))
            problems.append(f"{name}=={version} is pinned but {lock_name} has {found}")
    return problems


@pytest.mark.parametrize(
    ("requirements", "lock"),
    [("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock")],
)
def test_every_top_level_pin_is_in_the_lock_at_the_same_version_with_hashes(
    requirements: str, lock: str
) -> None:
    pins = read_pins(REPO_ROOT / requirements)
    entries = parse_lock((REPO_ROOT / lock).read_text(encoding="utf-8"))
    assert disagreements(pins, entries, lock) == [], "run tools/lock.sh to regenerate the locks"


def test_a_pin_bumped_without_relocking_and_a_hashless_entry_are_reported(
    tmp_path: Path,
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==9.9.9\nrich==15.0.0\nnot-locked==1.0\n", encoding="utf-8")
    lock = parse_lock(
        "numpy==2.3.5 \\\n    --hash=sha256:" + "a" * 64 + "\n"
        "rich==15.0.0\n    # via -r requirements.txt\n"
    )
    assert disagreements(read_pins(requirements), lock, "requirements.lock") == [
        "rich==15.0.0 has no hash in requirements.lock",
        "not-locked==1.0 is pinned but missing from requirements.lock",
        "numpy==9.9.9 is pinned but requirements.lock has 2.3.5",
    ]


def test_a_top_level_range_is_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy>=2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not pinned with =="):
        read_pins(requirements)


def test_the_dev_lock_holds_every_runtime_pin_unchanged() -> None:
    """Installing the dev lock after the runtime lock must change no runtime package."""
    runtime = {(e.name, e.version, e.marker) for e in parse_lock(RUNTIME_LOCK.read_text())}
    dev = {(e.name, e.version, e.marker) for e in parse_lock(DEV_LOCK.read_text())}
    assert sorted(runtime - dev) == []


def test_the_build_lock_satisfies_the_build_system_requirements_with_hashes() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    entries = {e.name: e for e in parse_lock(BUILD_LOCK.read_text(encoding="utf-8"))}
    for spec in pyproject["build-system"]["requires"]:
        requirement = Requirement(spec)
        entry = entries[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(entry.version), (spec, entry.version)
    assert all(e.hashes and all(SHA256.fullmatch(h) for h in e.hashes) for e in entries.values())


def test_the_environment_running_the_tests_is_the_dev_lock() -> None:
    """`make test` installs the lock; what the tests import is exactly what it pins."""
    installed: dict[str, str] = {
        canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
    }
    wrong = [
        f"{e.name}: locked {e.version}, installed {installed.get(e.name, 'nothing')}"
        for e in parse_lock(DEV_LOCK.read_text(encoding="utf-8"))
        if (e.marker is None or Marker(e.marker).evaluate()) and installed.get(e.name) != e.version
    ]
    assert wrong == [], "run `make .venv/.dev` (it installs requirements-dev.lock)"


def test_every_requirement_install_in_make_and_the_image_is_a_hashed_lock() -> None:
    sources = [REPO_ROOT / "Makefile", REPO_ROOT / "lambdas" / "Dockerfile"]
    text = "\n".join(p.read_text(encoding="utf-8") for p in sources)
    installs = re.findall(r"pip install[^\n]*", re.sub(r"\\\n\s*", " ", text))
    from_files = [i for i in installs if re.search(r"\s-r\s", i)]
    assert len(from_files) == 4  # build, runtime, dev locks in make; the runtime lock in the image
    for install in from_files:
        assert "--require-hashes" in install, install
        assert re.search(r"-r\s+\S+\.lock\b", install), install


def test_the_lambda_base_image_is_pinned_by_digest() -> None:
    dockerfile = (REPO_ROOT / "lambdas" / "Dockerfile").read_text(encoding="utf-8")
    bases = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert bases and all(re.fullmatch(r"\S+@sha256:[0-9a-f]{64}", b) for b in bases), bases
