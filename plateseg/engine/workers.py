"""Worker processes for Lambda invocations: one invocation per process at a time.

Why not :class:`concurrent.futures.ProcessPoolExecutor`: when one of its workers dies,
the whole executor breaks and *every* invocation in flight fails with it. On AWS a
Lambda runtime that dies (segfault, out-of-memory kill) fails only its own
invocation. Here each worker is a ``spawn`` process with its own pipe, so a death is
seen by exactly the invocation that was running in it; that worker is replaced and
the others carry on. A timed-out invocation kills its worker, as Lambda stops a
function at its timeout instead of letting it run on.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = ["WorkerDied", "WorkerPool", "WorkerTimedOut"]


class WorkerDied(Exception):
    """The worker process died while running an invocation (``reason`` says how)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WorkerTimedOut(Exception):
    """The invocation outlived its timeout; its worker was killed."""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {
            "SIGSEGV": " (segmentation fault)",
            "SIGKILL": " (killed, e.g. by the out-of-memory killer)",
            "SIGBUS": " (bus error)",
            "SIGABRT": " (aborted)",
        }.get(name, "")
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


def _worker_main(
    conn: Connection,
    run: Callable[..., tuple[str, str]],
    prepare: Callable[..., None] | None,
    initializer: Callable[..., Any] | None,
    initargs: tuple[Any, ...],
    warm: Callable[[Any], None] | None = None,
    warm_items: tuple[Any, ...] = (),
) -> None:
    """Loop of a worker process: receive a call, run it, send the result back.

    Before each call ``prepare(*task)`` (loading the handler's module: Lambda's init
    phase, which does not count against the function's timeout) runs, then
    ``("started", "")`` tells the parent to start the timeout clock. While no call is
    waiting, ``warm(item)`` runs for each of ``warm_items`` in turn (loading the
    handlers a later call will need), one item between two looks at the pipe, so a
    call waits for at most one item. ``None`` ends the worker at once: no interpreter
    teardown, which only costs time once every call has answered.
    """
    if initializer is not None:
        initializer(*initargs)
    pending = list(warm_items) if warm is not None else []
    while True:
        try:
            while pending and not conn.poll(0):
                with contextlib.suppress(Exception):  # a load error is reported by ``run``
                    warm(pending.pop(0))  # type: ignore[misc]
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            _exit_now()
        if prepare is not None:
            with contextlib.suppress(Exception):  # a load error is reported by ``run``
                prepare(*task)
        conn.send(("started", ""))
        status, body = run(*task)
        conn.send((status, body))
        if status == "died":  # the runtime cannot be trusted any more (out of memory)
            conn.close()
            return


def _exit_now() -> None:
    """End the worker process without the interpreter's teardown (module and object
    finalisation of numpy, onnxruntime, ... takes a noticeable fraction of a second);
    what it printed is flushed first."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


class _Slots:
    """The pool's slots: idle workers, handed out longest idle first, and free slots
    (``None``: a worker may be started there), handed out only when no worker is idle.

    Longest idle first because an idle worker warms (imports the handlers it has not
    loaded yet): at the end of a Map the worker that finished first has had time to
    load Aggregate, the one that just answered has not. A caller may ``prefer`` one
    worker (the one that warmed the handler it calls), taken when it is idle.
    """

    def __init__(self, free: int) -> None:
        self._ready = threading.Condition()
        self._idle: collections.deque[_Worker] = collections.deque()
        self._free = free

    def put(self, worker: _Worker | None) -> None:
        with self._ready:
            if worker is None:
                self._free += 1
            else:
                self._idle.append(worker)
            self._ready.notify()

    def get(self, prefer: _Worker | None = None) -> _Worker | None:
        with self._ready:
            self._ready.wait_for(lambda: bool(self._idle) or self._free > 0)
            if prefer is not None and prefer in self._idle:
                self._idle.remove(prefer)
                return prefer
            return self._take()

    def take_free(self) -> bool:
        """Claim a free slot if there is one (without waiting)."""
        with self._ready:
            if self._free == 0:
                return False
            self._free -= 1
            return True

    def _take(self) -> _Worker | None:
        if self._idle:
            return self._idle.popleft()
        self._free -= 1
        return None


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=10)
        self.conn.close()


class WorkerPool:
    """At most ``size`` worker processes, each running one call at a time.

    Parameters
    ----------
    size : int
        Number of worker processes (started on demand, replaced when they die).
    run : callable
        Module-level function called in the worker as ``run(*args)``; returns
        ``(status, body)`` strings. ``status == "died"`` ends the worker after replying.
    prepare : callable, optional
        Module-level function called as ``prepare(*args)`` before the timeout clock
        starts (the init phase: importing the handler).
    initializer, initargs
        Run once in each worker process when it starts.
    warm, warm_items
        Module-level function a worker calls as ``warm(item)`` for each item while it
        waits for its first calls (see :meth:`prewarm`).
    warm_once
        Those of ``warm_items`` only one worker warms (the first started, or the next
        one after it died): handlers called once per execution, whose import would
        otherwise cost every worker CPU time. A call naming one of them
        (:meth:`call`'s ``warmed``) goes to that worker when it is idle.
    """

    def __init__(
        self,
        size: int,
        run: Callable[..., tuple[str, str]],
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        prepare: Callable[..., None] | None = None,
        warm: Callable[[Any], None] | None = None,
        warm_items: tuple[Any, ...] = (),
        warm_once: frozenset[Any] = frozenset(),
    ) -> None:
        self.size = max(1, size)
        self._run = run
        self._prepare = prepare
        self._initializer = initializer
        self._initargs = initargs
        self._warm = warm
        self._warm_items = warm_items
        self._warm_once = warm_once
        #: The worker that warms ``warm_once`` (``None`` until one is started).
        self._once_worker: _Worker | None = None
        self._context = multiprocessing.get_context("spawn")
        #: Idle workers, or ``None`` for a free slot where a worker may be started.
        self._slots = _Slots(self.size)
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()
        self.closed = False
        #: Workers that died or were killed (crash or timeout) and were replaced.
        self.replaced = 0

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        with self._lock:
            owner = self._once_worker
            warms_once = owner is None or not owner.alive()
        items = self._warm_items
        if not warms_once:
            items = tuple(item for item in items if item not in self._warm_once)
        process = self._context.Process(
            target=_worker_main,
            args=(
                child,
                self._run,
                self._prepare,
                self._initializer,
                self._initargs,
                self._warm,
                items,
            ),
            daemon=True,
            name="plateseg-lambda",
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        with self._lock:
            if not self.closed:
                self._all.add(worker)
                if warms_once and self._warm_once:
                    self._once_worker = worker
                return worker
        worker.kill()  # the pool closed while this worker started: close() never sees it
        raise RuntimeError("the worker pool is closed")

    def prewarm(self) -> None:
        """Start a worker in every free slot now rather than at its first call: each
        boots and warms (``warm_items``) while the parent does other work (on the
        local engine: while Lookup runs), instead of at the start of the Map."""
        while self._slots.take_free():
            try:
                self._slots.put(self._start())
            except (OSError, RuntimeError):  # started at its first call instead
                self._slots.put(None)
                return

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)
            self.replaced += 1
        self._slots.put(None)

    def call(
        self, args: tuple[Any, ...], timeout: float | None, warmed: Any = None
    ) -> tuple[str, str]:
        """Run ``run(*args)`` in a worker and return its ``(status, body)``; when
        ``warmed`` is one of ``warm_once``, in the worker that warmed it if it is idle.

        Raises
        ------
        WorkerDied
            The worker died during the call (its reason names the signal or exit code).
        WorkerTimedOut
            No answer within ``timeout`` seconds; the worker was killed.
        RuntimeError
            The pool is closed.
        """
        if self.closed:
            raise RuntimeError("the worker pool is closed")
        worker = self._slots.get(self._once_worker if warmed in self._warm_once else None)
        if self.closed:  # closed while this call waited for a slot
            self._slots.put(worker)
            raise RuntimeError("the worker pool is closed")
        try:
            if worker is None or not worker.alive():
                if worker is not None:
                    self._discard_quietly(worker)
                worker = self._start()
            worker.conn.send(args)
        except BaseException:
            self._slots.put(None if worker is None or not worker.alive() else worker)
            raise
        try:
            if self._answer(worker, None) == ("started", ""):  # init done: start the clock
                ready = wait([worker.conn, worker.process.sentinel], timeout)
            else:
                ready = [worker.process.sentinel]
            if worker.conn in ready:
                try:
                    reply: tuple[str, str] = worker.conn.recv()
                except (EOFError, OSError):
                    reply = ("", "")
                if reply[0]:
                    if reply[0] == "died":
                        self._discard(worker)
                    else:
                        self._slots.put(worker)
                    return reply
            if not ready:
                self._discard(worker)
                raise WorkerTimedOut()
            worker.process.join(timeout=10)
            reason = _describe_exit(worker.process.exitcode)
            self._discard(worker)
            raise WorkerDied(reason)
        except (WorkerDied, WorkerTimedOut):
            raise
        except BaseException:
            self._discard(worker)
            raise

    @staticmethod
    def _answer(worker: _Worker, timeout: float | None) -> tuple[str, str] | None:
        """The worker's next message, or ``None`` if it died (or ``timeout`` passed)."""
        ready = wait([worker.conn, worker.process.sentinel], timeout)
        if worker.conn not in ready:
            return None
        try:
            message: tuple[str, str] = worker.conn.recv()
        except (EOFError, OSError):
            return None
        return message

    def _discard_quietly(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)

    def close(self) -> None:
        """Stop every worker (idle ones are asked to exit, others are killed)."""
        with self._lock:
            self.closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        for worker in workers:
            worker.process.join(timeout=5)
            worker.kill()
