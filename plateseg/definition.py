"""The one state machine definition, and the substitutions the local runner supplies.

``statemachines/segmentation.asl.json`` is the single source of truth for AWS and the
local engine. Its ``${Name}`` placeholders are filled by CDK on AWS and by
:func:`local_substitutions` here; a test keeps both sets equal to the file's.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plateseg.contracts import RunSettings
from plateseg.errors import DefinitionError
from plateseg.settings import Settings, get_settings

__all__ = [
    "DEFINITION_PATH",
    "LOCAL_ACCOUNT",
    "LOCAL_FUNCTIONS",
    "LOCAL_REGION",
    "MapTunables",
    "apply_tunables",
    "load_definition",
    "local_substitutions",
    "packaged_run_settings",
    "placeholders",
    "substitute",
    "sync_run_settings",
]

DEFINITION_PATH = Path(__file__).resolve().parents[1] / "statemachines" / "segmentation.asl.json"

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "000000000000"

#: Lambda function name (as in the local ARNs) → handler that runs it, "module:callable".
LOCAL_FUNCTIONS: dict[str, str] = {
    "plateseg-lookup": "lambdas.lookup:handler",
    "plateseg-segment": "lambdas.segment:handler",
    "plateseg-aggregate": "lambdas.aggregate:handler",
}

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders(text: str) -> set[str]:
    """Names of every ``${Name}`` placeholder in a definition text."""
    return set(_PLACEHOLDER.findall(text))


def local_substitutions(settings: Settings | None = None) -> dict[str, str]:
    """Values the local runner substitutes: local function ARNs and the local bucket."""
    settings = settings or get_settings()

    def arn(name: str) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{name}"

    return {
        "LookupFunctionArn": arn("plateseg-lookup"),
        "SegmentFunctionArn": arn("plateseg-segment"),
        "AggregateFunctionArn": arn("plateseg-aggregate"),
        "BucketName": settings.local_bucket,
    }


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace every placeholder; a placeholder without a value is a :class:`DefinitionError`."""
    missing = placeholders(text) - set(values)
    if missing:
        raise DefinitionError([f"no value for placeholder ${{{name}}}" for name in sorted(missing)])
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def load_definition(
    path: Path = DEFINITION_PATH, values: dict[str, str] | None = None
) -> dict[str, Any]:
    """Read a definition, substitute placeholders and parse it.

    Parameters
    ----------
    path : Path
        ASL JSON file; the segmentation definition by default.
    values : dict, optional
        Placeholder values; :func:`local_substitutions` by default.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read: {exc.strerror}") from exc
    text = substitute(text, local_substitutions() if values is None else values)
    try:
        parsed: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    return parsed


@dataclass(frozen=True)
class MapTunables:
    """Numeric tunables of the Distributed Map; ``None`` keeps the file's value.

    Attributes
    ----------
    items_per_batch : int, optional
        ``ItemBatcher.MaxItemsPerBatch`` (1-1000).
    max_concurrency : int, optional
        ``MaxConcurrency`` (0 = unlimited).
    tolerated_failure_percentage : float, optional
        ``ToleratedFailurePercentage`` (0-100).
    """

    items_per_batch: int | None = None
    max_concurrency: int | None = None
    tolerated_failure_percentage: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.items_per_batch is not None and not 1 <= self.items_per_batch <= 1000:
            problems.append(f"items per batch must be 1-1000, got {self.items_per_batch}")
        if self.max_concurrency is not None and not 0 <= self.max_concurrency <= 10000:
            problems.append(f"max concurrency must be 0-10000, got {self.max_concurrency}")
        pct = self.tolerated_failure_percentage
        if pct is not None and not 0 <= pct <= 100:
            problems.append(f"tolerated failure percentage must be 0-100, got {pct}")
        if problems:
            from plateseg.errors import InputError

            raise InputError("; ".join(problems))


def apply_tunables(
    definition: dict[str, Any], tunables: MapTunables, state: str = "Segment"
) -> dict[str, Any]:
    """Return a copy of ``definition`` with the Map state's tunables set.

    The same values CDK sets from ``cdk.json`` on AWS; the file keeps the local defaults.
    """
    result = copy.deepcopy(definition)
    try:
        map_state = result["States"][state]
    except KeyError:
        raise DefinitionError(f"States.{state}: no such state to tune") from None
    if tunables.items_per_batch is not None:
        map_state.setdefault("ItemBatcher", {})["MaxItemsPerBatch"] = tunables.items_per_batch
    if tunables.max_concurrency is not None:
        map_state["MaxConcurrency"] = tunables.max_concurrency
    if tunables.tolerated_failure_percentage is not None:
        map_state["ToleratedFailurePercentage"] = tunables.tolerated_failure_percentage
    return sync_run_settings(result, state)


def packaged_run_settings() -> RunSettings:
    """The Map settings of the definition file itself (what a local run records), the
    ``run_settings`` its Aggregate task receives."""
    raw = json.loads(DEFINITION_PATH.read_text(encoding="utf-8"))
    return RunSettings.model_validate(raw["States"]["Aggregate"]["Parameters"]["run_settings"])


def sync_run_settings(
    definition: dict[str, Any],
    state: str = "Segment",
    *,
    segment_memory_mb: int | None = None,
    task: str = "Aggregate",
) -> dict[str, Any]:
    """Copy the Map state's settings into the ``run_settings`` the Aggregate task receives.

    The run row records the concurrency, batch size, tolerated failures and child
    execution type a run ran with, and its cost estimate needs the Segment memory; the
    definition passes them to Aggregate as literals, so every change of the Map's fields
    (``apply_tunables`` here and in the CDK stack) goes through this function. Changes
    ``definition`` in place and returns it; a definition without ``run_settings`` in
    ``task``'s Parameters is returned unchanged.
    """
    states = definition.get("States", {})
    parameters = states.get(task, {}).get("Parameters", {})
    settings = parameters.get("run_settings")
    map_state = states.get(state)
    if not isinstance(settings, dict) or not isinstance(map_state, dict):
        return definition
    batcher = map_state.get("ItemBatcher", {})
    processor = map_state.get("ItemProcessor", {}).get("ProcessorConfig", {})
    for key, value in (
        ("max_concurrency", map_state.get("MaxConcurrency")),
        ("items_per_batch", batcher.get("MaxItemsPerBatch")),
        ("tolerated_failure_percentage", map_state.get("ToleratedFailurePercentage")),
        ("child_execution_type", processor.get("ExecutionType")),
        ("segment_memory_mb", segment_memory_mb),
    ):
        if value is not None:
            settings[key] = value
    return definition
