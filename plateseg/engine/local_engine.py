"""The public face of the engine: :class:`LocalEngine` and :class:`ExecutionResult`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, NoReturn

from plateseg.engine.clock import Clock, ExecutionClock, ExecutionTimedOut
from plateseg.engine.context import ExecutionInfo, Runtime
from plateseg.engine.definition import StateMachine, parse_definition
from plateseg.engine.events import Event, History, Listener
from plateseg.engine.execution import run_machine
from plateseg.engine.integrations import ResourceHandler, Services
from plateseg.engine.invoker import Invoker, functions_called_per_item
from plateseg.engine.journal import Journal
from plateseg.engine.paths import check_payload_size
from plateseg.errors import DefinitionError, StatesError, StoreError

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
    children : list of ExecutionResult
        The child executions it started (``states:startExecution``), in start order;
        each has ended (the engine waits for them before returning).
    name, state_machine_arn, input, start_date, stop_date
        The execution's identity, input and times (as DescribeExecution gives them).
    """

    status: str
    output: Any
    error: str | None
    cause: str | None
    execution_arn: str
    events: list[Event] = field(default_factory=list)
    map_runs: list[dict[str, Any]] = field(default_factory=list)
    children: list[ExecutionResult] = field(default_factory=list)
    name: str = ""
    state_machine_arn: str = ""
    input: Any = None
    start_date: datetime | None = None
    stop_date: datetime | None = None


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
            self._timed_out()
        if timeout is not None and timeout <= left:
            return self.inner.invoke(reference, payload, timeout)
        try:
            return self.inner.invoke(reference, payload, left)
        except StatesError as err:
            if err.name == "States.Timeout":
                self._timed_out()
            raise

    def _timed_out(self) -> NoReturn:
        self.clock.check_deadline()  # the deadline that passed (an outer one first)
        raise ExecutionTimedOut(self.clock.timeout_seconds)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return self.inner.submit(fn, *args)

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
    prewarm_workers : bool
        Start all worker processes at the first invocation and import every
        ``"module:callable"`` handler in them while they wait (see
        :class:`~plateseg.engine.invoker.Invoker`).
    state_machine_name : str
        Name used in execution, state machine and Map Run ARNs.
    resources : mapping of str to callable, optional
        Task resource ARN → ``handler(parameters, context)`` (any resource: an SNS
        publish, a DynamoDB call, …); see :mod:`plateseg.engine.integrations.bound`.
    state_machines : mapping of str to dict, optional
        State machine ARN (or plain name, made an ARN of this engine's account) → its
        definition: the children ``states:startExecution`` may start.

    Raises
    ------
    DefinitionError
        A registered state machine's definition is invalid (each problem prefixed
        with its ARN).
    """

    def __init__(
        self,
        functions: Mapping[str, str | Callable[[Any, Any], Any]],
        buckets: Callable[[str], Any] | None = None,
        clock: Clock | None = None,
        workers: int = 2,
        worker_initializer: Callable[..., Any] | None = None,
        worker_initargs: tuple[Any, ...] = (),
        prewarm_workers: bool = False,
        state_machine_name: str = "plateseg-segmentation",
        resources: Mapping[str, ResourceHandler] | None = None,
        state_machines: Mapping[str, Any] | None = None,
    ) -> None:
        self.region = _REGION
        self.account = _ACCOUNT
        self.buckets = buckets or _no_buckets
        self.clock = clock or Clock()
        self.state_machine_name = state_machine_name
        self.resources: dict[str, ResourceHandler] = dict(resources or {})
        self.children = _Children(self, state_machines or {})
        self.invoker = Invoker(
            functions,
            workers=workers,
            initializer=worker_initializer,
            initargs=worker_initargs,
            arn_prefix=f"arn:aws:lambda:{self.region}:{self.account}:function:",
            prewarm=prewarm_workers,
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
        machine = parse_definition(definition, self.resources)
        if self.invoker.per_item is None:  # which handlers every worker warms
            self.invoker.per_item = functions_called_per_item(definition)
        return self._execute(
            machine,
            definition,
            input_obj,
            name or str(uuid.uuid4()),
            self.state_machine_arn(self.state_machine_name),
            listener=listener,
            journal=journal,
            stop=cancel or threading.Event(),
            clock=self.clock,
            invoker=self.invoker,
        )

    def state_machine_arn(self, name: str) -> str:
        """The ARN of state machine ``name`` in the engine's region and account."""
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{name}"

    def _execute(
        self,
        machine: StateMachine,
        definition: Any,
        input_obj: Any,
        name: str,
        state_machine_arn: str,
        *,
        listener: Listener | None,
        journal: Journal | None,
        stop: threading.Event,
        clock: Clock,
        invoker: Invoker,
    ) -> ExecutionResult:
        """Run one execution (top-level or a child) on ``clock`` and ``invoker``."""
        machine_name = state_machine_arn.rsplit(":", 1)[-1]
        info = ExecutionInfo(
            arn=f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}",
            name=name,
            input=input_obj,
            start_time=self.clock.now(),
            state_machine_arn=state_machine_arn,
            state_machine_name=machine_name,
            role_arn=f"arn:aws:iam::{self.account}:role/{machine_name}-local",
        )
        if journal is not None:
            journal.begin(name, definition, input_obj)
        history = History(self.clock.now, listener)
        if machine.timeout_seconds is not None:  # the execution's own deadline
            clock = ExecutionClock(clock, machine.timeout_seconds)
        if isinstance(clock, ExecutionClock):  # this one's deadline, or its parent's
            invoker = _DeadlineInvoker(invoker, clock)
        services = Services(self.resources, self.children if self.children.arns else None)
        rt = Runtime(
            invoker=invoker,
            buckets=self.buckets,
            clock=clock,
            history=history,
            execution=info,
            region=self.region,
            account=self.account,
            journal=journal,
            stop=stop,
            services=services,
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
            return self._result(info, rt, status, None, err.name, err.cause)
        history.emit("ExecutionSucceeded", output=output)
        if journal is not None:
            journal.finish("SUCCEEDED", output, None, None)
        return self._result(info, rt, "SUCCEEDED", output, None, None)

    def _result(
        self,
        info: ExecutionInfo,
        rt: Runtime,
        status: str,
        output: Any,
        error: str | None,
        cause: str | None,
    ) -> ExecutionResult:
        stopped = self.clock.now()
        return ExecutionResult(
            status=status,
            output=output,
            error=error or None,
            cause=cause or None,
            execution_arn=info.arn,
            events=list(rt.history.events),
            map_runs=list(rt.map_runs),
            children=rt.services.join(),
            name=info.name,
            state_machine_arn=info.state_machine_arn,
            input=info.input,
            start_date=info.start_time,
            stop_date=stopped,
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


class _Children:
    """The state machines ``states:startExecution`` may start (a :class:`ChildRunner`)."""

    def __init__(self, engine: LocalEngine, definitions: Mapping[str, Any]) -> None:
        self.engine = engine
        self.definitions: dict[str, Any] = {}
        self.machines: dict[str, StateMachine] = {}
        problems: list[str] = []
        for key, definition in definitions.items():
            arn = key if key.startswith("arn:") else engine.state_machine_arn(key)
            try:
                self.machines[arn] = parse_definition(definition, engine.resources)
            except DefinitionError as exc:
                problems.extend(f"state machine {arn}: {p}" for p in exc.problems)
            self.definitions[arn] = definition
        if problems:
            raise DefinitionError(problems)
        self.arns = frozenset(self.machines)
        self._names: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def knows(self, state_machine_arn: str) -> bool:
        return state_machine_arn in self.machines

    def claim(self, state_machine_arn: str, name: str) -> bool:
        with self._lock:
            if (state_machine_arn, name) in self._names:
                return False
            self._names.add((state_machine_arn, name))
            return True

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
        return self.engine._execute(
            self.machines[state_machine_arn],
            self.definitions[state_machine_arn],
            input_obj,
            name,
            state_machine_arn,
            listener=None,
            journal=None,
            stop=stop,
            clock=clock,
            invoker=invoker,
        )

    def start(self, state_machine_arn: str, input_obj: Any, name: str) -> Callable[[], Any]:
        engine = self.engine

        def run() -> ExecutionResult:
            return self.run(
                state_machine_arn,
                input_obj,
                name,
                clock=engine.clock,
                invoker=engine.invoker,
                stop=threading.Event(),
            )

        return run
