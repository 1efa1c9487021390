"""Typed, validated deployment configuration, read once from ``cdk.json`` context.

``app.py`` reads the ``"plateseg"`` context object once and turns it into one frozen
:class:`PlatesegConfig`; stacks take its values as typed keyword arguments and never
call ``try_get_context`` themselves. A bad value is a :class:`ConfigError` that names
the key (``plateseg.segment_retry.max_attempts``), the value and the allowed range.

Example ``cdk.json`` context (every key optional; defaults below)::

    "plateseg": {
        "stage": "dev",
        "map_max_concurrency": 100,
        "items_per_batch": 10,
        "max_bytes_per_batch": 65536,
        "tolerated_failure_percentage": 10,
        "segment_memory_mb": 2048,
        "segment_timeout_seconds": 900,
        "segment_retry": {"interval_seconds": 2, "max_attempts": 4, "backoff_rate": 2.0,
                          "max_delay_seconds": 60, "jitter": "FULL"}
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

__all__ = ["CONTEXT_KEY", "ConfigError", "PlatesegConfig", "RetryConfig", "Stage"]

#: The ``cdk.json`` context key holding the plateseg configuration object.
CONTEXT_KEY = "plateseg"

Stage = Literal["dev", "prod"]

#: Step Functions limit on the input of one batch (``MaxInputBytesPerBatch``): 256 KiB.
MAX_BATCH_BYTES = 262_144


class ConfigError(ValueError):
    """The deployment configuration in ``cdk.json`` context is invalid.

    Parameters
    ----------
    problems : list of str
        One message per bad key, each naming the dotted key, the value and what is allowed.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"invalid cdk.json context {CONTEXT_KEY!r}:\n  " + "\n  ".join(problems))
        self.problems = problems


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class RetryConfig(_Frozen):
    """The ASL ``Retry`` numbers of the Segment task (its ``ErrorEquals`` stay in the file).

    Attributes
    ----------
    interval_seconds : int
        Wait before the first retry (``IntervalSeconds``).
    max_attempts : int
        Retries after the first attempt (``MaxAttempts``; 0 = never retry).
    backoff_rate : float
        Multiplier of the wait after each retry (``BackoffRate``).
    max_delay_seconds : int
        Cap on any one wait (``MaxDelaySeconds``); at least ``interval_seconds``.
    jitter : {"FULL", "NONE"}
        ``JitterStrategy``: FULL draws each wait uniformly from [0, wait].
    """

    interval_seconds: int = Field(default=2, ge=1, le=99_999_999)
    max_attempts: int = Field(default=4, ge=0, le=99_999_999)
    backoff_rate: float = Field(default=2.0, ge=1.0, le=100.0)
    max_delay_seconds: int = Field(default=60, ge=1, le=31_622_400)
    jitter: Literal["FULL", "NONE"] = "FULL"

    @model_validator(mode="after")
    def _delay_covers_interval(self) -> RetryConfig:
        if self.max_delay_seconds < self.interval_seconds:
            raise ValueError(
                f"max_delay_seconds ({self.max_delay_seconds}) must be at least "
                f"interval_seconds ({self.interval_seconds})"
            )
        return self


class PlatesegConfig(_Frozen):
    """Every deployment tunable of plateseg.

    Attributes
    ----------
    stage : {"dev", "prod"}
        ``prod`` retains stateful resources on stack deletion; ``dev`` destroys them.
    map_max_concurrency : int
        Distributed Map ``MaxConcurrency``: batches segmented at once.
    items_per_batch : int
        ``ItemBatcher.MaxItemsPerBatch``: fields of view per Segment invocation.
    max_bytes_per_batch : int
        ``ItemBatcher.MaxInputBytesPerBatch``; Step Functions allows at most 256 KiB.
    tolerated_failure_percentage : float
        Distributed Map ``ToleratedFailurePercentage``.
    segment_retry : RetryConfig
        Retry numbers of the Segment task.
    segment_memory_mb : int
        Memory of the Segment Lambda (CPU grows with it).
    segment_timeout_seconds : int
        Timeout of the Segment Lambda.
    """

    stage: Stage = "dev"
    map_max_concurrency: int = Field(default=100, ge=1, le=10_000)
    items_per_batch: int = Field(default=10, ge=1, le=1_000)
    max_bytes_per_batch: int = Field(default=65_536, ge=1, le=MAX_BATCH_BYTES)
    tolerated_failure_percentage: float = Field(default=10.0, ge=0.0, le=100.0)
    segment_retry: RetryConfig = RetryConfig()
    segment_memory_mb: int = Field(default=2048, ge=128, le=10_240)
    segment_timeout_seconds: int = Field(default=900, ge=1, le=900)

    @classmethod
    def from_context(cls, value: Any) -> PlatesegConfig:
        """Validate the ``plateseg`` context object (``None`` means all defaults).

        Raises
        ------
        ConfigError
            Naming every bad key, its value and the allowed range or values.
        """
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(
                [f"{CONTEXT_KEY} = {value!r}: must be an object of tunables, got {_kind(value)}"]
            )
        try:
            return cls.model_validate(dict(value))
        except ValidationError as exc:
            raise ConfigError([_describe(cls, error) for error in exc.errors()]) from exc


def _kind(value: Any) -> str:
    return type(value).__name__


def _field_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> FieldInfo | None:
    """The field a pydantic error location points at, or None if it names no field."""
    field: FieldInfo | None = None
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
    return field


def _allowed(field: FieldInfo) -> str:
    """Human wording of what a field accepts: a range, a set of values or keys."""
    annotation = field.annotation
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(v) for v in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "an object with keys " + ", ".join(annotation.model_fields)
    low = high = None
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = f"{bound.ge} <= "
        elif isinstance(bound, annotated_types.Gt):
            low = f"{bound.gt} < "
        elif isinstance(bound, annotated_types.Le):
            high = f" <= {bound.le}"
        elif isinstance(bound, annotated_types.Lt):
            high = f" < {bound.lt}"
    name = getattr(annotation, "__name__", str(annotation))
    return f"{name}, {low or ''}value{high or ''}" if (low or high) else name


def _describe(model: type[BaseModel], error: Any) -> str:
    """One line for one pydantic error: dotted key, value, what is allowed."""
    loc = tuple(error["loc"])
    key = ".".join([CONTEXT_KEY, *(str(part) for part in loc)])
    if error["type"] == "extra_forbidden":
        parent = _field_at(model, loc[:-1]) if len(loc) > 1 else None
        keys = (
            parent.annotation.model_fields
            if parent is not None
            and isinstance(parent.annotation, type)
            and issubclass(parent.annotation, BaseModel)
            else model.model_fields
        )
        return f"{key}: unknown key; allowed keys: {', '.join(keys)}"
    field = _field_at(model, loc)
    given = f" = {error['input']!r}" if loc else ""
    wanted = field is not None and error["type"] != "value_error"
    allowed = f"; allowed: {_allowed(field)}" if wanted and field is not None else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{key}{given}: {message}{allowed}"
