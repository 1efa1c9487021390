"""``plateseg run|redrive|retry|results``: run an experiment locally, read its results."""

from __future__ import annotations

import csv
import inspect
import io
import json
import threading
from collections.abc import Callable
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from plateseg.cli.exit_codes import exit_code_table, exit_for_run
from plateseg.cli.output import RECIPE_HELP, console, err_console, load_json_argument, plate_grid
from plateseg.errors import InputError, PlatesegError
from plateseg.store.keys import truth_counts_key

if TYPE_CHECKING:
    from plateseg.contracts import AggregateResult
    from plateseg.runs.base import Runner
    from plateseg.runs.progress import RunProgress


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class ExportLevel(StrEnum):
    images = "images"
    wells = "wells"
    objects = "objects"


class _ProgressListener:
    """Turns engine events into a progress bar over the Map Run's items."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            if event.type == "MapRunStarted":
                total = int(event.details.get("total", 0))
                self._task = self._progress.add_task("segmenting", total=total, failed=0)
            elif event.type == "MapRunProgress" and self._task is not None:
                done = int(event.details.get("succeeded", 0)) + int(event.details.get("failed", 0))
                self._progress.update(
                    self._task, completed=done, failed=int(event.details.get("failed", 0))
                )
            elif event.type == "StateEntered":
                name = event.details.get("name", "")
                if name in ("Lookup", "Aggregate"):
                    self._progress.console.print(Text(f"{name.lower()}…", style="dim"))
            elif event.type == "StateExited" and event.details.get("name") == "Lookup":
                # what Lookup found and chose (fields, naming, channels), as it says it
                found = (event.details.get("output") or {}).get("lookup") or {}
                if isinstance(found, dict) and found.get("item_count") and found.get("message"):
                    self._progress.console.print(Text(f"  {found['message']}", style="dim"))


def run(
    experiment_id: str = typer.Argument("", help="Experiment to segment."),
    recipe: str = typer.Option("", help=RECIPE_HELP),
    run_id: str = typer.Option("", help="Run id (idempotency key); default: a new one."),
    naming: str = typer.Option(
        "", help="File-name preset (imagexpress, operetta, cellomics, incell) or a regex."
    ),
    workers: int = typer.Option(0, min=0, help="Worker processes (0 = one per core)."),
    time_scale: float = typer.Option(1.0, min=0.0, help="Scale retry waits (0 = no waiting)."),
    batch_size: int = typer.Option(0, min=0, help="Fields per batch (0 = the default)."),
    concurrency: int = typer.Option(
        -1, min=-1, help="Max concurrent batches (-1 = the default, 0 = unlimited)."
    ),
    resume: str = typer.Option(
        "", "--resume", metavar="RUN_ID", help="Continue a killed or stopped run from its journal."
    ),
) -> None:
    """Run the segmentation state machine on this machine and print a per-well summary.

    Every run is journaled; ``--resume RUN_ID`` continues one that was killed, running
    only the work that had not finished. A run where some images failed exits 10 and
    prints "N of M images failed" on stderr; one where every image failed exits 1.
    """
    from plateseg.map_settings import MapSettings
    from plateseg.runs.base import RunOptions, login_name

    if bool(resume) == bool(experiment_id):
        raise InputError("give an EXPERIMENT_ID to start a run, or --resume RUN_ID (not both)")
    if resume:
        _local(workers, time_scale, lambda runner: runner.resume(resume))
        return
    parsed_recipe = load_json_argument(recipe, "--recipe") if recipe else None
    # the bounds are checked here, naming the options, before anything starts
    MapSettings.from_options(
        items_per_batch=batch_size or None,
        max_concurrency=None if concurrency < 0 else concurrency,
    )
    options = RunOptions(
        naming=naming or None,
        items_per_batch=batch_size or None,
        max_concurrency=None if concurrency < 0 else concurrency,
        started_by=login_name(),
    )
    _local(
        workers,
        time_scale,
        lambda runner: runner.start(experiment_id, run_id or None, parsed_recipe, options=options),
    )


def _local(
    workers: int, time_scale: float, command: Callable[[Runner], RunProgress | None]
) -> None:
    """Run ``command`` on the local runner in this thread with a progress bar; report."""
    from plateseg.runs.factory import make_runner
    from plateseg.settings import get_settings

    settings = get_settings().model_copy(update={"workers": workers, "time_scale": time_scale})
    with _progress() as progress:
        runner = make_runner(settings, listener=_ProgressListener(progress), foreground=True)
        started = command(runner)
    if started is None:  # only a web server's recovery asks for nothing to be done
        raise InputError("nothing to run")
    _report(runner.wait(started.run_id))


def redrive(
    run_id: str = typer.Argument(..., help="A finished local run with failed items."),
    workers: int = typer.Option(0, min=0, help="Worker processes (0 = one per core)."),
    time_scale: float = typer.Option(1.0, min=0.0, help="Scale retry waits (0 = no waiting)."),
) -> None:
    """Re-run only the failed items of a finished local run, then re-aggregate."""
    _local(workers, time_scale, lambda runner: runner.redrive(run_id))


def retry(
    run_id: str = typer.Argument(..., help="A finished run with failed images or batches."),
    workers: int = typer.Option(0, min=0, help="Worker processes (0 = one per core)."),
    time_scale: float = typer.Option(1.0, min=0.0, help="Scale retry waits (0 = no waiting)."),
    stack: str = typer.Option("", help="On AWS: the pipeline stack (its StateMachineArn)."),
    state_machine_arn: str = typer.Option("", help="On AWS: the state machine ARN."),
) -> None:
    """Run a finished run again as a new execution, reusing the batches that succeeded.

    Failed images (replace a corrupt file first) and failed batches are segmented
    again; the run's results are rewritten. Locally the execution is journaled as
    ``RUN_ID--retry-N`` (``--resume``/``redrive`` accept that name). With ``--stack``
    or ``--state-machine-arn`` the retry starts on AWS and its execution ARN is printed
    (follow it with ``plateseg wait``).
    """
    if stack and state_machine_arn:
        raise InputError("retry: give at most one of --stack NAME or --state-machine-arn ARN")
    if stack or state_machine_arn:
        from plateseg.cli.aws import aws_runner

        retried = aws_runner(stack, state_machine_arn).retry(run_id)
        console.print(retried.execution_arn or "", soft_wrap=True, markup=False)
        return
    _local(workers, time_scale, lambda runner: runner.retry(run_id))


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("fields  [red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _report(result: AggregateResult) -> None:
    """Print a finished local run's summary and grid, then exit as its images say."""
    from plateseg.db.engine import open_database
    from plateseg.results import run_failures

    console.print(
        Text.assemble(
            "run ",
            (result.run_id, "bold"),
            f" {result.status}: {result.images_ok} fields segmented, "
            f"{result.images_failed} failed, {result.objects} nuclei in {result.wells} wells",
        )
    )
    _print_well_grid(result.experiment_id, result.run_id)
    failures = run_failures(open_database(), result.run_id) if result.status != "SUCCEEDED" else []
    exit_for_run(result, failures)


def _print_well_grid(experiment_id: str, run_id: str | None) -> None:
    from plateseg.db.engine import open_database
    from plateseg.results import well_table

    rows = well_table(open_database(), experiment_id, run_id=run_id)
    for plate in sorted({row.plate for row in rows}):
        counts = {row.well: row.n_objects for row in rows if row.plate == plate}
        console.print(plate_grid(f"{experiment_id} {plate}: nuclei per well", counts))


def results(
    experiment_id: str = typer.Argument(..., help="Experiment whose results to show."),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format"),
    run_id: str = typer.Option("", help="Run to show (default: the latest)."),
    compare_truth: bool = typer.Option(
        False, "--compare-truth", help="Demo data only: compare counts with the ground truth."
    ),
    export: Path | None = typer.Option(
        None,
        "--export",
        metavar="FILE",
        help="Also write the run's table to FILE (.csv or .parquet), as the web UI's downloads.",
    ),
    level: ExportLevel = typer.Option(ExportLevel.images, help="Rows of --export."),
) -> None:
    """Print the per-well summary of an experiment's latest (or a given) run."""
    from plateseg.contracts import validate_experiment_id
    from plateseg.db.engine import open_database
    from plateseg.results import well_table

    validate_experiment_id(experiment_id)
    rows = well_table(open_database(), experiment_id, run_id=run_id or None)
    if export is not None:
        _export(experiment_id, run_id or None, export, level)
    records = [asdict(row) for row in rows]
    if output_format is OutputFormat.json:
        print(json.dumps(records, indent=2, default=str))
    elif output_format is OutputFormat.csv:
        buffer = io.StringIO()
        if records:
            writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
        print(buffer.getvalue(), end="")
    else:
        _print_table(experiment_id, records)
    if compare_truth:
        _compare_truth(experiment_id, {(r["plate"], r["well"]): r["n_objects"] for r in records})


def _export(experiment_id: str, run_id: str | None, path: Path, level: ExportLevel) -> None:
    """Write :func:`plateseg.results.export_run` bytes to ``path`` (format from its suffix)."""
    from plateseg.db.engine import open_database
    from plateseg.results import export_run, latest_run
    from plateseg.store import open_store

    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("csv", "parquet"):
        raise InputError(f"--export {path}: the file name must end in .csv or .parquet")
    engine = open_database()
    if run_id is None:
        latest = latest_run(engine, experiment_id)
        run_id = latest.run_id if latest is not None else ""
    store = open_store() if level is ExportLevel.objects else None
    data = export_run(
        engine, run_id, "csv" if fmt == "csv" else "parquet", level=level.value, store=store
    )
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise InputError(f"--export {path}: cannot write it ({exc.strerror})") from None
    err_console.print(f"wrote {level.value} of run {run_id} to {path}")


def _print_table(experiment_id: str, records: list[dict[str, Any]]) -> None:
    table = Table(title=f"{experiment_id}: per-well summary")
    if not records:
        console.print(table)
        return
    for key in records[0]:
        table.add_column(key, justify="left" if key in ("plate", "well") else "right")
    for record in records:
        table.add_row(*(_cell(value) for value in record.values()))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _compare_truth(experiment_id: str, counts: dict[tuple[str, str], int]) -> None:
    from plateseg.demo import load_truth
    from plateseg.demo_check import COUNT_SLACK, COUNT_TOLERANCE, compare_counts
    from plateseg.store import open_store

    store = open_store()
    key = truth_counts_key(experiment_id)
    if not store.exists(key):
        raise InputError(f"no ground truth for {experiment_id!r} at {store.uri(key)}")
    result = compare_counts(load_truth(store, experiment_id).well_counts, counts)
    console.print(
        f"ground truth: {result.non_empty} non-empty wells, worst count error "
        f"{result.worst:.1%} (limit {COUNT_TOLERANCE:.0%} or {COUNT_SLACK} nuclei), "
        f"{len(result.bad)} wells over the limit"
    )
    if result.bad:
        listing = "\n  ".join(result.bad)
        raise PlatesegError(
            f"counts differ from ground truth by more than {COUNT_TOLERANCE:.0%} "
            f"(or {COUNT_SLACK} nuclei):\n  {listing}"
        )


def register(app: typer.Typer) -> None:
    run_help = f"{inspect.getdoc(run)}\n\nExit codes:\n\n{exit_code_table()}"
    app.command("run", help=run_help)(run)
    app.command("redrive")(redrive)
    app.command("retry")(retry)
    app.command("results")(results)
