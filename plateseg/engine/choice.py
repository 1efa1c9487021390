"""Choice rules: parse them into :class:`Rule` trees and evaluate them.

Supported: every ``String*``, ``Numeric*``, ``Boolean*`` and ``Timestamp*``
comparison with its ``…Path`` variant, ``StringMatches``, the ``Is*`` tests
(``IsNull``, ``IsPresent``, ``IsNumeric``, ``IsString``, ``IsBoolean``,
``IsTimestamp``) and ``And``/``Or``/``Not``. As in AWS, a comparison whose operand has
the wrong type is false, and a ``Variable`` that selects nothing is ``States.Runtime``
(except for ``IsPresent``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plateseg.engine.paths import path_problem, read_path
from plateseg.errors import StatesError

__all__ = [
    "COMPARISONS",
    "Rule",
    "evaluate_rule",
    "parse_condition_rule",
    "parse_rule",
    "parse_timestamp",
]


@dataclass(frozen=True)
class Rule:
    """One Choice rule (top-level rules carry ``next``)."""

    op: str
    variable: str | None = None
    operand: Any = None
    children: tuple[Rule, ...] = ()
    next: str | None = None
    assign: Any = None
    output: Any = None
    has_output: bool = False


def parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _boolean(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


_KINDS: dict[str, Callable[[Any], Any]] = {
    "String": _string,
    "Numeric": _number,
    "Boolean": _boolean,
    "Timestamp": parse_timestamp,
}
_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThanEquals": lambda a, b: a >= b,
}

#: comparison operator → (kind converter, relation, operand is a path)
COMPARISONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any, Any], bool], bool]] = {}
for _kind, _convert in _KINDS.items():
    for _rel, _relation in _RELATIONS.items():
        if _kind == "Boolean" and _rel != "Equals":
            continue
        COMPARISONS[f"{_kind}{_rel}"] = (_convert, _relation, False)
        COMPARISONS[f"{_kind}{_rel}Path"] = (_convert, _relation, True)

_TESTS = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")
_OPERATORS = (*COMPARISONS, "StringMatches", *_TESTS)


def parse_rule(raw: Any, where: str, problems: list[str], top: bool) -> Rule:
    """Parse one Choice rule, appending problems (with JSON pointers) to ``problems``."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: a choice rule must be an object")
        return Rule(op="Invalid")
    target = raw.get("Next")
    if top and not isinstance(target, str):
        problems.append(f"{where}/Next: a top-level choice rule needs Next")
    if not top and "Next" in raw:
        problems.append(f"{where}/Next: only top-level choice rules may have Next")
    allowed = {"Next", "Comment", "Variable", "And", "Or", "Not", *_OPERATORS}
    if top:
        allowed.add("Assign")
    problems.extend(f"{where}/{key}: unsupported field" for key in raw if key not in allowed)
    ops = [key for key in raw if key in ("And", "Or", "Not", *_OPERATORS)]
    if len(ops) != 1:
        problems.append(f"{where}: a choice rule needs exactly one operator, found {ops or 'none'}")
        return Rule(op="Invalid", next=target)
    op = ops[0]
    assign = raw.get("Assign")
    if op in ("And", "Or"):
        items = raw[op]
        if not isinstance(items, list) or not items:
            problems.append(f"{where}/{op}: must be a non-empty array of rules")
            return Rule(op=op, next=target)
        children = tuple(
            parse_rule(item, f"{where}/{op}/{i}", problems, False) for i, item in enumerate(items)
        )
        return Rule(op=op, children=children, next=target, assign=assign)
    if op == "Not":
        child = parse_rule(raw[op], f"{where}/Not", problems, False)
        return Rule(op=op, children=(child,), next=target, assign=assign)
    variable = raw.get("Variable")
    problem = path_problem(variable, variables=True)
    if problem:
        problems.append(f"{where}/Variable: {problem}")
    operand = raw[op]
    if op in COMPARISONS and COMPARISONS[op][2]:
        problem = path_problem(operand, variables=True)
        if problem:
            problems.append(f"{where}/{op}: {problem}")
    elif op in _TESTS and not isinstance(operand, bool):
        problems.append(f"{where}/{op}: must be true or false")
    elif op in COMPARISONS and COMPARISONS[op][0](operand) is None:
        problems.append(f"{where}/{op}: operand {operand!r} has the wrong type for {op}")
    elif op == "StringMatches" and not isinstance(operand, str):
        problems.append(f"{where}/{op}: the pattern must be a string")
    return Rule(op=op, variable=variable, operand=operand, next=target, assign=assign)


def parse_condition_rule(raw: Any, where: str, problems: list[str]) -> Rule:
    """Parse one rule of a JSONata Choice state: ``Condition``, ``Next``, optional
    ``Assign`` and ``Output`` (expressions are checked by the caller)."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: a choice rule must be an object")
        return Rule(op="Invalid")
    allowed = {"Condition", "Next", "Comment", "Assign", "Output"}
    problems.extend(
        f"{where}/{key}: unsupported field in a JSONata choice rule (use Condition)"
        for key in raw
        if key not in allowed
    )
    if not isinstance(raw.get("Next"), str):
        problems.append(f"{where}/Next: a choice rule needs Next")
    condition = raw.get("Condition")
    if not isinstance(condition, bool) and not (
        isinstance(condition, str) and condition.startswith("{%") and condition.endswith("%}")
    ):
        problems.append(f"{where}/Condition: must be a JSONata expression '{{% … %}}' or a boolean")
    return Rule(
        op="Condition",
        operand=condition,
        next=raw.get("Next"),
        assign=raw.get("Assign"),
        output=raw.get("Output"),
        has_output="Output" in raw,
    )


def _matches(value: str, pattern: str) -> bool:
    regex = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if char == "*" else re.escape(char))
        i += 1
    return re.fullmatch("".join(regex), value, flags=re.DOTALL) is not None


def evaluate_rule(rule: Rule, data: Any, context: Any) -> bool:
    """Whether ``rule`` holds for the state's effective input ``data``."""
    if rule.op == "And":
        return all(evaluate_rule(child, data, context) for child in rule.children)
    if rule.op == "Or":
        return any(evaluate_rule(child, data, context) for child in rule.children)
    if rule.op == "Not":
        return not evaluate_rule(rule.children[0], data, context)
    assert rule.variable is not None
    if rule.op == "IsPresent":
        try:
            read_path(data, rule.variable, context=context, field="Variable")
            present = True
        except StatesError:
            present = False
        return present is rule.operand
    value = read_path(data, rule.variable, context=context, field="Variable")
    if rule.op in _TESTS:
        checks: dict[str, Callable[[Any], bool]] = {
            "IsNull": lambda v: v is None,
            "IsNumeric": lambda v: _number(v) is not None,
            "IsString": lambda v: isinstance(v, str),
            "IsBoolean": lambda v: isinstance(v, bool),
            "IsTimestamp": lambda v: parse_timestamp(v) is not None,
        }
        return checks[rule.op](value) is rule.operand
    if rule.op == "StringMatches":
        return isinstance(value, str) and _matches(value, rule.operand)
    convert, relation, is_path = COMPARISONS[rule.op]
    operand = rule.operand
    if is_path:
        operand = read_path(data, operand, context=context, field=rule.op)
    left, right = convert(value), convert(operand)
    if left is None or right is None:
        return False
    return relation(left, right)
