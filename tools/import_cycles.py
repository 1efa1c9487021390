"""Import cycles between plateseg's modules, read from the source with ``ast``.

Every ``import`` of a ``plateseg`` module counts, also those inside functions (a
function-level import hides a cycle from the interpreter, not from the design). A
package's ``__init__`` is the package's own module. Prints each strongly connected
component of more than one module (a cycle), smallest first, and how many imports
are made inside functions.

Run::

    .venv/bin/python tools/import_cycles.py [--root plateseg] [--top-level-only]
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.Module, top_level_only: bool) -> Iterator[tuple[str, bool]]:
    """``(imported name, inside a function)`` for every import of the module."""

    def visit(node: ast.AST, in_function: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only: never imported at run time
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, in_function
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:  # "from pkg import sub" may name a submodule
                    yield f"{child.module}.{alias.name}", in_function
                yield child.module, in_function
            if not (top_level_only and nested):
                yield from visit(child, nested)

    yield from visit(tree, False)


def graph(root: Path, top_level_only: bool) -> tuple[dict[str, set[str]], int]:
    modules = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    in_functions = 0
    for name, path in modules.items():
        for target, in_function in _imports(ast.parse(path.read_text()), top_level_only):
            if target in modules and target != name:
                edges[name].add(target)
                in_functions += in_function
    return edges, in_functions


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return sorted(found, key=len)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=Path(__file__).resolve().parents[1] / "plateseg"
    )
    parser.add_argument("--top-level-only", action="store_true")
    args = parser.parse_args()
    edges, in_functions = graph(args.root.resolve(), args.top_level_only)
    found = cycles(edges)
    print(
        f"{len(edges)} modules, {sum(map(len, edges.values()))} imports "
        f"({in_functions} inside functions), {len(found)} cycles"
    )
    for component in found:
        print(f"  {len(component):>3} modules: {', '.join(component)}")


if __name__ == "__main__":
    main()
