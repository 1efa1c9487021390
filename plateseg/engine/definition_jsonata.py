"""Definition checks for JSONata states and workflow variables.

Called by :mod:`plateseg.engine.definition`: every ``"{% … %}"`` expression of a
JSONata state must parse, ``Assign`` keys must be variable names, and a variable
assigned in a Parallel branch or a Map's ItemProcessor may not also be assigned in a
scope around it (AWS refuses such a definition). :func:`map_config_view` shows a
JSONata Map's configuration to the shared Map checks in the shape they read.
"""

from __future__ import annotations

from typing import Any

from plateseg.engine.jsonata_eval import expression_problems, is_expression
from plateseg.engine.model import MapState, ParallelState, StateMachine
from plateseg.engine.variables import assign_name_problem, assigned_names

__all__ = ["assign_problems", "jsonata_problems", "map_config_view", "scope_problems"]

#: Fields holding whole state machines (checked when those machines are parsed), and
#: fields that are never expressions.
_NESTED = ("ItemProcessor", "Iterator", "Branches", "Comment", "Type", "Next", "Resource")
#: Map fields that are numbers in JSONPath and may be expressions in JSONata.
_NUMBERS = ("MaxConcurrency", "ToleratedFailurePercentage", "ToleratedFailureCount")
_BATCH_NUMBERS = ("MaxItemsPerBatch", "MaxInputBytesPerBatch")


def jsonata_problems(raw: dict[str, Any], at: str) -> list[str]:
    """Syntax errors of every expression in a JSONata state (nested machines excluded)."""
    problems: list[str] = []
    for key, value in raw.items():
        if key in _NESTED:
            continue
        if isinstance(value, str) and ("{%" in value or "%}" in value) and not is_expression(value):
            problems.append(
                f"{at}/{key}: a JSONata expression must start with '{{%' and end with '%}}'"
            )
        if key in ("Catch", "Retry", "Choices") and isinstance(value, list):
            value = [
                {k: v for k, v in entry.items() if k not in ("Comment", "Next")}
                if isinstance(entry, dict)
                else entry
                for entry in value
            ]
        problems.extend(expression_problems(value, f"{at}/{key}"))
    return problems


def _assign_blocks(raw: dict[str, Any], at: str) -> list[tuple[Any, str]]:
    blocks = [(raw["Assign"], f"{at}/Assign")] if "Assign" in raw else []
    for field in ("Choices", "Catch"):
        entries = raw.get(field)
        if isinstance(entries, list):
            blocks += [
                (entry["Assign"], f"{at}/{field}/{i}/Assign")
                for i, entry in enumerate(entries)
                if isinstance(entry, dict) and "Assign" in entry
            ]
    return blocks


def assign_problems(raw: dict[str, Any], at: str, language: str) -> list[str]:
    """Problems of the ``Assign`` fields of a state, its Choice rules and its catchers."""
    problems = []
    for assign, where in _assign_blocks(raw, at):
        if not isinstance(assign, dict):
            problems.append(f"{where}: must be an object of variable names and values")
            continue
        for key in assign:
            problem = assign_name_problem(key, language)
            if language == "JSONata" and key.endswith(".$"):
                problem = "JSONata states do not use '.$' keys (write the value as {% … %})"
            if problem:
                problems.append(f"{where}/{key}: {problem}")
    return problems


def _machine_names(machine: StateMachine) -> set[str]:
    names: set[str] = set()
    for state in machine.states.values():
        names |= assigned_names(state.assign)
        for catcher in state.catch:
            names |= assigned_names(catcher.assign)
        for rule in getattr(state, "choices", ()):
            names |= assigned_names(rule.assign)
    return names


def scope_problems(machine: StateMachine, outer: frozenset[str] = frozenset()) -> list[str]:
    """Variables assigned in an inner scope that an enclosing scope also assigns."""
    own = _machine_names(machine)
    problems = []
    for state in machine.states.values():
        inner: tuple[StateMachine, ...] = ()
        if isinstance(state, ParallelState):
            inner = state.branches
        elif isinstance(state, MapState):
            inner = (state.processor,)
        for sub in inner:
            clash = sorted(_machine_names(sub) & (own | outer))
            if clash:
                problems.append(
                    f"{state.pointer}: variables {clash} are assigned inside state "
                    f"{state.name!r} and in a scope around it (an inner scope can read an "
                    "outer variable but not assign it; names must be unique across scopes)"
                )
            problems.extend(scope_problems(sub, frozenset(own | outer)))
    return problems


def map_config_view(raw: dict[str, Any], language: str) -> dict[str, Any]:
    """A JSONata Map's configuration as the JSONPath checks read it: ``Arguments`` of
    ItemReader and ResultWriter as their ``Parameters``, and numbers that are
    expressions left out (they are checked when the state runs)."""
    if language != "JSONata":
        return raw
    view = {k: v for k, v in raw.items() if not (k in _NUMBERS and is_expression(v))}
    for key in ("ItemReader", "ResultWriter"):
        part = raw.get(key)
        if isinstance(part, dict):
            part = {("Parameters" if k == "Arguments" else k): v for k, v in part.items()}
            if isinstance(part.get("ReaderConfig"), dict) and is_expression(
                part["ReaderConfig"].get("MaxItems")
            ):
                config = dict(part["ReaderConfig"])
                config.pop("MaxItems")
                part["ReaderConfig"] = config
            view[key] = part
    batcher = raw.get("ItemBatcher")
    if isinstance(batcher, dict):
        view["ItemBatcher"] = {
            k: (1 if k in _BATCH_NUMBERS and is_expression(v) else v) for k, v in batcher.items()
        }
    return view
