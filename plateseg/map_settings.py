"""The Distributed Map settings and the one function that renders the definition with them.

This module owns the settings of a run's Distributed Map — items and bytes per batch,
concurrency, tolerated failures, child execution type and the Segment Lambda's memory —
with their defaults (:class:`MapSettings`, the values ``plateseg run`` uses without
options; :data:`DEPLOYMENT_DEFAULTS` where ``cdk.json`` names none) and the AWS limits
that bound them. Everything else derives from it: the local
runner, the CDK config (``stacks/config.py``, whose ``cdk.json`` keys take these
defaults and bounds), planning, the web estimate and Aggregate.

:func:`apply_tunables` is the one renderer of ``statemachines/segmentation.asl.json``: it
writes the settings into the Map state, hands the same values to the state after the Map
(Aggregate records the run with them and prices it), sets the Segment task's retry
numbers for a deployment, and fills the ``${Name}`` placeholders when given their values.
The file itself holds no settings: its Map fields are AWS's own defaults until rendered.

Imports pydantic, the standard library and :mod:`plateseg.errors` only, so the CDK app
can use it without the image-processing stack.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plateseg.errors import DefinitionError, InputError

__all__ = [
    "DEFAULTS",
    "DEFINITION_PATH",
    "DEPLOYMENT_DEFAULTS",
    "FUNCTIONS",
    "MAX_BATCH_BYTES",
    "MAX_CONCURRENCY",
    "MAX_ITEMS_PER_BATCH",
    "MAX_MEMORY_MB",
    "MIN_MEMORY_MB",
    "RUN_SETTINGS_FIELDS",
    "SUBSTITUTION_KEYS",
    "BytesPerBatch",
    "ChildExecutionType",
    "FailurePercentage",
    "ItemsPerBatch",
    "MapSettings",
    "MaxConcurrency",
    "MemoryMb",
    "apply_tunables",
    "distributed_map",
    "placeholders",
    "read_definition",
    "substitute",
]

DEFINITION_PATH = Path(__file__).resolve().parents[1] / "statemachines" / "segmentation.asl.json"

# --- AWS limits ------------------------------------------------------------------------

#: ``MaxConcurrency`` of a Distributed Map: at most 10,000 child executions at once.
MAX_CONCURRENCY = 10_000
#: ``MaxInputBytesPerBatch``: Step Functions limits one batch's input to 256 KiB.
MAX_BATCH_BYTES = 262_144
#: ``MaxItemsPerBatch`` plateseg accepts (AWS allows more; a batch is one Lambda call).
MAX_ITEMS_PER_BATCH = 1_000
#: Lambda memory sizes (MB); 1,769 MB is one full vCPU, the maximum six.
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240

ItemsPerBatch = Annotated[int, Field(ge=1, le=MAX_ITEMS_PER_BATCH)]
BytesPerBatch = Annotated[int, Field(ge=1, le=MAX_BATCH_BYTES)]
MaxConcurrency = Annotated[int, Field(ge=0, le=MAX_CONCURRENCY)]
FailurePercentage = Annotated[float, Field(ge=0.0, le=100.0)]
MemoryMb = Annotated[int, Field(ge=MIN_MEMORY_MB, le=MAX_MEMORY_MB)]
ChildExecutionType = Literal["STANDARD", "EXPRESS"]

# --- the functions of the definition ---------------------------------------------------

#: Function (construct id on AWS, ``plateseg-<name>`` locally) → handler, ``module.callable``
#: (the container image command; the local engine imports the same callable).
FUNCTIONS: dict[str, str] = {
    "Lookup": "lambdas.lookup.handler",
    "Segment": "lambdas.segment.handler",
    "Aggregate": "lambdas.aggregate.handler",
}

#: The ``${...}`` placeholders of the definition: one ARN per function, and the bucket.
SUBSTITUTION_KEYS = frozenset({f"{name}FunctionArn" for name in FUNCTIONS} | {"BucketName"})

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class MapSettings(BaseModel):
    """The settings of a run's Distributed Map, with their defaults and AWS limits.

    Attributes
    ----------
    items_per_batch : int
        ``ItemBatcher.MaxItemsPerBatch``: fields of view per Segment invocation.
    max_bytes_per_batch : int
        ``ItemBatcher.MaxInputBytesPerBatch`` (at most 256 KiB).
    max_concurrency : int
        ``MaxConcurrency``: batches segmented at once (0 = unlimited).
    tolerated_failure_percentage : float
        ``ToleratedFailurePercentage``: failed batches the Map accepts, in percent.
    child_execution_type : {"STANDARD", "EXPRESS"}
        ``ItemProcessor.ProcessorConfig.ExecutionType`` of the child executions.
    segment_memory_mb : int
        Memory of the Segment Lambda (its CPU share grows with it); runs are priced at it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    items_per_batch: ItemsPerBatch = 4
    max_bytes_per_batch: BytesPerBatch = 65_536
    max_concurrency: MaxConcurrency = 16
    tolerated_failure_percentage: FailurePercentage = 10
    child_execution_type: ChildExecutionType = "STANDARD"
    segment_memory_mb: MemoryMb = 2048

    @classmethod
    def from_options(cls, **options: Any) -> MapSettings:
        """The defaults with the options that are not ``None`` (command-line style).

        Raises
        ------
        InputError
            Naming each option outside its limits.
        """
        try:
            return cls.model_validate({k: v for k, v in options.items() if v is not None})
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in e['loc'])} = {e.get('input')!r}: {e['msg']}"
                for e in exc.errors()
            ]
            raise InputError("invalid Map settings: " + "; ".join(problems)) from exc

    def run_settings(self) -> dict[str, Any]:
        """What the definition hands Aggregate (``run_settings``): the fields a run's
        record and cost depend on (:data:`RUN_SETTINGS_FIELDS`)."""
        return self.model_dump(include=set(RUN_SETTINGS_FIELDS))


#: The settings Aggregate receives, records in ``runs.parameters_json`` and prices with.
RUN_SETTINGS_FIELDS = (
    "max_concurrency",
    "items_per_batch",
    "tolerated_failure_percentage",
    "child_execution_type",
    "segment_memory_mb",
)

#: The defaults, as one object (for modules that need a default value, not a model).
DEFAULTS = MapSettings()

#: What a deployment runs with where ``cdk.json`` names no value: Lambda batches of more
#: fields, and as many at once as a default Segment reservation allows.
DEPLOYMENT_DEFAULTS = MapSettings(items_per_batch=10, max_concurrency=100)


class SegmentRetry(Protocol):
    """The numbers of the Segment task's retriers a deployment sets (``cdk.json``)."""

    @property
    def interval_seconds(self) -> int: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def backoff_rate(self) -> float: ...
    @property
    def max_delay_seconds(self) -> int: ...
    @property
    def jitter(self) -> str: ...


class Deployment(Protocol):
    """A deployment's tunables (``stacks.config.PlatesegConfig``): Map settings and retry."""

    @property
    def map_settings(self) -> MapSettings: ...
    @property
    def segment_retry(self) -> SegmentRetry: ...


# --- placeholders ----------------------------------------------------------------------


def placeholders(text: str) -> set[str]:
    """Names of every ``${Name}`` placeholder in a definition text."""
    return set(_PLACEHOLDER.findall(text))


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace every placeholder; a placeholder without a value is a :class:`DefinitionError`."""
    missing = placeholders(text) - set(values)
    if missing:
        raise DefinitionError([f"no value for placeholder ${{{name}}}" for name in sorted(missing)])
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _substitute_strings(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return substitute(value, values)
    if isinstance(value, dict):
        return {key: _substitute_strings(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute_strings(item, values) for item in value]
    return value


# --- the definition --------------------------------------------------------------------


def read_definition(path: Path = DEFINITION_PATH) -> dict[str, Any]:
    """Parse a definition file; its ``${...}`` placeholders stay inside JSON strings."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        parsed: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    return parsed


def distributed_map(definition: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, state)`` of the definition's one top-level Distributed Map state."""
    maps = [
        (name, state)
        for name, state in definition.get("States", {}).items()
        if isinstance(state, dict)
        and state.get("Type") == "Map"
        and state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
    ]
    if len(maps) != 1:
        raise DefinitionError(
            f"expected exactly one top-level Distributed Map state, found {len(maps)}"
        )
    return maps[0]


def _task_after(definition: dict[str, Any], name: str, map_state: dict[str, Any]) -> dict[str, Any]:
    """The Task the Map hands its results to (Aggregate): it receives the settings."""
    after = definition["States"].get(map_state.get("Next", ""))
    if not isinstance(after, dict) or after.get("Type") != "Task":
        raise DefinitionError(f"States.{name}: expected Next to name the Task that aggregates")
    return after


def _segment_retriers(name: str, map_state: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = [
        state
        for state in map_state["ItemProcessor"].get("States", {}).values()
        if state.get("Type") == "Task" and state.get("Retry")
    ]
    if len(tasks) != 1:
        raise DefinitionError(
            f"States.{name}.ItemProcessor: expected one Task with a Retry list, found {len(tasks)}"
        )
    retriers: list[dict[str, Any]] = tasks[0]["Retry"]
    return retriers


def apply_tunables(
    definition: Mapping[str, Any],
    settings: MapSettings | Deployment,
    substitutions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Render a definition: a copy with the settings written in (and placeholders filled).

    Sets the Distributed Map's ``MaxConcurrency``, ``ToleratedFailurePercentage``,
    ``ItemBatcher`` limits and child ``ExecutionType``; gives the Task after the Map (the
    Aggregate step) the same values as ``Parameters.run_settings`` (see
    :meth:`MapSettings.run_settings`); for a deployment (``PlatesegConfig``), also the
    numbers and jitter of every retrier of the Segment task. ``ErrorEquals`` lists, states
    and data flow stay as in the file.

    Parameters
    ----------
    definition : dict
        A parsed definition (:func:`read_definition`); not changed.
    settings : MapSettings or deployment config
        The Map settings, or an object with ``map_settings`` and ``segment_retry``.
    substitutions : dict, optional
        Values of the ``${Name}`` placeholders; ``None`` leaves them (CloudFormation fills
        them on AWS).

    Raises
    ------
    DefinitionError
        The definition has no single Distributed Map, no Task after it, no Segment task
        with a Retry list (for a deployment), or a placeholder without a value.
    """
    if isinstance(settings, MapSettings):
        values, retry = settings, None
    else:
        values, retry = settings.map_settings, settings.segment_retry
    rendered = copy.deepcopy(dict(definition))
    name, map_state = distributed_map(rendered)
    map_state["MaxConcurrency"] = values.max_concurrency
    map_state["ToleratedFailurePercentage"] = values.tolerated_failure_percentage
    batcher = map_state.setdefault("ItemBatcher", {})
    batcher["MaxItemsPerBatch"] = values.items_per_batch
    batcher["MaxInputBytesPerBatch"] = values.max_bytes_per_batch
    map_state["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = values.child_execution_type
    aggregate = _task_after(rendered, name, map_state)
    aggregate.setdefault("Parameters", {})["run_settings"] = values.run_settings()
    if retry is not None:
        for retrier in _segment_retriers(name, map_state):
            retrier["IntervalSeconds"] = retry.interval_seconds
            retrier["MaxAttempts"] = retry.max_attempts
            retrier["BackoffRate"] = retry.backoff_rate
            retrier["MaxDelaySeconds"] = retry.max_delay_seconds
            retrier["JitterStrategy"] = retry.jitter
    if substitutions is not None:
        rendered = _substitute_strings(rendered, substitutions)
    return rendered
