"""``plateseg plan``: measure a sample, predict the run on AWS and here, recommend settings."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from enum import StrEnum
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from plateseg.cli.output import RECIPE_HELP, console, err_console, load_json_argument
from plateseg.errors import InputError


class Objective(StrEnum):
    balanced = "balanced"
    fastest = "fastest"
    cheapest = "cheapest"


def _seconds(value: float) -> str:
    if math.isinf(value):
        return "never (saturated)"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _prediction_dict(p: Any) -> dict[str, Any]:
    return {
        "setting": asdict(p.setting),
        "wall_seconds": round(p.wall_seconds, 3),
        "map_seconds": round(p.map_seconds, 3),
        "cost_usd": None if p.cost_usd is None else round(p.cost_usd, 6),
        "cost_breakdown": None if p.cost is None else asdict(p.cost),
        "batches": p.batches,
        "items_per_batch": p.items_per_batch,
        "batch_seconds": round(p.batch_seconds, 3),
        "peak_concurrency": p.peak_concurrency,
        "db_connections": p.db_connections,
        "valid": p.valid,
        "problems": p.problems,
        "notes": p.notes,
    }


def _definition_setting() -> Any:
    """The default Map settings: what ``plateseg run`` uses without options."""
    from plateseg.map_settings import DEFAULTS
    from plateseg.planning.model import Setting

    return Setting.of(DEFAULTS)


def _grid_table(rows: list[Any], chosen: Any, limit: int) -> Table:
    """Per batch size and peak concurrency, the cheapest valid x86_64 setting; fastest first."""
    table = Table(title="AWS settings: cheapest per batch size and concurrency", pad_edge=False)
    for name in ("batch", "max conc.", "memory", "children", "wall", "cost"):
        table.add_column(name, justify="right")
    table.add_column("peak Lambdas", justify="right")
    table.add_column("DB conns", justify="right")
    best: dict[tuple[int, int], Any] = {}
    for p in rows:
        if not p.valid or p.setting.arch != "x86_64":
            continue
        key = (p.items_per_batch, p.peak_concurrency)
        current = best.get(key)
        if current is None or (p.cost_usd, p.setting.max_concurrency) < (
            current.cost_usd,
            current.setting.max_concurrency,
        ):
            best[key] = p
    shown = sorted(best.values(), key=lambda p: (p.wall_seconds, p.cost_usd))[:limit]
    if chosen not in shown:
        shown.append(chosen)
    for p in shown:
        s = p.setting
        cells = [
            str(p.items_per_batch),
            str(s.max_concurrency),
            f"{s.memory_mb} MB",
            s.execution_type,
            _seconds(p.wall_seconds),
            f"${p.cost_usd:.4f}",
            str(p.peak_concurrency),
            str(p.db_connections),
        ]
        table.add_row(*cells, style="bold green" if p is chosen else None)
    return table


def plan(
    experiment_id: str = typer.Argument(..., help="Experiment to plan (in the configured store)."),
    recipe: str = typer.Option("", help=RECIPE_HELP),
    naming: str = typer.Option("", help="File-name preset or regex (default: ImageXpress)."),
    sample: int = typer.Option(8, min=1, max=256, help="Fields to segment to measure."),
    workers: int = typer.Option(0, min=0, help="Local worker processes (0 = one per core)."),
    objective: Objective = typer.Option(
        Objective.balanced, help="balanced: cheapest within --slack of the fastest."
    ),
    slack: float = typer.Option(0.10, min=0.0, max=10.0, help="Allowed slowdown (0.10 = 10%)."),
    rows: int = typer.Option(12, min=1, help="Rows of the settings table to print."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead."),
    fleet_servers: int = typer.Option(
        0, min=0, help="Compare with a static fleet of this many servers (0 = no comparison)."
    ),
    fleet_cores: int = typer.Option(8, min=1, help="Cores per fleet server."),
    fleet_hourly_usd: float = typer.Option(0.40, min=0.0, help="Price of one server per hour."),
    jobs_per_day: float = typer.Option(4.0, min=0.001, help="Fleet comparison: jobs per day."),
    images_per_job: int = typer.Option(
        0, min=0, help="Fleet comparison: fields per job (0 = this experiment's)."
    ),
    fixed_monthly_usd: float = typer.Option(
        70.0, min=0.0, help="Fixed monthly AWS cost of the deployment (RDS, proxy, endpoints)."
    ),
) -> None:
    """Predict a run's wall time and cost on AWS and here; recommend cdk.json settings.

    Segments a sample of fields locally (CPU and wall time, peak memory, bytes, S3
    writes), counts the experiment's fields, models the Distributed Map (CPU time: a
    Lambda has its vCPU to itself) for a grid of batch sizes, Map
    concurrencies, Lambda memories, child execution types and architectures, and prints
    the recommended setting with the cdk.json values to apply. Nothing is written.
    """
    from plateseg.planning.fleet import Fleet, WorkloadPattern, compare_fleet
    from plateseg.planning.model import predict
    from plateseg.planning.prices import PRICES_DATE, PRICES_REGION
    from plateseg.planning.recommend import grid, recommend
    from plateseg.planning.workload import measure_engine, measure_workload
    from plateseg.settings import get_settings

    settings = get_settings()
    workers = workers or settings.worker_count
    parsed_recipe = load_json_argument(recipe, "--recipe") if recipe else None
    if parsed_recipe is not None and not isinstance(parsed_recipe, dict):
        raise InputError("--recipe: expected a JSON object")
    err_console.print(f"measuring {experiment_id}: {sample} sample fields on {workers} workers…")
    workload = measure_workload(
        experiment_id,
        recipe=parsed_recipe,
        naming=naming or None,
        sample=sample,
        workers=workers,
        settings=settings,
    )
    profile = workload.profile  # wall clock: this machine as loaded now
    cloud = workload.cpu_profile  # CPU time: a core of its own, as a Lambda vCPU
    overhead = measure_engine(workers)
    local_setting = _definition_setting()
    local = predict(workload.fields, profile, local_setting, overhead.platform())
    table = grid(workload.fields, cloud)
    choice = recommend(table, objective.value, slack)
    chosen = choice.prediction
    comparison = None
    if fleet_servers:
        job_fields = images_per_job or workload.fields
        job_setting = (
            chosen.setting
            if job_fields == workload.fields
            else recommend(grid(job_fields, cloud), objective.value, slack).prediction.setting
        )
        comparison = compare_fleet(
            Fleet(fleet_servers, fleet_cores, fleet_hourly_usd),
            WorkloadPattern(jobs_per_day, job_fields),
            cloud,
            job_setting,
            fixed_monthly_usd=fixed_monthly_usd,
        )

    if as_json:
        document = {
            "experiment_id": experiment_id,
            "prices": {"date": PRICES_DATE, "region": PRICES_REGION},
            "workload": workload.as_dict(),
            "engine_overhead": asdict(overhead),
            "local": _prediction_dict(local) | {"workers": workers},
            "recommendation": {
                "objective": objective.value,
                "reason": choice.reason,
                "prediction": _prediction_dict(chosen),
                "cdk_json": {"context": {"plateseg": choice.cdk_json}},
                "arm64_cost_usd": None if choice.arm64 is None else choice.arm64.cost_usd,
            },
            "grid": [_prediction_dict(p) for p in table],
            "fleet": None if comparison is None else comparison.as_dict(),
        }
        typer.echo(json.dumps(document, indent=2))
        return

    p = profile
    console.print(
        Text.assemble(
            (experiment_id, "bold"),
            f": {workload.fields} fields x {workload.channels_per_field:g} "
            f"channels, {p.bytes_per_field / 1e6:.2f} MB of images per field",
        )
    )
    console.print(
        f"sample of {workload.sample} fields: {cloud.seconds_per_field:.3f} CPU s per field "
        f"({p.seconds_per_field:.3f} s wall on this machine now, "
        f"{workload.core_share:.0%} of a core each), "
        f"{cloud.batch_overhead_seconds:.3f} s per batch, "
        f"{cloud.cold_start_seconds:.2f} s cold start, "
        f"peak {p.peak_mb:.0f} MB per process, {p.puts_per_field:g} writes per field"
    )
    console.print(
        f"this machine ({workers} workers, batch {local_setting.items_per_batch}): "
        f"~{_seconds(local.wall_seconds)} "
        f"(engine: {overhead.startup_seconds:.1f} s start, "
        f"{overhead.per_child_seconds * 1000:.1f} ms per child)"
    )
    console.print(_grid_table(table, chosen, rows))
    console.print(
        Text.assemble(
            ("recommended", "bold"),
            f": {_seconds(chosen.wall_seconds)}, ${chosen.cost_usd:.4f} "
            f"per run (prices: {PRICES_REGION}, {PRICES_DATE}), {chosen.peak_concurrency} "
            f"Lambdas at peak, {chosen.db_connections} database connection (Aggregate only)",
        )
    )
    console.print(f"why: {choice.reason}")
    if choice.arm64 is not None and choice.arm64.cost_usd is not None:
        console.print(
            f"on arm64 the same setting would cost ${choice.arm64.cost_usd:.4f} "
            "(the stacks build the image for x86_64 today)"
        )
    console.print("cdk.json (context.plateseg):")
    console.print_json(json.dumps(choice.cdk_json))
    if comparison is not None:
        _print_fleet(comparison)


def _print_fleet(c: Any) -> None:
    f = c.fleet
    table = Table(
        title=f"A month of {c.pattern.jobs_per_day:g} jobs/day x {c.pattern.images_per_job} fields",
        pad_edge=False,
    )
    table.add_column("")
    table.add_column(f"fleet {f.servers} x {f.cores} cores", justify="right")
    table.add_column("AWS (recommended)", justify="right")
    table.add_column("AWS advantage", justify="right")
    time_to_results = c.fleet_wait_seconds + c.fleet_job_seconds
    table.add_row(
        "time to results",
        _seconds(time_to_results),
        _seconds(c.aws_job_seconds),
        "n/a" if math.isinf(c.speedup) else f"{c.speedup:.1f}x faster",
    )
    table.add_row(
        "monthly cost",
        f"${c.fleet_monthly_usd:,.0f}",
        f"${c.aws_monthly_usd:,.0f}",
        f"{c.cost_ratio:.1f}x cheaper" if c.cost_ratio >= 1 else f"{1 / c.cost_ratio:.1f}x dearer",
    )
    table.add_row("fleet utilisation", f"{c.fleet_utilisation:.0%}", "-", "")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
