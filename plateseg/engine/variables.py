"""Workflow variables: ``Assign``, ``$name`` reads, scopes and size limits.

AWS rules followed here (Step Functions, "Passing data between states with variables"):

* every value of one ``Assign`` is evaluated against the variables as they were when
  the state was entered, then all are set together (``{"x": "{% $y %}", "y":
  "{% $x %}"}`` swaps them);
* a Parallel branch or an inline Map iteration runs in its own scope: it reads the
  variables of the scopes around it and assigns only its own, which vanish when it
  ends; a Distributed Map child execution sees no outer variable at all;
* a name assigned in an inner scope may not also be assigned in an outer one
  (checked with the definition);
* a variable holds at most 256 KiB, one ``Assign`` at most 256 KiB in all, an
  execution at most 10 MiB (``States.DataLimitExceeded`` beyond).

>>> scope = Scope()
>>> scope.assign({"x": 1})
>>> inner = scope.child()
>>> inner.assign({"y": 2})
>>> inner.lookup("x"), inner.lookup("y"), scope.visible()
(1, 2, {'x': 1})
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from plateseg.engine.paths import payload_size
from plateseg.errors import StatesError

__all__ = [
    "ASSIGN_LIMIT_BYTES",
    "EXECUTION_LIMIT_BYTES",
    "VARIABLE_LIMIT_BYTES",
    "Scope",
    "assign_name_problem",
    "assigned_names",
    "evaluate_jsonpath_assign",
]

#: The largest value of one variable, and of one ``Assign`` field in all.
VARIABLE_LIMIT_BYTES = 256 * 1024
ASSIGN_LIMIT_BYTES = 256 * 1024
#: All variables an execution holds at one time.
EXECUTION_LIMIT_BYTES = 10 * 1024 * 1024

#: A variable name: a JSONata identifier, up to 80 characters, not ``states``.
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,79}$")


def assign_name_problem(key: str, language: str) -> str | None:
    """Why ``key`` cannot be an ``Assign`` key in a state of ``language``, or ``None``."""
    name = key[:-2] if language == "JSONPath" and key.endswith(".$") else key
    if not NAME.match(name):
        return (
            f"{name!r} is not a variable name (a letter or '_', then letters, digits or '_', "
            "at most 80 characters; no paths such as 'x.y' or 'x[0]')"
        )
    if name == "states":
        return "'states' is reserved (the $states variable of JSONata states)"
    return None


def assigned_names(assign: Any) -> set[str]:
    """Variable names an ``Assign`` field sets (``.$`` suffixes removed)."""
    if not isinstance(assign, dict):
        return set()
    return {key[:-2] if key.endswith(".$") else key for key in assign}


def evaluate_jsonpath_assign(assign: Any, data: Any, context: Any) -> dict[str, Any] | None:
    """The values a JSONPath state's ``Assign`` sets: keys ending in ``.$`` read a path
    (``$`` is ``data``: the state's result after ResultSelector, or its effective input
    for Choice and Wait, or a catcher's error output), a ``$$`` path, a variable or an
    intrinsic; other values are literals."""
    if not assign:
        return None
    from plateseg.engine.templates import evaluate_template

    values: dict[str, Any] = evaluate_template(assign, data, context)
    return values


#: Serialises assignments (rare) across all scopes; a scope per child execution stays cheap.
_ASSIGN_LOCK = threading.Lock()


class Scope:
    """The variables of one state machine scope, with read access to the enclosing ones.

    Parameters
    ----------
    parent : Scope, optional
        The enclosing scope (a Parallel branch's or inline Map iteration's parent);
        ``None`` for an execution's top level and for a Distributed Map child.
    """

    __slots__ = ("_own", "_parent", "_sizes", "version")

    def __init__(self, parent: Scope | None = None) -> None:
        self._parent = parent
        self._own: dict[str, Any] = {}
        self._sizes: dict[str, int] = {}
        #: Incremented by every assignment (the journal records a changed scope).
        self.version = 0

    def own(self) -> dict[str, Any]:
        """A copy of the variables assigned in this scope (not the enclosing ones)."""
        return dict(self._own)

    def child(self) -> Scope:
        """A scope for a branch or an iteration: reads this one, assigns its own."""
        return Scope(self)

    def lookup(self, name: str) -> Any:
        """The value of ``$name``.

        Raises
        ------
        KeyError
            No scope around holds ``name``.
        """
        scope: Scope | None = self
        while scope is not None:
            if name in scope._own:
                return scope._own[name]
            scope = scope._parent
        raise KeyError(name)

    def visible(self) -> dict[str, Any]:
        """Every variable this scope can read, inner names over outer ones."""
        chain: list[Scope] = []
        scope: Scope | None = self
        while scope is not None:
            chain.append(scope)
            scope = scope._parent
        out: dict[str, Any] = {}
        for each in reversed(chain):
            out.update(each._own)
        return out

    def _total(self) -> int:
        total, scope = 0, self
        while scope is not None:
            total += sum(scope._sizes.values())
            scope = scope._parent  # type: ignore[assignment]
        return total

    def assign(self, values: Mapping[str, Any], where: str = "Assign") -> None:
        """Set ``values`` in this scope, all at once, after checking the size limits.

        Raises
        ------
        StatesError
            ``States.DataLimitExceeded`` for a variable over 256 KiB, an ``Assign`` over
            256 KiB in all, or an execution holding over 10 MiB of variables.
        """
        if not values:
            return
        sizes = {name: payload_size(value) for name, value in values.items()}
        for name, size in sizes.items():
            if size > VARIABLE_LIMIT_BYTES:
                raise _too_big(
                    f"The variable '{name}' assigned in {where} has a size of {size} bytes, "
                    f"over the limit of {VARIABLE_LIMIT_BYTES} bytes"
                )
        if sum(sizes.values()) > ASSIGN_LIMIT_BYTES:
            raise _too_big(
                f"The values assigned in {where} have a size of {sum(sizes.values())} bytes "
                f"in all, over the limit of {ASSIGN_LIMIT_BYTES} bytes"
            )
        with _ASSIGN_LOCK:
            replaced = sum(self._sizes.get(name, 0) for name in values)
            total = self._total() - replaced + sum(sizes.values())
            if total > EXECUTION_LIMIT_BYTES:
                raise _too_big(
                    f"The variables of the execution would hold {total} bytes, over the "
                    f"limit of {EXECUTION_LIMIT_BYTES} bytes"
                )
            self._own.update(values)
            self._sizes.update(sizes)
            self.version += 1


def _too_big(message: str) -> StatesError:
    return StatesError("States.DataLimitExceeded", message)
