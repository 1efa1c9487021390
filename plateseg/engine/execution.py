"""The run loop: move from state to state, applying Retry and Catch.

:func:`run_machine` runs a (sub-)state machine to its end and returns its output, or
raises the :class:`~plateseg.errors.StatesError` that ended it.
"""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from plateseg.engine.clock import ExecutionTimedOut
from plateseg.engine.context import Aborted, Runtime
from plateseg.engine.definition import State, StateMachine
from plateseg.engine.jsonata_states import catch_output
from plateseg.engine.paths import check_payload_size
from plateseg.engine.retry import find_catcher, find_retrier, retry_delay
from plateseg.engine.states import StepOutcome, run_once
from plateseg.errors import StatesError

__all__ = ["run_machine", "run_with_retry"]

#: Errors that end a (sub-)machine whatever its Retry and Catch say.
_TERMINAL = (Aborted, ExecutionTimedOut)


def run_with_retry(state: State, raw_input: Any, rt: Runtime) -> StepOutcome:
    """Run ``state``, retrying per its ``Retry`` field; each retrier has its own budget."""
    entered = rt.clock.now()
    attempts = [0] * len(state.retry)
    retry_count = 0
    while True:
        try:
            return run_once(state, raw_input, rt, entered, retry_count)
        except StatesError as err:
            if isinstance(err, _TERMINAL):
                raise
            rt.clock.check_deadline()  # past the execution's deadline nothing is retried
            index = find_retrier(state.retry, err)
            if index is None:
                raise
            retrier = state.retry[index]
            if attempts[index] >= retrier.max_attempts:
                raise
            attempts[index] += 1
            retry_count += 1
            delay = retry_delay(retrier, attempts[index], rt.clock.uniform)
            rt.history.emit(
                "StateRetry",
                name=state.name,
                error=err.name,
                attempt=retry_count,
                delay_seconds=delay,
            )
            rt.clock.sleep(delay)


def run_machine(machine: StateMachine, machine_input: Any, rt: Runtime) -> Any:
    """Run ``machine`` from ``StartAt`` on ``machine_input``; return its final output.

    With a journal in ``rt`` (top-level machine only) every finished state is recorded,
    and the run continues after the last recorded state.

    Raises
    ------
    StatesError
        The uncaught error that ended the machine (a Fail state's included).
    """
    name = machine.start_at
    data = machine_input
    journal, step = rt.journal, 0
    recorded_version = rt.scope.version
    if journal is not None:  # the top-level machine of a journaled execution
        point = journal.resume_point(machine.start_at, machine_input)
        if point is None:
            return journal.last_output()
        step, name, data = point.step, point.state, point.data
        if point.variables:
            rt.scope.assign(point.variables, "the journal")
            recorded_version = rt.scope.version
        if step:
            rt.history.emit("ExecutionResumed", name=name, step=step)
    while True:
        if rt.stop.is_set():
            raise Aborted("the execution was stopped")
        if rt.cancel.is_set():
            raise Aborted()
        rt.clock.check_deadline()
        state = machine.states[name]
        rt.history.emit("StateEntered", name=name, type=state.type, input=data)
        try:
            check_payload_size(data, f"input of state '{name}'")
            state_rt = rt if journal is None else rt.at_step(step)
            output, next_name = run_with_retry(state, data, state_rt)
        except StatesError as err:
            if not isinstance(err, _TERMINAL):
                rt.clock.check_deadline()  # nor caught
            catcher = None if isinstance(err, _TERMINAL) else find_catcher(state.catch, err)
            if catcher is None:
                raise
            output = catch_output(state, catcher, data, err, rt)
            next_name = catcher.next
            rt.history.emit("StateCaught", name=name, error=err.name, next=next_name)
        rt.history.emit("StateExited", name=name, output=output)
        if journal is not None:
            if rt.scope.version != recorded_version:
                recorded_version = rt.scope.version
                journal.record_variables(step, rt.scope.own())
            journal.record_transition(step, name, next_name, output)
            step += 1
        if next_name is None:
            return output
        data, name = output, next_name


def run_siblings(
    jobs: list[tuple[StateMachine, Any]], rt: Runtime, max_workers: int, name: str
) -> list[Any]:
    """Run machines side by side (Parallel branches, inline Map iterations).

    Results come back in job order. The first failure cancels the siblings still
    running (they stop at their next state) and is re-raised, as Step Functions fails
    a Parallel or inline Map state on its first failed branch or iteration.
    """
    if not jobs:
        return []
    group = rt.sibling()
    workers = min(max_workers, len(jobs))
    fork = rt.clock.fork(workers)
    run = fork.wrap(run_machine)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
            futures = [
                pool.submit(run, machine, data, group.in_scope(rt.scope.child()))
                for machine, data in jobs
            ]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:
                group.cancel.set()
                wait(futures)
                raise failed[0].exception()  # type: ignore[misc]
    finally:
        fork.join()
    return [future.result() for future in futures]
