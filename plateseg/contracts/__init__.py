"""The seams between the parts of plateseg, as pydantic models.

These are the shapes that cross a process or service boundary: the execution input,
the manifest item Lookup writes, the batch the Distributed Map hands to Segment, the
per-image summary Segment returns and the results Aggregate reports. They are
documented in ``DESIGN.md``; change them everywhere at once or not at all.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from plateseg.contracts.params import validate_recipe
from plateseg.errors import (
    ExecutionInputError,
    ExperimentIdError,
    InputError,
    RecipeError,
    format_validation_error,
)
from plateseg.map_settings import MapSettings
from plateseg.plate.naming import naming_pattern
from plateseg.runs.ids import RUN_ID_RULE, run_id_problem

__all__ = [
    "DEFAULT_CHANNELS",
    "EXPERIMENT_ID_PATTERN",
    "AggregateRequest",
    "AggregateResult",
    "Batch",
    "BatchInput",
    "ExecutionInput",
    "ImageSummary",
    "LookupRequest",
    "LookupResult",
    "ManifestItem",
    "Planes",
    "Recipe",
    "SegmentResult",
    "execution_input_schema",
    "parse_event",
    "validate_experiment_id",
]

#: A safe experiment id: one path segment, no wildcards, no ``..``, at most 128 chars.
EXPERIMENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

M = TypeVar("M", bound=BaseModel)


def _experiment_id_problem(value: str) -> str:
    """Which rule of :data:`EXPERIMENT_ID_PATTERN` an unsafe id breaks, in words."""
    if not value:
        return "it is empty"
    if len(value) > 128:
        return f"it is {len(value)} characters long (at most 128)"
    if "/" in value or "\\" in value:
        return "it contains a path separator ('/' or '\\')"
    if ".." in value:
        return "it contains '..'"
    if "%" in value:
        return "it contains '%' (URL-encoded characters are not decoded)"
    if any(c in value for c in "*?[]{}"):
        return "it contains a wildcard ('*', '?', '[', ']', '{', '}')"
    bad = sorted({c for c in value if not (c.isascii() and (c.isalnum() or c in "._-"))})
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad[:5])}"
    return "it must start with a letter or digit"


def validate_experiment_id(value: str) -> str:
    """Return ``value`` if it is a safe experiment id, else raise.

    Raises
    ------
    ExperimentIdError
        Naming the id and the rule it breaks.

    Examples
    --------
    >>> validate_experiment_id("EXP-001")
    'EXP-001'
    """
    if not isinstance(value, str):
        raise ExperimentIdError(
            f"invalid experiment id: expected a string, got {type(value).__name__}"
        )
    if not EXPERIMENT_ID_PATTERN.fullmatch(value) or ".." in value:
        shown = value if len(value) <= 60 else f"{value[:60]}…"
        raise ExperimentIdError(
            f"invalid experiment id {shown!r}: {_experiment_id_problem(value)}; use 1-128 "
            "letters, digits, '.', '_' or '-', starting with a letter or digit, and no '..'"
        )
    return value


def parse_event(model: type[M], event: Any, what: str) -> M:
    """Validate a Lambda event into ``model``; a mismatch is an :class:`ExecutionInputError`.

    Parameters
    ----------
    model : type
        The pydantic model of the event.
    event : Any
        The raw event.
    what : str
        Name used in messages, e.g. ``"segment event"``.
    """
    if not isinstance(event, dict):
        raise ExecutionInputError(f"{what} must be a JSON object, got {type(event).__name__}")
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        raise ExecutionInputError(format_validation_error(exc, what)) from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: The segmenter of a recipe that names none: ``onnx`` with the shipped learned nuclei
#: model, the most accurate on real images from other labs (``bench/accuracy.py``).
DEFAULT_SEGMENTER: Final = "onnx"


#: The channels of a recipe that names none (ImageXpress wavelength tokens). Lookup
#: replaces them by the experiment's own when it has no ``w1``
#: (:mod:`plateseg.plate.channels`).
DEFAULT_CHANNELS: Final = MappingProxyType({"nuclei": "w1", "cells": "w2"})

#: How a channel imaged in several planes is read (:attr:`Recipe.planes`): its first
#: plane, or the maximum-intensity projection of its planes.
Planes = Literal["first", "max"]


class Recipe(_Model):
    """How to segment: which segmenter, its parameters, and which channel plays which role.

    Attributes
    ----------
    version : int
        Recipe schema version (1).
    segmenter : str
        Registered segmenter name: ``"onnx"`` (default, :data:`DEFAULT_SEGMENTER`),
        ``"classical"`` or ``"trainable"``.
    params : dict
        Segmenter parameters; validated by the segmenter's own parameter model.
    channels : dict of str to str
        Role → channel name in the manifest, e.g. ``{"nuclei": "w1", "cells": "w2"}``
        (:data:`DEFAULT_CHANNELS`, ImageXpress wavelength tokens; on an experiment
        without ``w1`` Lookup chooses by :func:`plateseg.plate.channels.default_channels`).
    secondary : dict or None
        When set (``{}`` for the defaults), whole cells are grown from the nuclei in the
        ``cells`` channel (IdentifySecondaryObjects); validated by
        :class:`plateseg.segmentation.secondary.SecondaryParams`. ``None``: nuclei only.
    planes : {"first", "max"}
        A channel imaged in several files that differ only in their plane (Operetta /
        Opera Phenix ``p01``, ``p02``…; IN Cell ``z 1``…): ``"first"`` segments and
        measures the first plane (the others are listed in Lookup's report);
        ``"max"`` the maximum-intensity projection of the planes of its first timepoint,
        pixel by pixel. A single file holding a Z-stack is refused under ``"first"``
        and projected under ``"max"`` (:func:`plateseg.imaging.read_image`).
    """

    version: Literal[1] = 1
    segmenter: str = DEFAULT_SEGMENTER
    params: dict[str, Any] = Field(default_factory=dict)
    channels: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    secondary: dict[str, Any] | None = None
    planes: Planes = "first"

    @field_validator("channels")
    @classmethod
    def _needs_nuclei(cls, value: dict[str, str]) -> dict[str, str]:
        if "nuclei" not in value:
            raise ValueError("a recipe needs a 'nuclei' channel role")
        return value


class ExecutionInput(_Model):
    """What starts a run: ``{"experiment_id", "run_id"?, "recipe"?, "naming"?,
    "started_by"?}``.

    ``naming`` says how to read plate, well, field and channel from file names: a
    preset (``imagexpress`` — the default —, ``operetta``/``opera-phenix``,
    ``cellomics``, ``incell``) or a regex with named groups (see
    :mod:`plateseg.plate.naming`). ``started_by`` is who started the run (the web's
    signed-in identity, the CLI's login name); it is recorded with the run.
    """

    experiment_id: str
    run_id: str | None = None
    recipe: Recipe = Field(default_factory=Recipe)
    naming: str | None = Field(default=None, min_length=1, max_length=500)
    started_by: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Who started the run (recorded with it); no control characters.",
    )

    @field_validator("experiment_id")
    @classmethod
    def _safe_experiment(cls, value: str) -> str:
        try:
            return validate_experiment_id(value)
        except ExperimentIdError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("run_id")
    @classmethod
    def _safe_run(cls, value: str | None) -> str | None:
        """The run id rule (:mod:`plateseg.runs.ids`): Step Functions and the journal
        accept every id that passes here."""
        problem = None if value is None else run_id_problem(value)
        if value is not None and problem is not None:
            raise ValueError(f"invalid run id {value[:60]!r}: {problem}; use {RUN_ID_RULE}")
        return value

    @classmethod
    def parse(cls, data: Any) -> ExecutionInput:
        """Validate raw input, raising :class:`ExecutionInputError` naming each bad field."""
        if not isinstance(data, dict):
            raise ExecutionInputError(
                f"execution input must be a JSON object, got {type(data).__name__}"
            )
        try:
            parsed = cls.model_validate(data)
        except ValidationError as exc:
            if any(str(e["loc"][0]) == "recipe" for e in exc.errors() if e["loc"]):
                raise RecipeError(format_validation_error(exc, "input")) from None
            raise ExecutionInputError(format_validation_error(exc, "input")) from None
        parsed.check_naming()
        parsed.check_recipe()
        return parsed

    def check_naming(self) -> None:
        """Check ``naming`` is a preset or a regex with the needed groups.

        Raises
        ------
        ExecutionInputError
            ``input.naming`` is neither (bad regex, missing named groups).
        """
        try:
            naming_pattern(self.naming)
        except InputError as exc:
            raise ExecutionInputError(f"input.naming: {exc}") from None

    def check_recipe(self) -> None:
        """Check the recipe against its segmenter (known name, parameters in range).

        Done at the edge so that a bad recipe is refused before a run starts, with the
        same message Lookup would give; the recipe itself is kept as given.

        Raises
        ------
        RecipeError
            ``input.recipe.segmenter`` or ``input.recipe.params.<name>`` is invalid.
        """
        try:
            validate_recipe(self.recipe)
        except RecipeError as exc:
            raise type(exc)(f"input.{exc.message}") from None


class ManifestItem(_Model):
    """One field of view with all its channels: one element of ``manifest.json``.

    Attributes
    ----------
    plate : str
    well : str
        Upper-case row letter(s) + zero-padded column, e.g. ``"B03"``.
    field : int
        Field (site) number within the well, from 1.
    channels : dict of str to str
        Channel name → store key of that channel's image (its first plane).
    planes : dict of str to list of str, optional
        Channel name → store keys of its further planes, in plane order; only when the
        recipe projects planes (``planes: "max"``), and only for channels that have
        them. Omitted otherwise.
    """

    plate: str
    well: str
    field: int = Field(ge=0)
    channels: dict[str, str]
    planes: dict[str, list[str]] | None = None

    @property
    def image_id(self) -> str:
        """Stable id of this field of view within an experiment: ``P1_B03_1``."""
        return f"{self.plate}_{self.well}_{self.field}"

    def plane_keys(self, channel: str) -> list[str]:
        """The store keys a channel is read from: its key, then its further planes."""
        return [self.channels[channel], *(self.planes or {}).get(channel, [])]

    @property
    def source_keys(self) -> list[str]:
        """Every file Segment reads for this field (each channel's planes)."""
        return [key for channel in self.channels for key in self.plane_keys(channel)]


class LookupRequest(_Model):
    """Event of the Lookup Lambda: the raw execution input plus context."""

    input: dict[str, Any]
    execution_name: str
    bucket: str


class LookupResult(_Model):
    """Output of Lookup, stored at ``$.lookup`` of the state."""

    run_id: str
    experiment_id: str
    bucket: str
    manifest_key: str
    result_prefix: str
    item_count: int
    recipe: Recipe
    message: str


class BatchInput(_Model):
    """The ``BatchInput`` the ItemBatcher attaches to every batch."""

    run_id: str
    experiment_id: str
    bucket: str
    recipe: Recipe


class Batch(BaseModel):
    """Event of the Segment Lambda: ``{"BatchInput": {...}, "Items": [...]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    batch_input: BatchInput = Field(alias="BatchInput")
    items: list[ManifestItem] = Field(alias="Items")


class ImageSummary(_Model):
    """Small per-image result Segment returns (never per-object rows).

    ``status == "error"`` marks a per-image error record: ``error`` is the error class
    name and ``cause`` says what was wrong with which file; the metrics are empty.
    """

    image_id: str
    plate: str
    well: str
    field: int
    status: Literal["ok", "error"]
    object_count: int = 0
    metrics: dict[str, float | None] = Field(default_factory=dict)
    mask_key: str | None = None
    error: str | None = None
    cause: str | None = None


class SegmentResult(_Model):
    """Output of the Segment Lambda for one batch."""

    run_id: str
    parquet_key: str | None
    images: list[ImageSummary]


class AggregateRequest(_Model):
    """Event of the Aggregate Lambda."""

    run_id: str
    experiment_id: str
    bucket: str
    recipe: Recipe
    execution_id: str
    map_run_arn: str
    result_writer: dict[str, str]
    started_at: str | None = None
    #: The Map settings the run ran with, written into the definition beside the Map's
    #: own fields by :func:`plateseg.map_settings.apply_tunables`.
    run_settings: MapSettings | None = None


class AggregateResult(_Model):
    """Output of Aggregate: the execution's final output."""

    run_id: str
    experiment_id: str
    status: Literal["SUCCEEDED", "SUCCEEDED_WITH_FAILURES"]
    images_ok: int
    images_failed: int
    batches_failed: int
    wells: int
    objects: int


def execution_input_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the execution input (``schemas/execution-input.schema.json``).

    Generated from :class:`~plateseg.contracts.ExecutionInput`; the experiment and run id
    patterns are enforced by validators, so the schema states them in descriptions only.
    """
    schema = ExecutionInput.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
