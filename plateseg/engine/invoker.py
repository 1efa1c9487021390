"""Lambda invocation for the local engine.

A function is a Python callable (run in-process on a thread) or a ``"module:callable"``
string, run in a ``spawn`` process pool so CPU-bound handlers use every core while the
engine's retries and waits stay in the parent. Handlers are called as
``handler(event, context)`` with a Lambda-like context object.

Failures are reported as AWS Lambda reports them: ``Error`` = the exception's class
name, ``Cause`` = ``{"errorMessage", "errorType", "stackTrace"}`` as JSON. A worker that
dies (segfault, ``os._exit``, OOM kill) fails the invocations it broke with
``Lambda.Unknown`` and the pool is recreated, so the Task's Retry applies.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from plateseg.engine.retry import TaskFailure

__all__ = ["Invoker", "LambdaContext", "function_name_of"]

Handler = Callable[[Any, Any], Any]
_NAME = re.compile(r"^(?:arn:aws[a-z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?(?:function:)?([^:]+)")


def function_name_of(reference: str) -> str:
    """The function name in a name, ``name:alias``, partial or full Lambda ARN."""
    match = _NAME.match(reference)
    return match.group(1) if match else reference


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
    """

    def __init__(
        self,
        functions: Mapping[str, str | Handler],
        workers: int,
        initializer: Callable[..., Any] | None,
        initargs: tuple[Any, ...],
        arn_prefix: str,
    ) -> None:
        self.functions = dict(functions)
        self.workers = max(1, workers)
        self.initializer = initializer
        self.initargs = initargs
        self.arn_prefix = arn_prefix
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._threads: ThreadPoolExecutor | None = None
        self.crashes = 0

    def _process_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=self.initializer,
                    initargs=self.initargs,
                )
            return self._pool

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="lambda")
            return self._threads

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
                self.crashes += 1
            else:
                return
        pool.shutdown(wait=False, cancel_futures=True)

    def _submit(
        self, name: str, handler: str, payload_json: str, context: LambdaContext
    ) -> tuple[ProcessPoolExecutor, Future[tuple[str, str]]]:
        """Submit to the pool, replacing it once if it is broken or shut down."""
        for attempt in (1, 2):
            pool = self._process_pool()
            try:
                return pool, pool.submit(_call, handler, payload_json, context)
            except (BrokenProcessPool, RuntimeError) as exc:
                self._discard(pool)
                if attempt == 2:
                    raise TaskFailure(
                        "Lambda.Unknown",
                        f"could not start a worker process for function {name}: {exc}",
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

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
        pool: ProcessPoolExecutor | None = None
        future: Future[tuple[str, str]]
        if isinstance(handler, str):
            pool, future = self._submit(name, handler, payload_json, context)
        else:
            future = self._thread_pool().submit(_call, handler, payload_json, context)
        try:
            status, body = future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            raise TaskFailure(
                "States.Timeout", f"Task timed out after {timeout} seconds (function {name})"
            ) from None
        except BrokenProcessPool as exc:
            if pool is not None:
                self._discard(pool)
            raise TaskFailure(
                "Lambda.Unknown",
                f"The worker process running function {name} exited unexpectedly "
                f"({exc}); the local engine restarted its worker pool.",
            ) from None
        if status == "ok":
            return json.loads(body)
        cause = json.loads(body)
        raise TaskFailure(cause["errorType"], body)

    def close(self) -> None:
        """Shut down the worker pools."""
        with self._lock:
            pool, threads = self._pool, self._threads
            self._pool = self._threads = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
