"""The Map state: INLINE iterations and DISTRIBUTED Map Runs.

INLINE runs the processor once per item on threads, output in item order; the first
failing iteration fails the state with its own error. DISTRIBUTED reads items (from
``ItemReader`` or ``ItemsPath``), selects and batches them, runs one child execution
per batch on at most ``MaxConcurrency`` threads (their Lambda calls go to the process
pool), counts failures against the tolerated threshold, and writes results with
``ResultWriter`` or returns them in item order (transformed as its ``WriterConfig``
says, :mod:`plateseg.engine.result_writer`).
"""

from __future__ import annotations

import queue
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from plateseg.engine.clock import ExecutionTimedOut
from plateseg.engine.context import Aborted, ExecutionInfo, Runtime, iso
from plateseg.engine.definition import MapState
from plateseg.engine.item_io import read_items
from plateseg.engine.map_support import InlineExecutor as _InlineExecutor
from plateseg.engine.map_support import dumps as _dumps
from plateseg.engine.map_support import is_pure as _is_pure
from plateseg.engine.map_support import uuid5_name as _uuid5
from plateseg.engine.paths import payload_size, read_path
from plateseg.engine.result_writer import exports, transform_results, transformation, write_results
from plateseg.engine.templates import evaluate_template
from plateseg.errors import StatesError

__all__ = ["MAX_THREADS", "make_batches", "run_map"]

#: Threads per Map when MaxConcurrency is 0 (unlimited) or larger.
MAX_THREADS = 64


def _number(value: Any, path: str | None, data: Any, what: str) -> Any:
    if path is not None:
        value = read_path(data, path, field=f"{what}Path")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise StatesError(
                "States.Runtime", f"{what}Path must select a non-negative number, got {value!r}"
            )
    return value


def _items_from_path(state: MapState, data: Any, context: Any) -> list[Any]:
    items = read_path(data, state.items_path, context=context, field="ItemsPath")
    if not isinstance(items, list):
        raise StatesError(
            "States.Runtime",
            f"ItemsPath '{state.items_path}' of Map state "
            f"'{state.name}' must select an array, got {type(items).__name__}",
        )
    return items


def _select(
    state: MapState, data: Any, rt: Runtime, entered: datetime, items: list[Any]
) -> list[Any]:
    if not state.has_item_selector:
        return items
    return [
        evaluate_template(
            state.item_selector, data, rt.context_object(state.name, entered, item=(i, item))
        )
        for i, item in enumerate(items)
    ]


def make_batches(batcher: Any, items: list[Any], data: Any, context: Any) -> list[tuple[Any, int]]:
    """Group items as an ItemBatcher says; return ``(child input, item count)`` pairs.

    A batch closes before it would exceed ``MaxItemsPerBatch`` items or
    ``MaxInputBytesPerBatch`` bytes of compact JSON (``{"BatchInput", "Items"}``); an
    item too large on its own travels alone.
    """
    max_items = _number(
        batcher.get("MaxItemsPerBatch"),
        batcher.get("MaxItemsPerBatchPath"),
        data,
        "MaxItemsPerBatch",
    )
    max_bytes = _number(
        batcher.get("MaxInputBytesPerBatch"),
        batcher.get("MaxInputBytesPerBatchPath"),
        data,
        "MaxInputBytesPerBatch",
    )
    base: dict[str, Any] = {}
    if "BatchInput" in batcher:
        base["BatchInput"] = evaluate_template(batcher["BatchInput"], data, context)
    empty_size = payload_size({**base, "Items": []})
    batches: list[tuple[Any, int]] = []
    current: list[Any] = []
    size = empty_size
    for item in items:
        grow = payload_size(item) + (1 if current else 0)
        if current and (
            (max_items and len(current) + 1 > max_items) or (max_bytes and size + grow > max_bytes)
        ):
            batches.append(({**base, "Items": current}, len(current)))
            current, size, grow = [], empty_size, grow - 1
        current.append(item)
        size += grow
    if current:
        batches.append(({**base, "Items": current}, len(current)))
    return batches


def run_map(state: MapState, data: Any, rt: Runtime, entered: datetime) -> Any:
    """Run a Map state on its effective input ``data``; return its result."""
    context = rt.context_object(state.name, entered)
    concurrency = _number(state.max_concurrency, state.max_concurrency_path, data, "MaxConcurrency")
    threads = min(int(concurrency) or MAX_THREADS, MAX_THREADS)
    if state.mode == "DISTRIBUTED":
        return _MapRun(state, data, rt, entered, context, threads).run()
    from plateseg.engine.execution import run_siblings

    inputs = _select(state, data, rt, entered, _items_from_path(state, data, context))
    jobs = [(state.processor, item) for item in inputs]
    return run_siblings(jobs, rt, threads, f"map-{state.name}")


@dataclass
class _Counts:
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    aborted: int = 0
    total: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _MapRun:
    state: MapState
    data: Any
    rt: Runtime
    entered: datetime
    context: Any
    threads: int
    items: _Counts = field(default_factory=_Counts)
    executions: _Counts = field(default_factory=_Counts)
    #: ``(index, child input)`` of child executions never started, in item order.
    not_started: list[tuple[int, Any]] = field(default_factory=list)
    #: ``(ToleratedFailurePercentage, ToleratedFailureCount)``, resolved at the start.
    tolerated: tuple[float | None, float | None] = (None, None)

    def run(self) -> Any:
        state, rt = self.state, self.rt
        self.tolerated = self._thresholds()
        if state.item_reader is not None:
            raw_items = read_items(state.item_reader, self.data, self.context, rt.buckets)
        else:
            raw_items = _items_from_path(state, self.data, self.context)
        selected = _select(state, self.data, rt, self.entered, raw_items)
        if state.item_batcher is not None:
            batches = make_batches(state.item_batcher, selected, self.data, self.context)
        else:
            batches = [(item, 1) for item in selected]
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{rt.execution.arn}/{state.name}")
        label = state.label or state.name
        sm_name = rt.execution.state_machine_name
        self.arn = f"arn:aws:states:{rt.region}:{rt.account}:mapRun:{sm_name}/{label}:{run_id}"
        self.child_sm = f"arn:aws:states:{rt.region}:{rt.account}:stateMachine:{sm_name}/{label}"
        self.child_prefix = f"arn:aws:states:{rt.region}:{rt.account}:execution:{sm_name}/{label}"
        self.run_id = run_id
        # a succeeded child's execution record is read only by an export, a NONE
        # transformation or the journal; otherwise only its output is kept
        self.keep_records = (
            exports(state.result_writer)
            or transformation(state.result_writer) == "NONE"
            or rt.journal is not None
        )
        self.items.total = self.items.pending = len(raw_items)
        self.executions.total = self.executions.pending = len(batches)
        rt.history.emit(
            "MapRunStarted",
            name=state.name,
            map_run_arn=self.arn,
            total=len(raw_items),
            executions=len(batches),
        )
        self._progress()
        records = self._run_children(batches)
        if rt.stop.is_set():
            if exports(state.result_writer):
                self._write(records)
            raise Aborted("the execution was stopped")
        exceeded = self._exceeded()
        status = "FAILED" if exceeded else "SUCCEEDED"
        writer_details = None
        result: Any
        if exports(state.result_writer):
            result = self._write(records)
            writer_details = result["ResultWriterDetails"]
        else:  # the Map's result: COMPACT, or as a WriterConfig without export says
            how = transformation(state.result_writer)
            result = transform_results((r for r in records if r is not None), how)
        summary = {
            "map_run_arn": self.arn,
            "state_name": state.name,
            "status": status,
            "item_counts": self.items.as_dict(),
            "execution_counts": self.executions.as_dict(),
            "result_writer": writer_details,
        }
        rt.map_runs.append(summary)
        rt.history.emit(
            f"MapRun{status.title()}", name=state.name, map_run_arn=self.arn, **self.items.as_dict()
        )
        if exceeded:
            raise StatesError(
                "States.ExceedToleratedFailureThreshold",
                "The specified tolerated failure threshold was exceeded",
            )
        return result

    def _write(self, records: list[dict[str, Any] | None]) -> dict[str, Any]:
        """Write the ResultWriter files; children never started go to ``PENDING_n.json``."""
        grouped: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
        for r in records:
            if r is not None:
                grouped[r["Status"]].append(r)
        for index, child_input in self.not_started:
            name = _uuid5(self.run_id.bytes, index)
            record = {
                "ExecutionArn": f"{self.child_prefix}:{name}",
                "Input": _dumps(child_input),
                "InputDetails": {"Included": True},
                "Name": name,
                "StateMachineArn": self.child_sm,
                "Status": "PENDING",
            }
            grouped["PENDING"].append({"Status": "PENDING", "record": record, "output": None})
        assert self.state.result_writer is not None
        return write_results(
            self.state.result_writer,
            self.data,
            self.context,
            self.rt.buckets,
            self.arn,
            str(self.run_id),
            grouped,
        )

    def _thresholds(self) -> tuple[float | None, float | None]:
        """``(percentage, count)`` tolerated, their Paths read and checked at the start.

        AWS evaluates both when the Map Run starts, before any child runs: a value
        that is not a number, a negative count or a percentage outside 0-100 fails
        the Map state with ``States.Runtime`` even if no child ever fails.
        """
        state = self.state
        pct, count = state.tolerated_percentage, state.tolerated_count
        if state.tolerated_percentage_path is not None:
            pct = self._tolerated_path(state.tolerated_percentage_path, "Percentage", "float")
            if not 0 <= pct <= 100:
                raise StatesError(
                    "States.Runtime",
                    f"Map state '{state.name}': ToleratedFailurePercentage must be between "
                    f"0 and 100, got {pct!r} (ToleratedFailurePercentagePath "
                    f"{state.tolerated_percentage_path})",
                )
        if state.tolerated_count_path is not None:
            count = self._tolerated_path(state.tolerated_count_path, "Count", "integer")
            if count < 0:
                raise StatesError(
                    "States.Runtime",
                    f"Map state '{state.name}': ToleratedFailureCount cannot be negative, got "
                    f"{count!r} (ToleratedFailureCountPath {state.tolerated_count_path})",
                )
        return pct, count

    def _tolerated_path(self, path: str, what: str, kind: str) -> float:
        value = read_path(
            self.data, path, context=self.context, field=f"ToleratedFailure{what}Path"
        )
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not number or (kind == "integer" and not float(value).is_integer()):
            raise StatesError(
                "States.Runtime",
                f"Map state '{self.state.name}': the ToleratedFailure{what}Path field refers "
                f"to value {value!r} which is not a valid {kind}: {path}",
            )
        return float(value) if kind == "float" else int(value)

    def _exceeded(self) -> bool:
        failed = self.items.failed
        if failed == 0:
            return False
        pct, count = self.tolerated
        if pct is None and count is None:
            return True
        if count is not None and failed > count:
            return True
        return pct is not None and failed * 100.0 / max(1, self.items.total) > pct

    def _progress(self, force: bool = True) -> None:
        """Emit ``MapRunProgress``; unforced, only every ~0.1% of child executions."""
        if not force:
            done = self.executions.total - self.executions.pending - self.executions.running
            if done % max(1, self.executions.total // 1000) and done != self.executions.total:
                return
        self.rt.history.emit(
            "MapRunProgress",
            name=self.state.name,
            map_run_arn=self.arn,
            executions=self.executions.as_dict(),
            **self.items.as_dict(),
        )

    def _run_children(self, batches: list[tuple[Any, int]]) -> list[dict[str, Any] | None]:
        records: list[dict[str, Any] | None] = [None] * len(batches)
        if not batches:
            return records
        journal, step = self.rt.journal, self.rt.step
        done_before = journal.succeeded_children(step) if journal is not None else {}
        for index, record in done_before.items():
            if index < len(batches):
                records[index] = record
                self._move(batches[index][1], "pending", "succeeded")
        pending = [(i, batch) for i, batch in enumerate(batches) if records[i] is None]
        if done_before:
            self.rt.history.emit(
                "MapRunResumed", name=self.state.name, map_run_arn=self.arn, **self.items.as_dict()
            )
            self._progress()
        pending.reverse()
        running: dict[Future[dict[str, Any]], tuple[int, int]] = {}
        finished: queue.SimpleQueue[Future[dict[str, Any]]] = queue.SimpleQueue()
        pure = _is_pure(self.state.processor)
        workers = 1 if pure else min(self.threads, len(batches))
        fork = self.rt.clock.fork(workers)
        child = fork.wrap(self._child)
        with (
            _InlineExecutor()
            if pure
            else ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix=f"maprun-{self.state.name}"
            )
        ) as pool:
            while pending or running:
                while (
                    pending
                    and len(running) < workers
                    and not self._exceeded()
                    and not self.rt.stop.is_set()
                ):
                    index, (child_input, count) = pending.pop()
                    future = pool.submit(child, index, child_input)
                    running[future] = (index, count)
                    self._move(count, "pending", "running")
                    future.add_done_callback(finished.put)
                if not running:
                    break
                done = [finished.get()]
                while not finished.empty():
                    done.append(finished.get())
                for future in done:
                    index, count = running.pop(future)
                    record = future.result()
                    records[index] = record
                    if journal is not None:
                        journal.record_child(step, self.state.name, index, record["Status"], record)
                    self._move(count, "running", record["Status"].lower())
                self._progress(force=False)
        fork.join()
        for _index, (_input, count) in pending:
            self._move(count, "pending", "aborted")
        self.not_started = sorted(
            ((index, child_input) for index, (child_input, _count) in pending),
            key=lambda pair: pair[0],
        )
        if pending:
            self._progress()
        return records

    def _move(self, count: int, source: str, target: str) -> None:
        items, executions = self.items.__dict__, self.executions.__dict__
        items[source] -= count
        items[target] += count
        executions[source] -= 1
        executions[target] += 1

    def _child(self, index: int, child_input: Any) -> dict[str, Any]:
        from plateseg.engine.execution import run_machine

        name = _uuid5(self.run_id.bytes, index)
        start = self.rt.clock.now()
        info = ExecutionInfo(
            arn=f"{self.child_prefix}:{name}",
            name=name,
            input=child_input,
            start_time=start,
            state_machine_arn=self.child_sm,
            state_machine_name=self.child_sm.rsplit(":", 1)[1],
            role_arn=self.rt.execution.role_arn,
        )
        output: Any = None
        try:
            output = run_machine(self.state.processor, child_input, self.rt.child_execution(info))
            if not self.keep_records:
                return {"Status": "SUCCEEDED", "record": None, "output": output}
            status = "SUCCEEDED"
            reason = "Execution is SUCCEEDED and cannot be redriven"
        except ExecutionTimedOut:
            raise  # ends the parent execution, not just this child
        except StatesError as err:
            status = "FAILED"
            reason = "Child executions of a Distributed Map are redriven with their Map Run"
            failure = {"Error": err.name, "Cause": err.cause}
        record: dict[str, Any] = {
            "ExecutionArn": info.arn,
            "Input": _dumps(child_input),
            "InputDetails": {"Included": True},
            "Name": name,
        }
        if status == "SUCCEEDED":
            record.update(Output=_dumps(output), OutputDetails={"Included": True})
        record.update(
            RedriveCount=0,
            RedriveStatus="NOT_REDRIVABLE",
            RedriveStatusReason=reason,
            StartDate=info.start_iso,
            StateMachineArn=self.child_sm,
            Status=status,
            StopDate=iso(self.rt.clock.now()),
        )
        if status == "FAILED":
            record.update(failure)
        return {"Status": status, "record": record, "output": output}
