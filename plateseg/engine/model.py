"""The parsed form of an ASL definition: frozen dataclasses, one per state type.

Payload templates (Parameters, ResultSelector, ItemSelector) stay JSON values; paths
are strings, and ``None`` stands for the JSON ``null`` (for InputPath, OutputPath and
ResultPath that has its ASL meaning: ``{}`` input, discarded result, ``{}`` output).
A JSONata state (``query_language == "JSONata"``) keeps ``Arguments``, ``Output`` and
its other fields as written, ``"{% … %}"`` expressions included; ``Assign`` is kept
for both languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plateseg.engine.choice import Rule
from plateseg.engine.retry import Catcher, Retrier

__all__ = [
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
]


@dataclass(frozen=True, kw_only=True)
class State:
    """Fields every state may have; ``None`` paths mean the JSON ``null``."""

    name: str
    type: str
    pointer: str
    query_language: str = "JSONPath"
    next: str | None = None
    end: bool = False
    input_path: str | None = "$"
    output_path: str | None = "$"
    parameters: Any = None
    has_parameters: bool = False
    result_selector: Any = None
    result_path: str | None = "$"
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    assign: Any = None
    arguments: Any = None
    has_arguments: bool = False
    output: Any = None
    has_output: bool = False
    #: False when nothing in the state can read ``$$`` (a JSONPath Pass, Choice, Wait,
    #: Succeed or Fail state whose definition holds no ``$$``): its context object is
    #: then never built, the hot path of a Map of Pass children.
    reads_context: bool = True


@dataclass(frozen=True, kw_only=True)
class TaskState(State):
    resource: str
    timeout_seconds: int | str | None = None
    timeout_seconds_path: str | None = None


@dataclass(frozen=True, kw_only=True)
class PassState(State):
    result: Any = None
    has_result: bool = False


@dataclass(frozen=True, kw_only=True)
class ChoiceState(State):
    choices: tuple[Rule, ...] = ()
    default: str | None = None


@dataclass(frozen=True, kw_only=True)
class WaitState(State):
    seconds: float | str | None = None
    seconds_path: str | None = None
    timestamp: str | None = None
    timestamp_path: str | None = None


@dataclass(frozen=True, kw_only=True)
class SucceedState(State):
    pass


@dataclass(frozen=True, kw_only=True)
class FailState(State):
    error: str | None = None
    error_path: str | None = None
    cause: str | None = None
    cause_path: str | None = None


@dataclass(frozen=True, kw_only=True)
class ParallelState(State):
    branches: tuple[StateMachine, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MapState(State):
    processor: StateMachine
    mode: str = "INLINE"
    items: Any = None
    has_items: bool = False
    items_path: str = "$"
    item_selector: Any = None
    has_item_selector: bool = False
    max_concurrency: int | str = 0
    max_concurrency_path: str | None = None
    item_reader: Mapping[str, Any] | None = None
    item_batcher: Mapping[str, Any] | None = None
    result_writer: Mapping[str, Any] | None = None
    tolerated_percentage: Any = None
    tolerated_percentage_path: str | None = None
    tolerated_count: Any = None
    tolerated_count_path: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class StateMachine:
    """A parsed (sub-)state machine."""

    start_at: str
    states: Mapping[str, State] = field(default_factory=dict)
    timeout_seconds: int | None = None
