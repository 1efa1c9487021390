"""The store layout has one owner: no module but plateseg.store.keys spells a key."""

from __future__ import annotations

import ast
from pathlib import Path

from plateseg.store import keys

PACKAGE = Path(keys.__file__).resolve().parents[1]
#: The top-level folders of the store layout.
PREFIXES = ("experiments/", "runs/", "models/", "truth/", "web/accepted/")


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def spelled_keys(path: Path) -> list[str]:
    """``file:line`` of every string literal (or f-string start) that begins a store key."""
    tree = ast.parse(path.read_text())
    docstrings = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                text = first.value
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            text = node.value
        # a key has no spaces: help texts that name a key are not keys
        if text is not None and text.startswith(PREFIXES) and " " not in text:
            hits.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {text[:40]!r}")
    return hits


def test_only_the_keys_module_spells_store_keys() -> None:
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != Path(keys.__file__).resolve():
            hits += spelled_keys(path)
    assert hits == []


def test_keys_compose_from_their_prefixes() -> None:
    assert keys.mask_key("R1", "P1_B03_1") == "runs/R1/masks/P1_B03_1.tif"
    assert keys.cells_key("R1", "P1_B03_1") == "runs/R1/masks/P1_B03_1.cells.tif"
    assert keys.mask_key("R1", "x").startswith(keys.masks_prefix("R1"))
    assert keys.part_key("R1", "ab").startswith(keys.objects_prefix("R1"))
    assert keys.layout_key("E1") == "experiments/E1/layout.csv"
    assert keys.result_prefix("R1") == "runs/R1/map"
    assert keys.model_file_key("m") == "models/m.onnx"
    assert keys.provenance_file_key("m") == "models/m.json"
    assert keys.accepted_key("R1") == "web/accepted/R1.json"
    assert keys.truth_counts_key("E1").startswith(keys.truth_prefix("E1"))
