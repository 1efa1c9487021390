"""A local interpreter of Amazon States Language (JSONPath), built to run
``statemachines/segmentation.asl.json`` as AWS Step Functions would.

>>> from plateseg.engine import LocalEngine, Clock
>>> definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": True}}}
>>> with LocalEngine(functions={}, clock=Clock(time_scale=0)) as engine:
...     engine.run(definition, {}).output
1

Modules, one concern each: ``definition`` (parse + validate), ``paths`` (JSONPath),
``templates`` (payload templates), ``intrinsics``, ``choice``, ``retry``, ``states``
(one state, one attempt), ``execution`` (the run loop), ``map_state`` (Map),
``item_io`` with ``parquet_items`` and ``inventory`` (ItemReader), ``result_writer``
(ResultWriter), ``invoker`` (Lambda), ``integrations`` (``aws-sdk:s3``,
``states:startExecution``, resources bound to Python callables), ``clock``, ``events``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plateseg.lazy import lazy_attributes

if TYPE_CHECKING:
    from plateseg.engine.clock import Clock
    from plateseg.engine.definition import parse_definition, validate
    from plateseg.engine.events import Event
    from plateseg.engine.journal import Journal
    from plateseg.engine.local_engine import ExecutionResult, LocalEngine
    from plateseg.engine.progress import Progress, ProgressTracker

__all__ = [
    "Clock",
    "Event",
    "ExecutionResult",
    "Journal",
    "LocalEngine",
    "Progress",
    "ProgressTracker",
    "parse_definition",
    "validate",
]

#: Names are imported on first use, so a worker process that only needs
#: :mod:`plateseg.engine.workers` (to run a handler) does not load the interpreter.
_HOME = {
    "Clock": "clock",
    "Event": "events",
    "ExecutionResult": "local_engine",
    "Journal": "journal",
    "LocalEngine": "local_engine",
    "Progress": "progress",
    "ProgressTracker": "progress",
    "parse_definition": "definition",
    "validate": "definition",
}


__getattr__ = lazy_attributes(__name__, _HOME)
