"""The public face of the engine: :class:`LocalEngine` and :class:`ExecutionResult`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from plateseg.engine.clock import Clock, ExecutionClock, ExecutionTimedOut
from plateseg.engine.context import ExecutionInfo, Runtime
from plateseg.engine.definition import parse_definition
from plateseg.engine.events import Event, History, Listener
from plateseg.engine.execution import run_machine
from plateseg.engine.invoker import Invoker
from plateseg.engine.journal import Journal
from plateseg.engine.paths import check_payload_size
from plateseg.errors import StatesError, StoreError

__all__ = ["ExecutionResult", "LocalEngine"]

_REGION = "us-east-1"
_ACCOUNT = "000000000000"


@dataclass(frozen=True)
class ExecutionResult:
    """How one execution ended.

    Attributes
    ----------
    status : str
        ``"SUCCEEDED"``, ``"FAILED"``, ``"TIMED_OUT"`` (ran past the definition's
        ``TimeoutSeconds``; error ``States.Timeout``) or ``"ABORTED"`` (stopped by its
        caller).
    output : Any
        The final output (``None`` when failed).
    error, cause : str or None
        The ASL error name and cause when failed.
    execution_arn : str
    events : list of Event
        The execution's history (Distributed Map children excluded, as in AWS).
    map_runs : list of dict
        One summary per Map Run: ``map_run_arn``, ``state_name``, ``status``,
        ``item_counts`` and ``execution_counts`` (pending, running, succeeded, failed,
        aborted, total) and ``result_writer`` (``{"Bucket", "Key"}`` or ``None``).
    """

    status: str
    output: Any
    error: str | None
    cause: str | None
    execution_arn: str
    events: list[Event] = field(default_factory=list)
    map_runs: list[dict[str, Any]] = field(default_factory=list)


class _DeadlineInvoker(Invoker):
    """The engine's invoker, with each call bounded by the execution's deadline.

    A Lambda call still running at the execution's ``TimeoutSeconds`` is given up
    (as a task timeout is) and ends the execution with ``States.Timeout``.
    """

    def __init__(self, inner: Invoker, clock: ExecutionClock) -> None:  # no pools of its own
        self.inner = inner
        self.clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def invoke(self, reference: str, payload: Any, timeout: float | None) -> Any:
        left = self.clock.remaining()
        if left <= 0:
            raise ExecutionTimedOut(self.clock.timeout_seconds)
        if timeout is not None and timeout <= left:
            return self.inner.invoke(reference, payload, timeout)
        try:
            return self.inner.invoke(reference, payload, left)
        except StatesError as err:
            if err.name == "States.Timeout":
                raise ExecutionTimedOut(self.clock.timeout_seconds) from None
            raise

    def close(self) -> None:
        """The engine closes the shared invoker."""


def _no_buckets(name: str) -> Any:
    raise StoreError(f"the local engine was given no store for bucket {name!r}")


class LocalEngine:
    """Runs Amazon States Language definitions on this machine.

    Parameters
    ----------
    functions : mapping of str to (str or callable)
        Lambda function name → ``"module:callable"`` (run in worker processes) or a
        callable ``handler(event, context)`` (run in-process on a thread).
    buckets : callable
        Bucket name → :class:`plateseg.store.Store`, for ItemReader and ResultWriter.
    clock : Clock, optional
        Waits and retry intervals go through it (default: real time).
    workers : int
        Worker processes for ``"module:callable"`` functions.
    worker_initializer, worker_initargs
        Run once in each worker process.
    state_machine_name : str
        Name used in execution, state machine and Map Run ARNs.
    """

    def __init__(
        self,
        functions: Mapping[str, str | Callable[[Any, Any], Any]],
        buckets: Callable[[str], Any] | None = None,
        clock: Clock | None = None,
        workers: int = 2,
        worker_initializer: Callable[..., Any] | None = None,
        worker_initargs: tuple[Any, ...] = (),
        state_machine_name: str = "plateseg-segmentation",
    ) -> None:
        self.region = _REGION
        self.account = _ACCOUNT
        self.buckets = buckets or _no_buckets
        self.clock = clock or Clock()
        self.state_machine_name = state_machine_name
        self.invoker = Invoker(
            functions,
            workers=workers,
            initializer=worker_initializer,
            initargs=worker_initargs,
            arn_prefix=f"arn:aws:lambda:{self.region}:{self.account}:function:",
        )

    def run(
        self,
        definition: dict[str, Any],
        input_obj: Any,
        name: str | None = None,
        listener: Listener | None = None,
        journal: Journal | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecutionResult:
        """Run one execution to its end.

        Parameters
        ----------
        definition : dict
            The parsed ASL document.
        input_obj : Any
            The execution input (JSON-serialisable).
        name : str, optional
            Execution name (default: a random UUID); it fixes the execution ARN and so
            the Map Run ids and ResultWriter folders.
        listener : callable, optional
            Called with each :class:`Event`, one at a time.
        journal : Journal, optional
            Durable record of the execution. A journal that already holds this
            execution (same name and definition) makes this call *resume* it: finished
            states and Map batches are not run again.
        cancel : threading.Event, optional
            Set it (from any thread) to stop the execution: no new state or Map batch
            starts, running ones finish, and the result has status ``"ABORTED"``.

        Raises
        ------
        DefinitionError
            The definition is invalid or uses something the engine does not run.
        """
        machine = parse_definition(definition)
        name = name or str(uuid.uuid4())
        prefix = f"arn:aws:states:{self.region}:{self.account}"
        info = ExecutionInfo(
            arn=f"{prefix}:execution:{self.state_machine_name}:{name}",
            name=name,
            input=input_obj,
            start_time=self.clock.now(),
            state_machine_arn=f"{prefix}:stateMachine:{self.state_machine_name}",
            state_machine_name=self.state_machine_name,
            role_arn=f"arn:aws:iam::{self.account}:role/{self.state_machine_name}-local",
        )
        if journal is not None:
            journal.begin(name, definition, input_obj)
        history = History(self.clock.now, listener)
        clock, invoker = self.clock, self.invoker
        if machine.timeout_seconds is not None:  # the execution's own deadline
            clock = ExecutionClock(self.clock, machine.timeout_seconds)
            invoker = _DeadlineInvoker(self.invoker, clock)
        rt = Runtime(
            invoker=invoker,
            buckets=self.buckets,
            clock=clock,
            history=history,
            execution=info,
            region=self.region,
            account=self.account,
            journal=journal,
            stop=cancel or threading.Event(),
        )
        history.emit("ExecutionStarted", name=name, execution_arn=info.arn, input=input_obj)
        try:
            check_payload_size(input_obj, "execution input")
            output = run_machine(machine, input_obj, rt)
            clock.check_deadline()
            check_payload_size(output, "execution output")
        except StatesError as err:
            if isinstance(err, ExecutionTimedOut):
                status, event = "TIMED_OUT", "ExecutionTimedOut"
            else:
                status = "ABORTED" if rt.stop.is_set() else "FAILED"
                event = f"Execution{status.title()}"
            history.emit(event, error=err.name, cause=err.cause)
            if journal is not None:
                journal.finish(status, None, err.name, err.cause)
            return ExecutionResult(
                status=status,
                output=None,
                error=err.name or None,
                cause=err.cause or None,
                execution_arn=info.arn,
                events=list(history.events),
                map_runs=list(rt.map_runs),
            )
        history.emit("ExecutionSucceeded", output=output)
        if journal is not None:
            journal.finish("SUCCEEDED", output, None, None)
        return ExecutionResult(
            status="SUCCEEDED",
            output=output,
            error=None,
            cause=None,
            execution_arn=info.arn,
            events=list(history.events),
            map_runs=list(rt.map_runs),
        )

    def close(self) -> None:
        """Shut down the worker pools."""
        self.invoker.close()

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
