"""Parse an ASL definition (JSONPath or JSONata query language) into frozen dataclasses.

:func:`parse_definition` checks the whole structure first and raises one
:class:`~plateseg.errors.DefinitionError` listing every problem, each naming the state
and a JSON pointer (``/States/Segment/ItemBatcher/MaxItemsPerBatch: …``). Fields the
engine does not run are reported as unsupported rather than ignored. ``QueryLanguage``
is read from the state, else from the enclosing state machine (JSONPath by default); a
JSONata machine may not hold JSONPath states. JSONata-specific checks (expressions,
``Assign`` names, variable scopes) live in :mod:`plateseg.engine.definition_jsonata`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from plateseg.engine.choice import parse_condition_rule, parse_rule
from plateseg.engine.definition_jsonata import (
    assign_problems,
    jsonata_problems,
    map_config_view,
    scope_problems,
)
from plateseg.engine.fields import JSONATA_FIELDS, STATE_FIELDS, field_problem, language_problem
from plateseg.engine.integrations.catalog import LAMBDA_ARN, LAMBDA_INVOKE, resource_problems
from plateseg.engine.model import (
    ChoiceState,
    FailState,
    MapState,
    ParallelState,
    PassState,
    State,
    StateMachine,
    SucceedState,
    TaskState,
    WaitState,
)
from plateseg.engine.paths import path_problem
from plateseg.engine.retry import parse_catchers, parse_retriers
from plateseg.engine.templates import template_problems
from plateseg.errors import DefinitionError

__all__ = [
    "LAMBDA_ARN",
    "LAMBDA_INVOKE",
    "ChoiceState",
    "FailState",
    "MapState",
    "ParallelState",
    "PassState",
    "State",
    "StateMachine",
    "SucceedState",
    "TaskState",
    "WaitState",
    "parse_definition",
    "validate",
]

S3_GET, S3_LIST, S3_PUT = (
    f"arn:aws:states:::s3:{a}" for a in ("getObject", "listObjectsV2", "putObject")
)


class _Parser:
    def __init__(self, resources: Collection[str] = ()) -> None:
        self.problems: list[str] = []
        self.resources = resources

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def path(
        self,
        raw: dict[str, Any],
        key: str,
        at: str,
        *,
        reference: bool = False,
        nullable: bool = True,
        default: str | None = "$",
    ) -> str | None:
        if key not in raw:
            return default
        value = raw[key]
        if value is None and nullable:
            return None
        problem = path_problem(value, reference=reference, context=not reference)
        if problem:
            self.add(f"{at}/{key}", problem)
            return default
        return str(value)

    def template(self, raw: dict[str, Any], key: str, at: str) -> tuple[Any, bool]:
        if key not in raw:
            return None, False
        self.problems.extend(template_problems(raw[key], f"{at}/{key}"))
        return raw[key], True

    def machine(self, raw: Any, at: str, language: str = "JSONPath") -> StateMachine:
        """Parse a state machine: the top level (``at == ""``) or a branch/processor
        (``language``: that of the Parallel or Map state holding it)."""
        if not isinstance(raw, dict):
            self.add(at or "/", "a state machine must be a JSON object")
            return StateMachine(start_at="")
        language = self.language(raw, at, language)
        allowed = {
            "StartAt",
            "States",
            "Comment",
            "Version",
            "TimeoutSeconds",
            "QueryLanguage",
            "ProcessorConfig",
        }
        for key in raw:
            if key not in allowed:
                self.add(f"{at}/{key}", "unsupported field")
        timeout = self.execution_timeout(raw, at)
        start = raw.get("StartAt")
        states_raw = raw.get("States")
        if not isinstance(start, str):
            self.add(f"{at}/StartAt", "missing or not a string")
            start = ""
        if not isinstance(states_raw, dict) or not states_raw:
            self.add(f"{at}/States", "missing or empty")
            return StateMachine(start_at=start)
        states = {
            name: self.state(name, body, f"{at}/States/{name}", language)
            for name, body in states_raw.items()
        }
        if start and start not in states:
            self.add(f"{at}/StartAt", f"names a missing state {start!r}")
        self.transitions(states, start)
        return StateMachine(start_at=start, states=states, timeout_seconds=timeout)

    def language(self, raw: dict[str, Any], at: str, inherited: str) -> str:
        """The ``QueryLanguage`` of a machine or state; JSONPath inside JSONata is refused."""
        language = raw.get("QueryLanguage", inherited)
        if language not in ("JSONPath", "JSONata"):
            self.add(f"{at}/QueryLanguage", language_problem(language))
            return inherited
        if inherited == "JSONata" and language == "JSONPath":
            self.add(
                f"{at}/QueryLanguage",
                "JSONPath is not allowed inside a JSONata state machine or state "
                "(AWS: set JSONata per state in a JSONPath machine, not the reverse)",
            )
        return str(language)

    def execution_timeout(self, raw: dict[str, Any], at: str) -> int | None:
        """The top-level ``TimeoutSeconds`` (a positive integer), run by the engine.

        In a Parallel branch or a Map's ItemProcessor it is refused: the engine
        enforces only the execution's own timeout.
        """
        if "TimeoutSeconds" not in raw:
            return None
        timeout = raw["TimeoutSeconds"]
        if at:
            self.add(
                f"{at}/TimeoutSeconds",
                "unsupported field: the local engine runs TimeoutSeconds of the top-level "
                "state machine only (not of a branch or an ItemProcessor)",
            )
            return None
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            self.add("/TimeoutSeconds", f"must be a positive integer, got {timeout!r}")
            return None
        return timeout

    def transitions(self, states: dict[str, State], start: str) -> None:
        def targets(state: State) -> list[tuple[str, str]]:
            out = [(state.next, f"{state.pointer}/Next")] if state.next else []
            out += [(c.next, f"{state.pointer}/Catch") for c in state.catch]
            if isinstance(state, ChoiceState):
                out += [(r.next, f"{state.pointer}/Choices") for r in state.choices if r.next]
                if state.default:
                    out.append((state.default, f"{state.pointer}/Default"))
            return [(str(name), where) for name, where in out]

        for state in states.values():
            for name, where in targets(state):
                if name not in states:
                    self.add(where, f"state {state.name!r} transitions to missing state {name!r}")
        seen, todo = set(), [start] if start in states else []
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(t for t, _ in targets(states[name]) if t in states)
        if seen:
            for name, state in states.items():
                if name not in seen:
                    self.add(state.pointer, f"state {name!r} is not reachable from StartAt")

    def state(self, name: str, raw: Any, at: str, machine_language: str = "JSONPath") -> State:
        if not isinstance(raw, dict):
            self.add(at, f"state {name!r} must be an object")
            return State(name=name, type="Invalid", pointer=at)
        kind = raw.get("Type")
        if kind not in STATE_FIELDS:
            self.add(f"{at}/Type", f"state {name!r} has unknown or unsupported Type {kind!r}")
            return State(name=name, type=str(kind), pointer=at)
        language = self.language(raw, at, machine_language)
        fields = JSONATA_FIELDS[kind] if language == "JSONata" else STATE_FIELDS[kind]
        for key in raw:
            if key not in fields:
                self.add(f"{at}/{key}", field_problem(key, fields, kind, name, language))
        self.problems.extend(assign_problems(raw, at, language))
        common: dict[str, Any] = {
            "name": name,
            "type": kind,
            "pointer": at,
            "query_language": language,
            "assign": raw.get("Assign"),
        }
        if language == "JSONPath" and kind not in ("Task", "Map", "Parallel"):
            common["reads_context"] = "$$" in json.dumps(raw)
        if language == "JSONata":
            self.problems.extend(jsonata_problems(raw, at))
            common.update(
                arguments=raw.get("Arguments"),
                has_arguments="Arguments" in raw,
                output=raw.get("Output"),
                has_output="Output" in raw,
            )
        if kind not in ("Choice", "Succeed", "Fail"):
            has_next, end = "Next" in raw, raw.get("End") is True
            if has_next == end:
                self.add(at, f"state {name!r} needs exactly one of Next or End: true")
            if has_next and not isinstance(raw["Next"], str):
                self.add(f"{at}/Next", "must be a state name")
            common.update(next=raw.get("Next") if has_next else None, end=end)
        if kind != "Fail" and language == "JSONPath":
            common["input_path"] = self.path(raw, "InputPath", at)
            common["output_path"] = self.path(raw, "OutputPath", at)
        if kind in ("Task", "Pass", "Parallel", "Map") and language == "JSONPath":
            common["result_path"] = self.path(raw, "ResultPath", at, reference=True)
            params, has = self.template(raw, "Parameters", at)
            common.update(parameters=params, has_parameters=has)
        if kind in ("Task", "Parallel", "Map"):
            common["result_selector"], _ = self.template(raw, "ResultSelector", at)
            common["retry"] = parse_retriers(raw.get("Retry"), f"{at}/Retry", self.problems)
            common["catch"] = parse_catchers(
                raw.get("Catch"), f"{at}/Catch", self.problems, language
            )
        builder = getattr(self, f"state_{kind.lower()}", None)
        if builder is None:
            classes = {"Succeed": SucceedState}
            return classes.get(kind, State)(**common)
        result: State = builder(raw, at, common)
        return result

    def state_task(self, raw: dict[str, Any], at: str, common: dict[str, Any]) -> State:
        resource = raw.get("Resource")
        jsonata = common["query_language"] == "JSONata"
        key = "Arguments" if jsonata else "Parameters"
        self.problems.extend(resource_problems(resource, raw.get(key), key, at, self.resources))
        timeout = raw.get("TimeoutSeconds")
        if jsonata and isinstance(timeout, str):
            pass  # an expression, evaluated when the state runs
        elif timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0
        ):
            self.add(f"{at}/TimeoutSeconds", "must be a positive integer")
            timeout = None
        return TaskState(
            resource=str(resource),
            timeout_seconds=timeout,
            timeout_seconds_path=self.path(raw, "TimeoutSecondsPath", at, default=None),
            **common,
        )

    def state_pass(self, raw: dict[str, Any], at: str, common: dict[str, Any]) -> State:
        return PassState(result=raw.get("Result"), has_result="Result" in raw, **common)

    def state_choice(self, raw: dict[str, Any], at: str, common: dict[str, Any]) -> State:
        choices = raw.get("Choices")
        if not isinstance(choices, list) or not choices:
            self.add(f"{at}/Choices", "must be a non-empty array")
            choices = []
        if common["query_language"] == "JSONata":
            rules = tuple(
                parse_condition_rule(c, f"{at}/Choices/{i}", self.problems)
                for i, c in enumerate(choices)
            )
        else:
            rules = tuple(
                parse_rule(c, f"{at}/Choices/{i}", self.problems, True)
                for i, c in enumerate(choices)
            )
        default = raw.get("Default")
        if default is not None and not isinstance(default, str):
            self.add(f"{at}/Default", "must be a state name")
            default = None
        return ChoiceState(choices=rules, default=default, **common)

    def state_wait(self, raw: dict[str, Any], at: str, common: dict[str, Any]) -> State:
        present = [k for k in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if k in raw]
        if len(present) != 1:
            self.add(
                at,
                f"a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, "
                f"TimestampPath; found {present or 'none'}",
            )
        seconds = raw.get("Seconds")
        jsonata = common["query_language"] == "JSONata" and isinstance(seconds, str)
        if (
            "Seconds" in raw
            and not jsonata
            and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0)
        ):
            self.add(f"{at}/Seconds", "must be a non-negative number")
        return WaitState(
            seconds=seconds,
            timestamp=raw.get("Timestamp"),
            seconds_path=self.path(raw, "SecondsPath", at, default=None),
            timestamp_path=self.path(raw, "TimestampPath", at, default=None),
            **common,
        )

    def state_fail(self, raw: dict[str, Any], at: str, common: dict[str, Any]) -> State:
        for key in ("Error", "Cause"):
            if key in raw and f"{key}Path" in raw:
                self.add(at, f"a Fail state may have {key} or {key}Path, not both")
        paths: dict[str, str | None] = {}
        for key in ("ErrorPath", "CausePath"):
            value = raw.get(key)
            if isinstance(value, str) and value.startswith("States."):
                problems = template_problems({f"{key}.$": value}, at)
                self.problems.extend(problems)
                paths[key] = value
            else:
                paths[key] = self.path(raw, key, at, default=None)
        return FailState(
            error=raw.get("Error"),
            cause=raw.get("Cause"),
            error_path=paths["ErrorPath"],
            cause_path=paths["CausePath"],
            **common,
        )

    def state_parallel(self, raw: dict[str, Any], at: str, common: dict[str, Any]) -> State:
        branches = raw.get("Branches")
        if not isinstance(branches, list) or not branches:
            self.add(f"{at}/Branches", "must be a non-empty array of state machines")
            branches = []
        language = common["query_language"]
        parsed = tuple(
            self.machine(b, f"{at}/Branches/{i}", language) for i, b in enumerate(branches)
        )
        return ParallelState(branches=parsed, **common)

    def state_map(self, raw: dict[str, Any], at: str, common: dict[str, Any]) -> State:
        from plateseg.engine.map_config import check_map_config

        key = "ItemProcessor" if "ItemProcessor" in raw else "Iterator"
        body = raw.get(key)
        language = common["query_language"]
        processor = self.machine(body, f"{at}/{key}", language)
        config = body.get("ProcessorConfig", {}) if isinstance(body, dict) else {}
        mode = config.get("Mode", "INLINE") if isinstance(config, dict) else "INLINE"
        if mode not in ("INLINE", "DISTRIBUTED"):
            self.add(f"{at}/{key}/ProcessorConfig/Mode", f"must be INLINE or DISTRIBUTED: {mode!r}")
        if "ItemSelector" in raw and "Parameters" in raw:
            self.add(at, "a Map state may have ItemSelector or Parameters, not both")
        selector, has_selector = self.template(raw, "ItemSelector", at)
        if not has_selector and common.get("has_parameters"):
            selector, has_selector = common["parameters"], True
        common.update(parameters=None, has_parameters=False)
        check_map_config(map_config_view(raw, language), at, mode, self.problems)
        concurrency = raw.get("MaxConcurrency", 0)
        return MapState(
            processor=processor,
            mode=mode,
            items=raw.get("Items"),
            has_items="Items" in raw,
            items_path=self.path(raw, "ItemsPath", at) or "$",
            item_selector=selector,
            has_item_selector=has_selector,
            max_concurrency=concurrency if isinstance(concurrency, int | str) else 0,
            max_concurrency_path=self.path(raw, "MaxConcurrencyPath", at, default=None),
            item_reader=raw.get("ItemReader"),
            item_batcher=raw.get("ItemBatcher"),
            result_writer=raw.get("ResultWriter"),
            tolerated_percentage=raw.get("ToleratedFailurePercentage"),
            tolerated_percentage_path=self.path(
                raw, "ToleratedFailurePercentagePath", at, default=None
            ),
            tolerated_count=raw.get("ToleratedFailureCount"),
            tolerated_count_path=self.path(raw, "ToleratedFailureCountPath", at, default=None),
            label=raw.get("Label"),
            **common,
        )


def parse_definition(definition: Any, resources: Collection[str] = ()) -> StateMachine:
    """Parse and validate a definition.

    Parameters
    ----------
    definition : dict
        The ASL document, already parsed from JSON.
    resources : collection of str
        Task resource ARNs bound to Python callables (accepted whatever they are).

    Raises
    ------
    DefinitionError
        Listing every problem, each with its JSON pointer.
    """
    parser = _Parser(resources)
    machine = parser.machine(definition, "")
    if not parser.problems:
        parser.problems.extend(scope_problems(machine))
    if parser.problems:
        raise DefinitionError(parser.problems)
    return machine


def validate(definition: Any, resources: Collection[str] = ()) -> None:
    """Raise :class:`DefinitionError` if ``definition`` is invalid or unsupported."""
    parse_definition(definition, resources)
