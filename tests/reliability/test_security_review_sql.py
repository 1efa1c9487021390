"""Security review: SQL only through bound parameters (an AST scan of plateseg/).

Every ``text(...)``, ``execute(...)``, ``executemany``, ``executescript``,
``exec_driver_sql`` and ``cursor.copy`` call whose SQL is built at run time (f-string,
``%``, ``.format``, concatenation with non-constants, also through a local variable) is
a finding, unless its function is in :data:`DYNAMIC_SQL_ALLOWED` with the reason the
interpolated parts are identifiers of our own metadata, never values.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Functions that build SQL text from identifiers, each with why that is safe. Values
#: never enter SQL text anywhere in plateseg: the scan below finds every other case.
DYNAMIC_SQL_ALLOWED: dict[tuple[str, str], str] = {
    ("plateseg/db/bulk.py", "_copy"): (
        "COPY <table> (<columns>): table and column names from plateseg.db.models "
        "metadata, quoted by the dialect's identifier preparer; rows travel through COPY"
    ),
    ("plateseg/db/bulk.py", "_executemany"): (
        "INSERT INTO <table> (<columns>) VALUES (?, ...): quoted metadata names; every "
        "value is a ? placeholder bound by the driver"
    ),
    ("plateseg/db/bulk.py", "_stage"): (
        "stage_<table> and LIKE <table>: our own table names; no values"
    ),
    ("plateseg/db/bulk.py", "_delete_stale"): (
        "quoted table and primary-key names from metadata; run_id bound as %(run_id)s"
    ),
    ("plateseg/db/bulk.py", "_merge"): (
        "INSERT ... SELECT FROM <stage> ON CONFLICT: quoted metadata names; the values "
        "come from the staged COPY, never from SQL text"
    ),
    ("plateseg/db/bulk.py", "upsert_rows"): (
        "INSERT ... VALUES (?, ...) ON CONFLICT: quoted metadata names, ? placeholders"
    ),
}
SQL_CALLS = frozenset({"text", "execute", "executemany", "executescript", "exec_driver_sql"})


class _SqlScan(ast.NodeVisitor):
    """Finds SQL calls whose text is built at run time (f-string, %, .format, +)."""

    def __init__(self, module: ast.Module) -> None:
        self.module = module
        self.scope: list[ast.AST] = [module]
        self.found: list[tuple[str, int]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node)
        self.generic_visit(node)
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        is_copy = name == "copy" and "cursor" in ast.unparse(func)
        if (name in SQL_CALLS or is_copy) and node.args and self._dynamic(node.args[0], 0):
            where = next((getattr(s, "name", "") for s in reversed(self.scope)), "")
            self.found.append((where or "<module>", node.lineno))
        self.generic_visit(node)

    def _assigned(self, name: str) -> list[ast.expr]:
        for scope in reversed(self.scope):
            values: list[ast.expr] = []
            for node in ast.walk(scope):
                if (
                    isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
                ) or (
                    isinstance(node, ast.AugAssign | ast.AnnAssign)
                    and isinstance(node.target, ast.Name)
                    and node.target.id == name
                    and node.value is not None
                ):
                    values.append(node.value)
            if values:
                return values
        return []

    def _dynamic(self, node: ast.expr, depth: int, building: bool = False) -> bool:
        """Whether ``node`` is SQL text made at run time.

        Inside a concatenation (``building``) a name with no assignment in sight (a
        parameter) counts as run-time text; as the whole argument it is taken for a
        statement object (``sa.select(...)`` passed in).
        """
        if depth > 5:
            return False
        if isinstance(node, ast.JoinedStr):
            return any(isinstance(part, ast.FormattedValue) for part in node.values)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Mod):
                return True
            return self._dynamic(node.left, depth + 1, True) or self._dynamic(
                node.right, depth + 1, True
            )
        if isinstance(node, ast.Call):
            is_format = isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            return is_format or building
        if isinstance(node, ast.Name):
            values = self._assigned(node.id)
            if not values:
                return building
            return any(self._dynamic(value, depth + 1, building) for value in values)
        return building and not isinstance(node, ast.Constant)


def _dynamic_sql() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for path in sorted((REPO / "plateseg").rglob("*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        scan = _SqlScan(module)
        scan.visit(module)
        for function, line in scan.found:
            found.setdefault((path.relative_to(REPO).as_posix(), function), []).append(line)
    return found


def test_sql_text_is_never_built_from_values() -> None:
    found = _dynamic_sql()
    unexplained = {key: lines for key, lines in found.items() if key not in DYNAMIC_SQL_ALLOWED}
    assert unexplained == {}, "SQL built at run time; bind the values or justify it here"
    assert found, "the scan must see bulk.py's identifier-built SQL (else it is blind)"


def test_the_scan_catches_each_way_of_building_sql() -> None:
    source = (
        "def a(c, v):\n    c.execute(f'SELECT {v}')\n"
        "def b(c, v):\n    c.exec_driver_sql('SELECT %s' % v)\n"
        "def d(c, v):\n    sql = 'SELECT ' + v\n    c.execute(sql)\n"
        "def e(v):\n    return text('SELECT {}'.format(v))\n"
        "def ok(c, v):\n    q = 'SELECT 1'\n    q += ' WHERE x = ?'\n    c.execute(q, (v,))\n"
    )
    module = ast.parse(source)
    scan = _SqlScan(module)
    scan.visit(module)
    assert [function for function, _ in scan.found] == ["a", "b", "d", "e"]


def test_every_allowed_dynamic_sql_binds_or_has_no_values() -> None:
    for (path, function), reason in DYNAMIC_SQL_ALLOWED.items():
        source = (REPO / path).read_text(encoding="utf-8")
        tree = ast.parse(source)
        body = next(
            n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function
        )
        text = ast.get_source_segment(source, body) or ""
        assert "quote" in text or "stage" in text, (path, function)
        assert not re.search(r"\{(run_id|value|row|params)\b", text), (path, function)
        assert len(reason) > 40
