"""The run lifecycle as one protocol: :class:`Runner`, with the options of a start.

Every way to start, watch, cancel, resume, redrive or retry a run goes through a
:class:`Runner`: ``plateseg run|redrive|retry|start`` and the web API alike, each
getting theirs from :func:`plateseg.runs.make_runner`. Two implement it:
:class:`~plateseg.runs.local.LocalRunner` (the local engine, in background threads or in
the caller's thread) and :class:`~plateseg.runs.stepfunctions.AwsRunner` (Step
Functions executions). The web server's admission control wraps one
(:mod:`plateseg.web.admission`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from plateseg.contracts import AggregateResult, ExecutionInput, Recipe
from plateseg.errors import ResumeError
from plateseg.map_settings import DEFAULTS, ItemsPerBatch, MapSettings, MaxConcurrency
from plateseg.runs.progress import RunProgress

__all__ = [
    "Engine",
    "Estimate",
    "Kind",
    "RunOptions",
    "Runner",
    "check_redrivable",
    "check_retryable",
    "execution_input",
    "login_name",
]

#: Where runs execute.
Engine = Literal["local", "aws"]
#: What a (re)start of a run is: a new run, or a redrive or retry of a finished one.
Kind = Literal["start", "redrive", "retry"]


class RunOptions(BaseModel):
    """The options of a start besides the experiment, run id and recipe.

    Attributes
    ----------
    naming : str or None
        File-name preset (``imagexpress``, ``operetta``, ``cellomics``, ``incell``) or a
        regex with named groups; ``None``: Lookup detects the preset that reads every
        file (:func:`plateseg.plate.manifest.choose_naming`).
    items_per_batch : int or None
        Fields per Segment batch; ``None``: the default (:class:`MapSettings`).
    max_concurrency : int or None
        Batches at once (0 = unlimited); ``None``: the default.
    started_by : str or None
        Who starts the run (recorded with it: the web's identity, the CLI's login name).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    naming: str | None = Field(default=None, min_length=1, max_length=500)
    items_per_batch: ItemsPerBatch | None = None
    max_concurrency: MaxConcurrency | None = None
    started_by: str | None = Field(default=None, min_length=1, max_length=200)

    @property
    def map_settings_given(self) -> bool:
        """Whether any Map setting differs from "the default"."""
        return self.items_per_batch is not None or self.max_concurrency is not None

    def map_settings(self, base: MapSettings = DEFAULTS) -> MapSettings:
        """``base`` with the Map settings these options set."""
        return MapSettings.from_options(
            **{
                **base.model_dump(),
                "items_per_batch": self.items_per_batch or base.items_per_batch,
                "max_concurrency": (
                    base.max_concurrency if self.max_concurrency is None else self.max_concurrency
                ),
            }
        )


def login_name() -> str | None:
    """The OS login name of whoever runs this process (the CLI's ``started_by``), or
    ``None`` when the system cannot tell (no ``USER`` and no password entry)."""
    import getpass

    try:
        name = getpass.getuser().strip()
    except (KeyError, OSError):
        return None
    return name[:200] or None


def execution_input(
    experiment_id: str,
    run_id: str | None,
    recipe: Recipe | Mapping[str, Any] | None,
    options: RunOptions,
) -> ExecutionInput:
    """The validated execution input of a start (the edge: every runner calls it first).

    Raises
    ------
    ExecutionInputError, RecipeError
        Naming each bad field (``input.run_id`` quotes the run id rule).
    """
    data: dict[str, Any] = {"experiment_id": experiment_id}
    if run_id is not None:
        data["run_id"] = run_id
    if recipe is not None:
        data["recipe"] = recipe.model_dump() if isinstance(recipe, Recipe) else recipe
    if options.naming is not None:
        data["naming"] = options.naming
    if options.started_by is not None:
        data["started_by"] = options.started_by
    return ExecutionInput.parse(data)


def check_redrivable(progress: RunProgress) -> None:
    """Refuse a redrive the run's snapshot says has nothing to do (the web asks first;
    the engine refuses the same when it finds no failed item).

    Raises
    ------
    ResumeError
        The run is still running, or no Map item failed.
    """
    if not progress.done:
        raise ResumeError(f"run {progress.run_id!r} is still {progress.status.lower()}")
    if not progress.can_redrive:
        raise ResumeError(
            f"run {progress.run_id!r} has nothing to redrive: no Map item failed (images "
            "that were unreadable stay failed until the files are replaced; retry then)"
        )


def check_retryable(progress: RunProgress) -> None:
    """Refuse a retry the run's snapshot says has nothing to do.

    Raises
    ------
    ResumeError
        The run is still running, or no image or batch failed.
    """
    if not progress.done:
        raise ResumeError(
            f"run {progress.run_id!r} is still {progress.status.lower()}: retry it when it ends"
        )
    if not progress.can_retry:
        raise ResumeError(f"run {progress.run_id!r} has nothing to retry: no image or batch failed")


@dataclass(frozen=True)
class Estimate:
    """Estimated wall time (local) or cost (AWS) of segmenting ``fields`` fields."""

    fields: int
    seconds: float
    cost_usd: float | None
    basis: str


class Runner(Protocol):
    """Starts, follows and restarts runs on one engine.

    Every command returns the run's snapshot at once (a run goes on in the background,
    or on AWS); :meth:`wait` blocks until it ends. Errors are typed
    (:mod:`plateseg.errors`): a bad request :class:`~plateseg.errors.InputError`, an
    unknown run :class:`~plateseg.errors.NotFoundError`, a command the run's state
    refuses :class:`~plateseg.errors.ResumeError`.
    """

    engine: Engine

    @property
    def map_settings(self) -> MapSettings:
        """The Map settings a run gets where its options name none."""
        ...

    def start(
        self,
        experiment_id: str,
        run_id: str | None,
        recipe: Recipe | Mapping[str, Any] | None = None,
        *,
        options: RunOptions | None = None,
        who: str = "",
    ) -> RunProgress:
        """Start a run (``run_id`` ``None``: a new id); ``who`` asked (admission records it)."""
        ...

    def progress(self, run_id: str) -> RunProgress:
        """Where the run stands (NotFoundError when unknown)."""
        ...

    def cancel(self, run_id: str) -> RunProgress:
        """Stop a running run; what finished is kept (resume or redrive continues it)."""
        ...

    def resume(
        self, run_id: str, kind: Kind = "start", *, interrupted_only: bool = False
    ) -> RunProgress | None:
        """Continue a stopped run (its ``kind``: start, redrive or retry). With
        ``interrupted_only``, only one that was running when its process stopped;
        ``None`` when the engine had not begun it (start it again)."""
        ...

    def redrive(self, run_id: str) -> RunProgress:
        """Re-run the failed Map items of a finished run, then re-aggregate."""
        ...

    def retry(self, run_id: str) -> RunProgress:
        """Run a finished run again as ``<run_id>--retry-<n>``, reusing succeeded batches."""
        ...

    def wait(self, run_id: str, timeout: float | None = None) -> AggregateResult:
        """Block until the run ends; its result, or the error it failed with."""
        ...

    def followed(self) -> list[RunProgress]:
        """Runs this process started and follows, newest first."""
        ...

    def supports_redrive(self) -> bool:
        """Whether this engine can redrive."""
        ...

    def estimate(self, fields: int, seconds_per_field: float) -> Estimate:
        """Wall time (and on AWS the cost) of ``fields`` fields at the engine's settings."""
        ...
