"""Typed, validated deployment configuration, read once from ``cdk.json`` context.

``app.py`` reads the ``"plateseg"`` context object once and turns it into one frozen
:class:`PlatesegConfig`; stacks take its values as typed keyword arguments and never
call ``try_get_context`` themselves. A bad value is a :class:`ConfigError` that names
the key (``plateseg.segment_retry.max_attempts``), the value and the allowed range.

Every key is optional. The Map settings (``map_max_concurrency``, ``items_per_batch``,
``max_bytes_per_batch``, ``tolerated_failure_percentage``, ``child_execution_type``,
``segment_memory_mb``) take their defaults from
:data:`plateseg.map_settings.DEPLOYMENT_DEFAULTS` and their AWS limits from
:class:`~plateseg.map_settings.MapSettings` (:attr:`PlatesegConfig.map_settings` gives them
back as one); the repository's ``cdk.json`` shows a deployment's choice of all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

from plateseg.map_settings import (
    DEPLOYMENT_DEFAULTS,
    MAX_CONCURRENCY,
    BytesPerBatch,
    ChildExecutionType,
    FailurePercentage,
    ItemsPerBatch,
    MapSettings,
    MemoryMb,
)

__all__ = [
    "CONTEXT_KEY",
    "EXPRESS_LIMIT_SECONDS",
    "ConfigError",
    "DatabaseConfig",
    "ExistingDatabase",
    "PlatesegConfig",
    "RetryConfig",
    "Stage",
]

#: The ``cdk.json`` context key holding the plateseg configuration object.
CONTEXT_KEY = "plateseg"

Stage = Literal["dev", "prod"]

#: Longest an Express execution may run (a Map child of type EXPRESS): 5 minutes.
EXPRESS_LIMIT_SECONDS = 300


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


class ExistingDatabase(_Frozen):
    """An existing PostgreSQL reached from plateseg's functions.

    Attributes
    ----------
    secret_arn : str
        Secrets Manager secret with ``username``, ``password``, ``host``, ``port``, ``dbname``.
    vpc_id : str
        VPC the database lives in.
    availability_zones, subnet_ids : list of str
        Private subnets (one per AZ, same order) the Aggregate and web functions join.
    security_group_id : str
        Security group the functions join; the database must admit it on port 5432.
    proxy_endpoint : str
        RDS Proxy endpoint in front of it (empty: the secret's host).
    iam_auth : bool
        Connect with RDS IAM tokens (needs ``proxy_resource_id``) instead of the password.
    proxy_resource_id : str
        ``prx-...`` id of the proxy, for the ``rds-db:connect`` ARN when ``iam_auth``.
    """

    secret_arn: str = Field(pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    availability_zones: list[str] = Field(min_length=1, max_length=6)
    subnet_ids: list[str] = Field(min_length=1, max_length=6)
    security_group_id: str = Field(pattern=r"^sg-[0-9a-f]{8,17}$")
    proxy_endpoint: str = ""
    iam_auth: bool = False
    proxy_resource_id: str = Field(default="", pattern=r"^(prx-[0-9a-z]+)?$")

    @model_validator(mode="after")
    def _consistent(self) -> ExistingDatabase:
        if len(self.availability_zones) != len(self.subnet_ids):
            raise ValueError(
                f"subnet_ids ({len(self.subnet_ids)}) and availability_zones "
                f"({len(self.availability_zones)}) must pair up one to one"
            )
        if self.iam_auth and not self.proxy_resource_id:
            raise ValueError("iam_auth = true needs proxy_resource_id (prx-...)")
        return self


class DatabaseConfig(_Frozen):
    """The RDS PostgreSQL database, or an existing one.

    Attributes
    ----------
    instance_class : str
        EC2-style class without the ``db.`` prefix (``t4g.micro``, ``r7g.large``).
    allocated_storage_gb : int
        Initial gp3 storage; storage autoscaling may grow it to 4x.
    backup_retention_days : int
        Automated backups kept (1-35 days).
    multi_az : bool or None
        Standby in a second AZ; ``None`` = by stage (prod only).
    deletion_protection : bool or None
        ``None`` = by stage (prod only).
    rotation_days : int
        Secrets Manager rotation interval of the master credentials.
    iam_auth : bool
        Clients authenticate to the RDS Proxy with IAM tokens (``rds-db:connect``) instead
        of the secret's password (the secret still names the user and host).
    existing : ExistingDatabase or None
        Use this database instead of creating one (no VPC, RDS or proxy is created).
    """

    instance_class: str = Field(
        default="t4g.micro",
        pattern=r"^[a-z][a-z0-9-]*\.(nano|micro|small|medium|large|metal|[0-9]*xlarge)$",
    )
    allocated_storage_gb: int = Field(default=20, ge=20, le=65_536)
    backup_retention_days: int = Field(default=7, ge=1, le=35)
    multi_az: bool | None = None
    deletion_protection: bool | None = None
    rotation_days: int = Field(default=30, ge=1, le=365)
    iam_auth: bool = False
    existing: ExistingDatabase | None = None


class PlatesegConfig(_Frozen):
    """Every deployment tunable of plateseg.

    Attributes
    ----------
    stage : {"dev", "prod"}
        ``prod`` retains stateful resources on stack deletion; ``dev`` destroys them.
    map_max_concurrency : int
        :attr:`MapSettings.max_concurrency <plateseg.map_settings.MapSettings>`: batches
        segmented at once; at least 1 here (the Segment reservation must cover it).
    items_per_batch, max_bytes_per_batch, tolerated_failure_percentage : int, int, float
        The Map settings of the same names.
    segment_retry : RetryConfig
        Retry numbers of the Segment task.
    segment_memory_mb : int
        Memory of the Segment Lambda (CPU grows with it); a Map setting.
    segment_timeout_seconds : int
        Timeout of the Segment Lambda.
    segment_reserved_concurrency : int
        Reserved concurrency of the Segment Lambda: a cap, so a large run cannot starve
        the account's other functions; at least ``map_max_concurrency``.
    child_execution_type : {"STANDARD", "EXPRESS"}
        Map child executions (a Map setting); EXPRESS only if a child's worst case fits in
        5 minutes.
    removal_policy : {"DESTROY", "RETAIN", "SNAPSHOT"} or None
        Of stateful resources (bucket, database, logs); ``None`` = RETAIN in prod, DESTROY
        in dev. SNAPSHOT applies to the database (the bucket and logs are then retained).
    existing_bucket_name : str or None
        Use this existing bucket as the store instead of creating one.
    database : DatabaseConfig
        The RDS database (or an existing one).
    runs_expiration_days : int or None
        Delete ``runs/`` objects (manifests, Map results, masks, Parquet) this many days
        after they are written; ``None`` keeps them (the database keeps the summaries).
    alarm_email : str or None
        Subscribed to the alarm topic (confirm the e-mail once after deploy).
    web_callback_urls : list of str
        OAuth callback URLs of the web UI's Cognito app client, besides the API's own.
    """

    stage: Stage = "dev"
    map_max_concurrency: int = Field(
        default=DEPLOYMENT_DEFAULTS.max_concurrency, ge=1, le=MAX_CONCURRENCY
    )
    items_per_batch: ItemsPerBatch = DEPLOYMENT_DEFAULTS.items_per_batch
    max_bytes_per_batch: BytesPerBatch = DEPLOYMENT_DEFAULTS.max_bytes_per_batch
    tolerated_failure_percentage: FailurePercentage = (
        DEPLOYMENT_DEFAULTS.tolerated_failure_percentage
    )
    segment_retry: RetryConfig = RetryConfig()
    segment_memory_mb: MemoryMb = DEPLOYMENT_DEFAULTS.segment_memory_mb
    segment_timeout_seconds: int = Field(default=900, ge=1, le=900)
    segment_reserved_concurrency: int = Field(
        default=DEPLOYMENT_DEFAULTS.max_concurrency, ge=1, le=MAX_CONCURRENCY
    )
    child_execution_type: ChildExecutionType = DEPLOYMENT_DEFAULTS.child_execution_type
    removal_policy: Literal["DESTROY", "RETAIN", "SNAPSHOT"] | None = None
    existing_bucket_name: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
    )
    database: DatabaseConfig = DatabaseConfig()
    runs_expiration_days: int | None = Field(default=None, ge=1, le=36_500)
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    web_callback_urls: list[str] = Field(
        default_factory=lambda: ["http://localhost:8000/"], max_length=20
    )

    @property
    def map_settings(self) -> MapSettings:
        """The Map settings of this deployment, as the definition is rendered with them."""
        return MapSettings(
            items_per_batch=self.items_per_batch,
            max_bytes_per_batch=self.max_bytes_per_batch,
            max_concurrency=self.map_max_concurrency,
            tolerated_failure_percentage=self.tolerated_failure_percentage,
            child_execution_type=self.child_execution_type,
            segment_memory_mb=self.segment_memory_mb,
        )

    @property
    def removal(self) -> Literal["DESTROY", "RETAIN", "SNAPSHOT"]:
        """The removal policy in force: the explicit one, else RETAIN in prod, DESTROY in dev."""
        if self.removal_policy is not None:
            return self.removal_policy
        return "RETAIN" if self.stage == "prod" else "DESTROY"

    @property
    def multi_az(self) -> bool:
        """Multi-AZ database: the explicit value, else True in prod only."""
        return self.stage == "prod" if self.database.multi_az is None else self.database.multi_az

    @property
    def deletion_protection(self) -> bool:
        """Database deletion protection: the explicit value, else True in prod only."""
        explicit = self.database.deletion_protection
        return self.stage == "prod" if explicit is None else explicit

    def child_worst_case_seconds(self) -> float:
        """Longest a Map child can run: every Segment attempt times out, every wait is full.

        ``(max_attempts + 1) * segment_timeout_seconds`` plus each retry wait
        ``min(interval * backoff**i, max_delay)``.
        """
        retry = self.segment_retry
        waits = sum(
            min(retry.interval_seconds * retry.backoff_rate**i, retry.max_delay_seconds)
            for i in range(retry.max_attempts)
        )
        return (retry.max_attempts + 1) * self.segment_timeout_seconds + waits

    @model_validator(mode="after")
    def _cross_checks(self) -> PlatesegConfig:
        if self.child_execution_type == "EXPRESS":
            worst = self.child_worst_case_seconds()
            if worst > EXPRESS_LIMIT_SECONDS:
                raise ValueError(
                    f"child_execution_type = 'EXPRESS': a Map child may run {worst:.0f} s "
                    f"((segment_retry.max_attempts + 1) x segment_timeout_seconds + retry "
                    f"waits) but Express executions stop at {EXPRESS_LIMIT_SECONDS} s; lower "
                    "segment_timeout_seconds or segment_retry.max_attempts, or use 'STANDARD'"
                )
        if self.segment_reserved_concurrency < self.map_max_concurrency:
            raise ValueError(
                f"segment_reserved_concurrency ({self.segment_reserved_concurrency}) is below "
                f"map_max_concurrency ({self.map_max_concurrency}): batches would be throttled; "
                "raise the reservation or lower the Map concurrency"
            )
        return self

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
