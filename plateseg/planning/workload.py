"""Measure an experiment's workload on a sample, and this machine's engine overhead.

:func:`measure_workload` counts the experiment's fields and image bytes, then segments
an evenly spread sample of fields in ``workers`` fresh processes at once (so a busy
machine's contention is in the figures, as it will be in a local run) with the real
Segment code (:mod:`plateseg.planning.sampling`). Nothing is written to the store.

:func:`measure_engine` times the local engine itself: spawning its worker pool and
importing the handlers (``startup_seconds``), and running trivial Lambda children
through the pool with a journal (``per_child_seconds``).
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plateseg.errors import InputError, NoImagesError, NotFoundError, RecipeError
from plateseg.planning.model import FieldProfile, Platform, local_platform
from plateseg.settings import Settings, get_settings

if TYPE_CHECKING:
    from plateseg.contracts import ManifestItem, Recipe

__all__ = ["EngineOverhead", "Workload", "measure_engine", "measure_workload", "sample_indices"]


@dataclass(frozen=True)
class Workload:
    """An experiment's size and its measured per-field cost.

    Attributes
    ----------
    experiment_id : str
    fields : int
        Fields of view (manifest items).
    channels_per_field : float
    sample : int
        Fields segmented to measure.
    workers : int
        Processes that measured at once.
    profile : FieldProfile
        The per-field figures the model uses.
    heap_peak_mb : float
        Python-heap peak of one field (numpy arrays included), MB.
    output_bytes_per_field : float
        Bytes Segment writes per field (mask, overlay, thumbnail).
    measure_seconds : float
        Wall time of the measurement.
    cpu_profile : FieldProfile
        The same figures in CPU seconds of the measuring processes: what the fields
        cost on a core nobody else uses (the wall figures include a busy machine's
        waits for a core).
    core_share : float
        CPU seconds / wall seconds of the measuring processes (1 = a core each).
    """

    experiment_id: str
    fields: int
    channels_per_field: float
    sample: int
    workers: int
    profile: FieldProfile
    heap_peak_mb: float
    output_bytes_per_field: float
    measure_seconds: float
    cpu_profile: FieldProfile
    core_share: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_indices(total: int, sample: int) -> list[int]:
    """``sample`` indices spread evenly over ``range(total)``, first and last included.

    >>> sample_indices(10, 4)
    [0, 3, 6, 9]
    >>> sample_indices(3, 8)
    [0, 1, 2]
    """
    if sample < 1:
        raise InputError(f"--sample {sample}: need at least one field to measure")
    if total <= sample:
        return list(range(total))
    if sample == 1:
        return [0]
    return sorted({round(i * (total - 1) / (sample - 1)) for i in range(sample)})


def _recipe(recipe: Any) -> Recipe:
    """The ``recipe`` argument (a dict, a Recipe or ``None``), validated with defaults."""
    from pydantic import ValidationError

    from plateseg.contracts import Recipe
    from plateseg.errors import format_validation_error
    from plateseg.segmentation import validate_recipe

    try:
        parsed = Recipe.model_validate(recipe if recipe is not None else {})
    except ValidationError as exc:
        raise RecipeError(format_validation_error(exc, "recipe")) from None
    return validate_recipe(parsed)


def _manifest(
    experiment_id: str, store: Any, naming: str | None, project: bool
) -> tuple[list[ManifestItem], dict[str, int]]:
    from plateseg.contracts import validate_experiment_id
    from plateseg.plate.manifest import build_manifest, choose_naming
    from plateseg.store.keys import experiment_prefix

    validate_experiment_id(experiment_id)
    prefix = experiment_prefix(experiment_id)
    sizes = {info.key: info.size for info in store.list(prefix)}
    if not sizes:
        raise NotFoundError(f"experiment {experiment_id!r}: nothing under {store.uri(prefix)}")
    pattern = choose_naming(sorted(sizes), experiment_id, naming).pattern
    items, _report = build_manifest(sorted(sizes), experiment_id, pattern, project=project)
    if not items:
        raise NoImagesError(
            f"experiment {experiment_id!r}: no image under {store.uri(prefix)} matches the "
            "file-name pattern (try --naming)"
        )
    return items, sizes


def measure_workload(
    experiment_id: str,
    *,
    recipe: Any = None,
    naming: str | None = None,
    sample: int = 8,
    workers: int = 1,
    settings: Settings | None = None,
) -> Workload:
    """Count an experiment's fields and measure a sample of them.

    Parameters
    ----------
    experiment_id : str
        An experiment under ``experiments/<id>/`` in the configured store.
    recipe : dict or Recipe, optional
        Segmentation recipe (the default recipe if omitted).
    naming : str, optional
        File-name preset or regex (ImageXpress by default).
    sample : int
        Fields to segment (spread evenly over the manifest); at least 1.
    workers : int
        Processes measuring at once (use the local run's worker count to include
        contention for cores).
    settings : Settings, optional

    Raises
    ------
    ExperimentIdError, NotFoundError, NoImagesError, RecipeError
        Bad id, no such experiment, no images, bad recipe or missing nuclei channel.
    """
    from plateseg.store import open_store

    settings = settings or get_settings()
    if workers < 1:
        raise InputError(f"workers = {workers}: need at least one measuring process")
    store = open_store(settings.store_location)
    from plateseg.plate.channels import resolve_channels

    parsed = _recipe(recipe)
    items, sizes = _manifest(experiment_id, store, naming, project=parsed.planes == "max")
    found = (channel for item in items for channel in item.channels)
    resolved, _ = resolve_channels(parsed, found, experiment_id)  # as Lookup does
    recipe_json = resolved.model_dump(mode="json")
    nuclei = resolved.channels["nuclei"]
    picked = [items[i] for i in sample_indices(len(items), sample)]
    picked = [item for item in picked if nuclei in item.channels] or picked
    shares = [picked[w :: max(1, workers)] for w in range(min(workers, len(picked)))]
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    from plateseg.runs.worker import init_worker

    with ProcessPoolExecutor(
        max_workers=len(shares),
        mp_context=context,
        initializer=init_worker,
        initargs=(settings.model_dump(mode="json"),),
    ) as pool:
        from plateseg.planning.sampling import measure_share

        futures = [
            pool.submit(
                measure_share,
                settings.store_location,
                experiment_id,
                recipe_json,
                [item.model_dump(mode="json", exclude_none=True) for item in share],
            )
            for share in shares
        ]
        results = [future.result() for future in futures]
    elapsed = time.perf_counter() - start

    def mean(key: str) -> float:
        weights = [r["fields"] for r in results]
        return sum(r[key] * w for r, w in zip(results, weights, strict=True)) / sum(weights)

    item_bytes = statistics.fmean(
        len(json.dumps(item.model_dump(mode="json", exclude_none=True), separators=(",", ":")))
        for item in items
    )
    profile = FieldProfile(
        seconds_per_field=mean("per_field"),
        batch_overhead_seconds=mean("batch_overhead"),
        cold_start_seconds=statistics.fmean(r["cold"] for r in results),
        peak_mb=max(r["rss_mb"] for r in results),
        bytes_per_field=round(
            statistics.fmean(sum(sizes.get(k, 0) for k in item.source_keys) for item in items)
        ),
        gets_per_field=statistics.fmean(len(item.source_keys) for item in items),
        puts_per_field=mean("puts_per_field"),
        puts_per_batch=mean("puts_per_batch"),
        item_bytes=round(item_bytes),
    )
    cpu_profile = replace(
        profile,
        seconds_per_field=mean("per_field_cpu"),
        batch_overhead_seconds=mean("batch_overhead_cpu"),
        cold_start_seconds=statistics.fmean(r["cold_cpu"] for r in results),
    )
    return Workload(
        experiment_id=experiment_id,
        fields=len(items),
        channels_per_field=statistics.fmean(len(item.channels) for item in items),
        sample=len(picked),
        workers=len(shares),
        profile=profile,
        heap_peak_mb=max(r["heap_peak_mb"] for r in results),
        output_bytes_per_field=mean("output_bytes_per_field"),
        measure_seconds=elapsed,
        cpu_profile=cpu_profile,
        core_share=min(1.0, sum(r["cpu"] for r in results) / sum(r["wall"] for r in results)),
    )


@dataclass(frozen=True)
class EngineOverhead:
    """The local engine's own costs, measured.

    Attributes
    ----------
    workers : int
    startup_seconds : float
        Spawning the pool and importing the Lookup and Aggregate handlers.
    per_child_seconds : float
        Time one child execution occupies a worker slot beyond its handler
        (wall per trivial child x workers), journal included.
    """

    workers: int
    startup_seconds: float
    per_child_seconds: float

    def platform(self, aggregate_seconds: float = 0.5) -> Platform:
        """The local :class:`Platform` with these measured figures."""
        return local_platform(
            self.workers,
            startup_seconds=self.startup_seconds,
            per_child_seconds=self.per_child_seconds,
            aggregate_seconds=aggregate_seconds,
        )


def _map_definition(function: str, batch: int | None) -> dict[str, Any]:
    child = {
        "Type": "Task",
        "Resource": f"arn:aws:lambda:us-east-1:000000000000:function:{function}",
        "End": True,
    }
    return fan_out_definition(child, batch)


def fan_out_definition(child: dict[str, Any], batch: int | None) -> dict[str, Any]:
    """A one-state machine: a Distributed Map over ``$.items`` running ``child`` per item
    (per batch of ``batch`` items if given), unlimited concurrency, output ``{"n": …}``.

    What engine overhead is measured with (here and in ``bench/engine.py``).
    """
    state: dict[str, Any] = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "MaxConcurrency": 0,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Child",
            "States": {"Child": child},
        },
        "ResultSelector": {"n.$": "States.ArrayLength($)"},
        "End": True,
    }
    if batch:
        state["ItemBatcher"] = {"MaxItemsPerBatch": batch}
    return {"StartAt": "Fan", "States": {"Fan": state}}


def measure_engine(workers: int = 2, children: int = 64) -> EngineOverhead:
    """Time the local engine's pool start and its cost per child execution.

    Parameters
    ----------
    workers : int
        Worker processes, as the local run will use.
    children : int
        Trivial child executions to time (journaled, like a real run).
    """
    from plateseg.engine import Clock, Journal, LocalEngine
    from plateseg.errors import PlatesegError
    from plateseg.runs.worker import init_worker

    if workers < 1 or children < 1:
        raise InputError(f"workers = {workers}, children = {children}: both must be >= 1")
    functions = {
        "Warm": "plateseg.planning.sampling:warm_handler",
        "Noop": "plateseg.planning.sampling:noop_handler",
    }
    with (
        tempfile.TemporaryDirectory(prefix="plateseg-plan-") as tmp,
        LocalEngine(
            functions=functions,
            clock=Clock(time_scale=0),
            workers=workers,
            worker_initializer=init_worker,
            worker_initargs=(Settings(home=Path(tmp)).model_dump(mode="json"),),
        ) as engine,
    ):
        start = time.perf_counter()
        warm = engine.run(_map_definition("Warm", None), {"items": list(range(workers))})
        startup = time.perf_counter() - start
        with Journal(Path(tmp) / "journal.sqlite") as journal:
            start = time.perf_counter()
            timed = engine.run(
                _map_definition("Noop", None),
                {"items": list(range(children))},
                name="plan-engine",
                journal=journal,
            )
            wall = time.perf_counter() - start
    for outcome in (warm, timed):
        if outcome.status != "SUCCEEDED":
            raise PlatesegError(
                f"measuring the local engine failed: {outcome.error}: {outcome.cause}"
            )
    return EngineOverhead(workers, startup, wall / children * workers)
