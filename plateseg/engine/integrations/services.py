"""What one execution holds for its service integrations: bound resources, the child
state machines it may start, and the child executions it started."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from plateseg.engine.clock import Clock
    from plateseg.engine.invoker import Invoker
    from plateseg.engine.local_engine import ExecutionResult

__all__ = ["ChildRunner", "ResourceHandler", "Services"]

#: A bound resource: ``handler(parameters, context)`` → the task's result, where
#: ``context`` is the state's ``$$`` context object (a plain dict).
ResourceHandler = Callable[[Any, dict[str, Any]], Any]


class ChildRunner(Protocol):
    """The engine's side of ``states:startExecution``: its registered state machines."""

    def knows(self, state_machine_arn: str) -> bool:
        """Whether a state machine is registered under this ARN."""
        ...

    def claim(self, state_machine_arn: str, name: str) -> bool:
        """Reserve an execution name for a state machine; ``False`` if already used."""
        ...

    def run(
        self,
        state_machine_arn: str,
        input_obj: Any,
        name: str,
        *,
        clock: Clock,
        invoker: Invoker,
        stop: threading.Event,
    ) -> ExecutionResult:
        """Run one execution of a registered state machine to its end."""
        ...

    def start(self, state_machine_arn: str, input_obj: Any, name: str) -> Callable[[], Any]:
        """A callable that runs the execution on its own (no parent deadline or stop)."""
        ...


@dataclass
class Services:
    """Seams of one top-level execution (shared by its branches and Map children).

    Attributes
    ----------
    resources : mapping
        Resource ARN → :data:`ResourceHandler`, bound by the engine's user.
    children : ChildRunner, optional
        Runs child state machines (``None``: no state machine is registered).
    """

    resources: Mapping[str, ResourceHandler] = field(default_factory=dict)
    children: ChildRunner | None = None
    _slots: list[Any] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, result: ExecutionResult) -> None:
        """Note a child execution that has ended (``.sync``)."""
        with self._lock:
            self._slots.append(result)

    def launch(self, run: Callable[[], ExecutionResult], name: str) -> None:
        """Run a child execution on a thread of its own (plain ``startExecution``)."""
        with self._lock:
            index = len(self._slots)
            self._slots.append(None)

        def target() -> None:
            result = run()
            with self._lock:
                self._slots[index] = result

        thread = threading.Thread(target=target, name=f"child-{name}", daemon=False)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def join(self) -> list[ExecutionResult]:
        """Wait for the child executions still running; return all, in start order."""
        while True:
            with self._lock:
                running = [t for t in self._threads if t.is_alive()]
            if not running:
                break
            for thread in running:
                thread.join()
        with self._lock:
            return [slot for slot in self._slots if slot is not None]
