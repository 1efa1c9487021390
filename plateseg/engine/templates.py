"""Payload templates: Parameters, ItemSelector, ResultSelector, BatchInput.

A key ending in ``.$`` takes its value from a path (``$``…, ``$$``…, a workflow
variable ``$name``…) or an intrinsic function (``States.…``); every other value is
copied as is, nested objects and arrays included.

>>> evaluate_template({"a.$": "$.x", "b": [1, {"c.$": "$$.Execution.Name"}]},
...                   {"x": 7}, {"Execution": {"Name": "run"}})
{'a': 7, 'b': [1, {'c': 'run'}]}
"""

from __future__ import annotations

from typing import Any

from plateseg.engine.intrinsics import evaluate_intrinsic, parse_intrinsic
from plateseg.engine.paths import path_problem, read_path
from plateseg.errors import DefinitionError

__all__ = ["evaluate_template", "template_problems"]


def evaluate_template(template: Any, data: Any, context: Any) -> Any:
    """Build a payload from ``template`` against ``data`` and the ``$$`` ``context``.

    Raises
    ------
    StatesError
        ``States.Runtime`` for a path that selects nothing, ``States.IntrinsicFailure``
        for an intrinsic that fails.
    """
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                name = key[:-2]
                if value.startswith("$"):
                    out[name] = read_path(data, value, context=context, field=key)
                else:
                    out[name] = evaluate_intrinsic(value, data, context, field=key)
            else:
                out[key] = evaluate_template(value, data, context)
        return out
    if isinstance(template, list):
        return [evaluate_template(item, data, context) for item in template]
    return template


def template_problems(template: Any, pointer: str) -> list[str]:
    """Every invalid ``.$`` entry in ``template``, each with its JSON pointer."""
    problems: list[str] = []
    if isinstance(template, dict):
        for key, value in template.items():
            where = f"{pointer}/{_escape(key)}"
            if key.endswith(".$"):
                if not isinstance(value, str):
                    problems.append(f"{where}: a '.$' field needs a path or intrinsic string")
                elif value.startswith("$"):
                    problem = path_problem(value, variables=True)
                    if problem:
                        problems.append(f"{where}: {problem}")
                else:
                    try:
                        parse_intrinsic(value)
                    except DefinitionError as exc:
                        problems.extend(f"{where}: {p}" for p in exc.problems)
            else:
                problems.extend(template_problems(value, where))
    elif isinstance(template, list):
        for index, item in enumerate(template):
            problems.extend(template_problems(item, f"{pointer}/{index}"))
    return problems


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
