"""Lambda invocation for the local engine.

A function is a Python callable (run in-process on a thread) or a ``"module:callable"``
string, run in a ``spawn`` process pool so CPU-bound handlers use every core while the
engine's retries and waits stay in the parent. Handlers are called as
``handler(event, context)`` with a Lambda-like context object.

Failures are reported as AWS Lambda reports them: ``Error`` = the exception's class
name, ``Cause`` = ``{"errorMessage", "errorType", "stackTrace"}`` as JSON. A worker that
dies (segfault, ``os._exit``, OOM kill, or a handler out of memory) fails only the
invocation it was running, with ``Lambda.Unknown``, and is replaced
(:mod:`plateseg.engine.workers`), so the Task's Retry applies and other invocations
in flight are untouched. A timeout (``States.Timeout``) kills the worker, as Lambda
stops a function at its timeout. Test-only faults (:mod:`plateseg.engine.faults`,
``PLATESEG_FAULTS``) are injected here: Lambda service errors before the call,
runtime crashes in the worker before the handler.
"""

from __future__ import annotations

import importlib
import json
import re
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from plateseg.engine import faults
from plateseg.engine.integrations.catalog import LAMBDA_INVOKE
from plateseg.engine.retry import TaskFailure
from plateseg.engine.workers import WorkerDied, WorkerPool, WorkerTimedOut

__all__ = ["Invoker", "LambdaContext", "function_name_of", "functions_called_per_item"]

Handler = Callable[[Any, Any], Any]
_NAME = re.compile(r"^(?:arn:aws[a-z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?(?:function:)?([^:]+)")


def function_name_of(reference: str) -> str:
    """The function name in a name, ``name:alias``, partial or full Lambda ARN."""
    match = _NAME.match(reference)
    return match.group(1) if match else reference


def functions_called_per_item(definition: Mapping[str, Any]) -> frozenset[str]:
    """Names of the Lambda functions the Task states inside a Map's ItemProcessor (or
    Iterator) call, at any depth: the functions called per item, not once.

    >>> functions_called_per_item({"States": {
    ...     "L": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:look"},
    ...     "M": {"Type": "Map", "ItemProcessor": {"States": {"S": {"Type": "Task",
    ...           "Resource": "arn:aws:states:::lambda:invoke",
    ...           "Parameters": {"FunctionName": "seg", "Payload.$": "$"}}}}}}})
    frozenset({'seg'})
    """
    found: set[str] = set()

    def visit(states: Any, in_map: bool) -> None:
        if not isinstance(states, Mapping):
            return
        for state in states.values():
            if not isinstance(state, Mapping):
                continue
            if state.get("Type") == "Task" and in_map:
                resource = str(state.get("Resource", ""))
                if resource.startswith(LAMBDA_INVOKE):
                    arguments = state.get("Parameters") or state.get("Arguments") or {}
                    name = arguments.get("FunctionName") if isinstance(arguments, Mapping) else None
                    if isinstance(name, str):
                        found.add(function_name_of(name))
                elif ":function:" in resource:
                    found.add(function_name_of(resource))
            for branch in state.get("Branches", ()) or ():
                if isinstance(branch, Mapping):
                    visit(branch.get("States"), in_map)
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if isinstance(processor, Mapping):
                visit(processor.get("States"), True)

    visit(definition.get("States"), False)
    return frozenset(found)


@dataclass
class LambdaContext:
    """The attributes of AWS Lambda's context object that handlers commonly read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    deadline: float | None
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 10240

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline is None:
            return 900_000
        return max(0, int((self.deadline - time.time()) * 1000))


_HANDLERS: dict[str, Handler] = {}


def _load(spec: str) -> Handler:
    handler = _HANDLERS.get(spec)
    if handler is None:
        module_name, _, attr = spec.partition(":")
        handler = getattr(importlib.import_module(module_name), attr or "handler")
        _HANDLERS[spec] = handler
    return handler


def _error_json(exc: BaseException) -> str:
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
        }
    )


def _call(handler: Handler | str, payload_json: str, context: LambdaContext) -> tuple[str, str]:
    """Run one invocation; return ``("ok", result JSON)`` or ``("error", cause JSON)``."""
    try:
        function = _load(handler) if isinstance(handler, str) else handler
        result = function(json.loads(payload_json), context)
    except Exception as exc:
        return "error", _error_json(exc)
    try:
        return "ok", json.dumps(result)
    except (TypeError, ValueError) as exc:
        cause = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
            "stackTrace": [],
        }
        return "error", json.dumps(cause)


def _warm_in_worker(handler: str) -> None:
    """Import a handler in an idle worker, ahead of its first call (:meth:`Invoker`'s
    ``prewarm``)."""
    _load(handler)


def _prepare_in_worker(handler: str, payload_json: str, context: LambdaContext) -> None:
    """Import the handler before the timeout clock starts (Lambda's init phase)."""
    _load(handler)


def _call_in_worker(handler: str, payload_json: str, context: LambdaContext) -> tuple[str, str]:
    """:func:`_call` in a worker process: faults first; out of memory ends the runtime."""
    rule = faults.fire("worker", context.function_name, payload_json)
    if rule is not None:
        try:
            faults.run_worker_fault(rule)
        except MemoryError as exc:
            return "died", _error_json(exc)
    status, body = _call(handler, payload_json, context)
    if status == "error" and json.loads(body).get("errorType") == "MemoryError":
        return "died", body
    return status, body


class Invoker:
    """Runs Lambda functions by name.

    Parameters
    ----------
    functions : mapping of str to (str or callable)
        Function name → ``"module:callable"`` or a callable.
    workers : int
        Size of the process pool for ``"module:callable"`` functions.
    initializer, initargs
        Run once in each worker process.
    arn_prefix : str
        ``arn:aws:lambda:REGION:ACCOUNT:function:`` for context objects and messages.
    prewarm : bool
        Start every worker process at the first call, each importing every
        ``"module:callable"`` handler while idle (in the order given), so the workers a
        Map needs are ready when it starts. Off by default: a test engine with many
        workers and one call would start them all.

    Attributes
    ----------
    per_item : frozenset of str or None
        Names of the functions a Map calls per item (set by the engine from the
        definition). With ``prewarm``, every worker imports those; the other handlers
        (called once per execution: Lookup, Aggregate) are imported by one worker only,
        and their calls go to it. ``None``: every worker imports every handler.
    """

    def __init__(
        self,
        functions: Mapping[str, str | Handler],
        workers: int,
        initializer: Callable[..., Any] | None,
        initargs: tuple[Any, ...],
        arn_prefix: str,
        prewarm: bool = False,
    ) -> None:
        self.functions = dict(functions)
        self.prewarm = prewarm
        self.per_item: frozenset[str] | None = None
        self.workers = max(1, workers)
        self.initializer = initializer
        self.initargs = initargs
        self.arn_prefix = arn_prefix
        self._lock = threading.Lock()
        self._pool: WorkerPool | None = None
        self._threads: ThreadPoolExecutor | None = None
        #: Invocations started, by function name (retries included).
        self.calls: Counter[str] = Counter()

    @property
    def crashes(self) -> int:
        """Worker processes that died or were killed at a timeout (each replaced)."""
        return self._pool.replaced if self._pool is not None else 0

    def _process_pool(self) -> WorkerPool:
        with self._lock:
            if self._pool is None or self._pool.closed:
                handlers = tuple(h for h in self.functions.values() if isinstance(h, str))
                self._pool = WorkerPool(
                    self.workers,
                    _call_in_worker,
                    self.initializer,
                    self.initargs,
                    prepare=_prepare_in_worker,
                    warm=_warm_in_worker if self.prewarm else None,
                    warm_items=handlers if self.prewarm else (),
                    warm_once=self._called_once(handlers) if self.prewarm else frozenset(),
                )
                if self.prewarm:
                    self._pool.prewarm()
            return self._pool

    def _called_once(self, handlers: tuple[str, ...]) -> frozenset[str]:
        """The handlers no Map calls per item (:attr:`per_item`)."""
        if self.per_item is None:
            return frozenset()
        per_item = {self.functions.get(name) for name in self.per_item}
        return frozenset(h for h in handlers if h not in per_item)

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="lambda")
            return self._threads

    def _in_worker(
        self,
        name: str,
        handler: str,
        payload_json: str,
        context: LambdaContext,
        timeout: float | None,
    ) -> tuple[str, str]:
        try:
            return self._process_pool().call(
                (handler, payload_json, context), timeout, warmed=handler
            )
        except WorkerTimedOut:
            raise TaskFailure(
                "States.Timeout",
                f"Task timed out after {timeout} seconds (function {name}); "
                "its worker process was stopped",
            ) from None
        except WorkerDied as died:
            raise TaskFailure(
                "Lambda.Unknown",
                f"The worker process running function {name} {died.reason}; "
                "the local engine started a new one.",
            ) from None
        except (OSError, RuntimeError) as exc:
            raise TaskFailure(
                "Lambda.Unknown", f"could not run a worker process for function {name}: {exc}"
            ) from None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` on the invoker's threads (a bound resource's call)."""
        return self._thread_pool().submit(fn, *args)

    def invoke(self, reference: str, payload: Any, timeout: float | None) -> Any:
        """Invoke a function and return its (JSON round-tripped) result.

        Parameters
        ----------
        reference : str
            Function name or ARN.
        payload : Any
            The event, JSON-serialisable.
        timeout : float, optional
            Seconds before ``States.Timeout``.

        Raises
        ------
        TaskFailure
            The handler's error, ``Lambda.Unknown`` for a dead worker,
            ``Lambda.ResourceNotFoundException`` for an unknown function,
            ``States.Timeout`` on timeout.
        """
        name = function_name_of(reference)
        handler = self.functions.get(name)
        if handler is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise TaskFailure(
                "Lambda.ResourceNotFoundException",
                f"Function not found: {self.arn_prefix}{name} (the local engine knows: {known})",
            )
        context = LambdaContext(
            function_name=name,
            invoked_function_arn=f"{self.arn_prefix}{name}",
            aws_request_id=str(uuid.uuid4()),
            deadline=time.time() + timeout if timeout else None,
        )
        payload_json = json.dumps(payload)
        with self._lock:
            self.calls[name] += 1
        rule = faults.fire("invoke", name, payload_json)
        if rule is not None:
            error = str(rule.spec["error"])
            raise TaskFailure(error, f"{error}: injected fault for function {name}")
        if isinstance(handler, str):
            status, body = self._in_worker(name, handler, payload_json, context, timeout)
        else:
            future: Future[tuple[str, str]]
            future = self._thread_pool().submit(_call, handler, payload_json, context)
            try:
                status, body = future.result(timeout=timeout)
            except FutureTimeout:
                future.cancel()
                raise TaskFailure(
                    "States.Timeout", f"Task timed out after {timeout} seconds (function {name})"
                ) from None
        if status == "died":
            cause = json.loads(body)
            raise TaskFailure(
                "Lambda.Unknown",
                f"The worker process running function {name} ran out of memory "
                f"({cause.get('errorMessage') or 'MemoryError'}); the local engine "
                "started a new one.",
            )
        if status == "ok":
            return json.loads(body)
        cause = json.loads(body)
        raise TaskFailure(cause["errorType"], body)

    def close(self) -> None:
        """Shut down the worker processes and threads."""
        with self._lock:
            pool, threads = self._pool, self._threads
            self._threads = None
        if pool is not None:
            pool.close()
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
