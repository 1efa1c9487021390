"""``plateseg start|status|wait|validate-input``: scripted runs on the deployed pipeline.

Each command prints one parseable result on stdout (the execution ARN, the status, or
``--json``) and reports problems as typed errors (exit 2 bad input or unknown stack,
1 failed run, 75 retry later), so shell scripts can chain them. ``wait`` exits as
``plateseg run`` does for a finished run: 0 every image segmented, 10 some images
failed, 1 every image failed::

    arn=$(plateseg start EXP-042 --stack plateseg-prod-pipeline --recipe @recipe.json)
    plateseg wait "$arn" && plateseg results EXP-042
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from plateseg.cli.exit_codes import aggregate_result_of, exit_for_run
from plateseg.cli.output import RECIPE_HELP, console, err_console, load_json_argument
from plateseg.errors import InputError

if TYPE_CHECKING:
    from plateseg.runs.base import Runner

__all__ = ["aws_runner", "register"]


def aws_runner(stack: str, state_machine_arn: str) -> Runner:
    """The runner on the state machine of ``--stack`` or ``--state-machine-arn`` (the
    request is validated before the stack is looked up)."""
    from plateseg.runs import aws_api as aws
    from plateseg.runs.factory import StateMachine, make_runner
    from plateseg.settings import get_settings

    arn = state_machine_arn or aws.resolve_state_machine_arn(stack)
    return make_runner(get_settings(), engine="aws", state_machine=StateMachine(arn))


def start(
    experiment_id: str = typer.Argument(..., help="Experiment to segment (experiments/<id>/)."),
    recipe: str = typer.Option("", help=RECIPE_HELP),
    run_id: str = typer.Option("", help="Run id; also the execution name (one run per id)."),
    naming: str = typer.Option(
        "", help="File-name preset (imagexpress, operetta, cellomics, incell) or a regex."
    ),
    stack: str = typer.Option("", help="Pipeline stack name (reads its StateMachineArn output)."),
    state_machine_arn: str = typer.Option("", help="State machine ARN (instead of --stack)."),
) -> None:
    """Start a run on AWS Step Functions and print its execution ARN."""
    from plateseg.runs.base import RunOptions, execution_input, login_name

    if bool(stack) == bool(state_machine_arn):
        raise InputError("start: give exactly one of --stack NAME or --state-machine-arn ARN")
    parsed_recipe = load_json_argument(recipe, "--recipe") if recipe else None
    options = RunOptions(naming=naming or None, started_by=login_name())
    execution_input(experiment_id, run_id or None, parsed_recipe, options)  # before any AWS call
    runner = aws_runner(stack, state_machine_arn)
    started = runner.start(experiment_id, run_id or None, parsed_recipe, options=options)
    console.print(started.execution_arn or "", soft_wrap=True)


def _print_status(status: Any) -> None:
    console.print(f"{status.status}  {status.arn}", soft_wrap=True)
    if status.error:
        console.print(f"  error: {status.error}: {status.cause}", soft_wrap=True)
    for run in status.map_runs:
        items = run.items
        console.print(
            f"  map run {run.status}: {items.succeeded}/{items.total} items succeeded, "
            f"{items.failed} failed, {items.running} running, {items.pending} pending, "
            f"{items.timed_out} timed out, {items.aborted} aborted",
            soft_wrap=True,
        )


def status(
    execution_arn: str = typer.Argument(..., help="Execution ARN printed by 'plateseg start'."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Print a run's status and its Map Run item counts."""
    from plateseg.runs import aws_api as aws

    found = aws.describe(execution_arn)
    if as_json:
        console.print_json(json.dumps(found.to_dict()))
    else:
        _print_status(found)


def wait(
    execution_arn: str = typer.Argument(..., help="Execution ARN printed by 'plateseg start'."),
    interval: float = typer.Option(5.0, min=0.1, help="First poll interval in seconds."),
    max_interval: float = typer.Option(60.0, min=0.1, help="Longest poll interval."),
    timeout: float = typer.Option(0.0, min=0.0, help="Give up after N seconds (0 = never)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr."),
) -> None:
    """Wait for a run to end: exit 0 if every image succeeded, 10 if some failed, else 1."""
    from plateseg.runs import aws_api as aws

    def progress(current: Any) -> None:
        if not quiet:
            done = sum(run.items.succeeded + run.items.failed for run in current.map_runs)
            total = sum(run.items.total for run in current.map_runs)
            counts = f" ({done}/{total} items)" if total else ""
            err_console.print(f"{current.status}{counts}")

    final = aws.wait(
        execution_arn,
        interval=interval,
        max_interval=max(max_interval, interval),
        timeout=timeout or None,
        on_poll=progress,
    )
    _print_status(final)
    result = aggregate_result_of(final.output)
    if result is not None:
        exit_for_run(result)


def validate_input(
    document: str = typer.Argument(..., help="Execution input as JSON or @FILE."),
) -> None:
    """Check an execution input against the schema; print it normalized."""
    from plateseg.contracts import ExecutionInput

    parsed = ExecutionInput.parse(load_json_argument(document, "input"))
    console.print_json(json.dumps(parsed.model_dump(mode="json", exclude_none=True)))


def register(app: typer.Typer) -> None:
    """Add ``start``, ``status``, ``wait`` and ``validate-input`` to the ``plateseg`` app."""
    app.command("start")(start)
    app.command("status")(status)
    app.command("wait")(wait)
    app.command("validate-input")(validate_input)
