"""What one running execution knows: its identity, its seams and its ``$$`` context.

A :class:`Runtime` is shared by every state of one execution (and by the branches and
inline iterations inside it); a Distributed Map child execution gets its own, made by
:meth:`Runtime.child_execution`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from plateseg.engine.clock import Clock
from plateseg.engine.events import History
from plateseg.engine.integrations.services import Services
from plateseg.engine.invoker import Invoker
from plateseg.engine.journal import Journal
from plateseg.engine.variables import Scope
from plateseg.errors import StatesError

__all__ = ["Aborted", "Context", "ExecutionInfo", "Runtime", "iso"]


class Context(dict[str, Any]):
    """The ``$$`` context object of one state, carrying the variables it may read.

    It is the plain JSON object AWS shows (``$$`` outputs exactly it); ``variables``
    rides along as an attribute so every path reader can resolve ``$name`` paths.
    """

    variables: Scope | None = None

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(self), memo)


class Aborted(StatesError):
    """Raised in a branch or iteration whose siblings already failed."""

    def __init__(self, cause: str = "stopped because a sibling branch or iteration failed") -> None:
        super().__init__("States.Aborted", cause)


#: The last second :func:`iso` formatted and its text (Map children share seconds).
_last_second: tuple[datetime | None, str] = (None, "")


def iso(moment: datetime) -> str:
    """AWS's timestamp form: ``2024-05-01T12:00:00.123Z``."""
    global _last_second
    m = moment
    second = m.replace(microsecond=0)
    cached = _last_second  # replaced whole, never changed: safe to share across threads
    if cached[0] != second:
        text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
        cached = _last_second = (second, text)
    return f"{cached[1]}{m.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class ExecutionInfo:
    """Identity of one execution (``$$.Execution`` and ``$$.StateMachine``)."""

    arn: str
    name: str
    input: Any
    start_time: datetime
    state_machine_arn: str
    state_machine_name: str
    role_arn: str

    @cached_property
    def start_iso(self) -> str:
        """``start_time`` in AWS's form (computed once)."""
        return iso(self.start_time)


#: The cancellation flag of every Distributed Map child execution (never set).
_NEVER_SET = threading.Event()


@dataclass(frozen=True)
class Runtime:
    """Seams and identity available to every state of an execution.

    Attributes
    ----------
    invoker : Invoker
        Runs Lambda functions.
    buckets : callable
        Bucket name → :class:`plateseg.store.Store`.
    clock : Clock
    history : History
    execution : ExecutionInfo
    region, account : str
    cancel : threading.Event
        Set when a sibling branch/iteration failed; checked between states.
    journal : Journal, optional
        Durable record of the top-level execution (``None`` in branches, iterations
        and child executions); ``step`` is the top-level step being run.
    stop : threading.Event
        Set by the caller to cancel the whole execution (``States.Aborted``).
    map_runs : list of dict
        Summary of each Map Run (shared across the whole top-level execution).
    scope : Scope
        The workflow variables of the (sub-)machine being run.
    services : Services
        Bound resources and child state machines (shared across the whole top-level
        execution, its Distributed Map children included).
    """

    invoker: Invoker
    buckets: Callable[[str], Any]
    clock: Clock
    history: History
    execution: ExecutionInfo
    region: str
    account: str
    cancel: threading.Event = field(default_factory=threading.Event)
    map_runs: list[dict[str, Any]] = field(default_factory=list)
    journal: Journal | None = None
    step: int = -1
    stop: threading.Event = field(default_factory=threading.Event)
    scope: Scope = field(default_factory=Scope)
    services: Services = field(default_factory=Services)

    def sibling(self) -> Runtime:
        """Same execution, fresh cancellation flag (for a group of branches/iterations)."""
        return replace(self, cancel=threading.Event(), journal=None)

    def in_scope(self, scope: Scope) -> Runtime:
        """This runtime with ``scope`` (a branch's or iteration's own variables)."""
        child = copy.copy(self)
        object.__setattr__(child, "scope", scope)
        return child

    def at_step(self, step: int) -> Runtime:
        """This runtime while the top-level state entered at ``step`` runs (journaled)."""
        return replace(self, step=step)

    def child_execution(self, execution: ExecutionInfo) -> Runtime:
        """A Distributed Map child execution: own identity, history not recorded.

        Its ``cancel`` flag is one that is never set: only sibling groups
        (:meth:`sibling`, with a flag of their own) are cancelled, never a child
        execution's top level.
        """
        child = object.__new__(Runtime)  # neither ``replace`` nor ``copy``: the hot path
        child.__dict__.update(
            self.__dict__,
            execution=execution,
            history=self.history.child(record=False),
            cancel=_NEVER_SET,
            journal=None,
            scope=Scope(),  # no outer variables, as in AWS
        )
        return child

    def bare_context(self) -> Context:
        """An empty context object carrying this runtime's variables: for a state that
        cannot read ``$$`` (:attr:`~plateseg.engine.model.State.reads_context`)."""
        context = Context()
        context.variables = self.scope
        return context

    def context_object(
        self,
        state_name: str,
        entered: datetime,
        retry_count: int = 0,
        item: tuple[int, Any] | None = None,
        key: str | None = None,
    ) -> Context:
        """The ``$$`` context object for a state (with this runtime's variables); ``key``
        is the property name of an item taken from a JSON object (``Map.Item.Key``)."""
        info = self.execution
        context = Context(
            {
                "Execution": {
                    "Id": info.arn,
                    "Input": info.input,
                    "Name": info.name,
                    "RoleArn": info.role_arn,
                    "StartTime": info.start_iso,
                    "RedriveCount": 0,
                },
                "StateMachine": {"Id": info.state_machine_arn, "Name": info.state_machine_name},
                "State": {
                    "Name": state_name,
                    "EnteredTime": iso(entered),
                    "RetryCount": retry_count,
                },
            }
        )
        context.variables = self.scope
        if item is not None:
            context["Map"] = {"Item": {"Index": item[0], "Value": item[1]}}
            if key is not None:
                context["Map"]["Item"]["Key"] = key
        return context
