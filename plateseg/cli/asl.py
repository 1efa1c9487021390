"""``plateseg asl``: validate and run any Amazon States Language definition locally.

``validate FILE`` exits 0 when the definition is one the local engine runs, else 2 with
one line per problem (JSON pointer, state name, what is wrong) on stderr.

``run DEFINITION --input JSON|@FILE`` prints the execution output as JSON on stdout
and exits 0; a failed execution prints ``{"Error": …, "Cause": …}`` and exits 1; an
invalid definition exits 2 with the validation messages on stderr. When the output is
a segmentation run's result (``statemachines/segmentation.asl.json``), the exit is
``plateseg run``'s: 10 when some images failed, 1 when all did. ``--store DIR``
makes bucket ``B`` the folder ``DIR/B``; ``--bind NAME=module:callable`` makes a
Lambda function named ``NAME`` (plain name or the last segment of its ARN) call
``callable(event, context)`` in this process, and ``--bind ARN=module:callable`` any
other Task resource (``arn:aws:states:::sns:publish``…) call
``callable(parameters, context)``; ``validate`` takes the same ``--bind`` so that a
bound resource is accepted and an unbound one named. ``--state-machine ARN=FILE``
registers a child state machine that ``states:startExecution`` may start (``NAME=FILE``
gives it the engine's ARN for ``NAME``). ``--sub NAME=VALUE`` fills a ``${NAME}``
placeholder (in child definitions too); unfilled ones get stand-ins (a Lambda ARN named
after the placeholder for ``…Arn``, the lower-cased name otherwise), noted on stderr.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from plateseg.cli.exit_codes import aggregate_result_of, exit_for_run
from plateseg.cli.output import err_console, load_json_argument
from plateseg.errors import DefinitionError, InputError, PlatesegError

__all__ = ["app", "load_binding", "split_bindings"]

app = typer.Typer(
    name="asl",
    help="Validate and run Amazon States Language definitions with the local engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _stand_in(name: str) -> str:
    """A valid value for an unassigned ``${Name}`` placeholder."""
    if name.endswith("Arn"):
        return f"arn:aws:lambda:us-east-1:000000000000:function:{name[:-3] or name}"
    return re.sub(r"[^a-z0-9-]", "-", name.lower())


def _load_definition(path: Path, subs: list[str] | None = None) -> Any:
    """Read a definition, filling ``${Name}`` placeholders (CloudFormation style).

    A placeholder without a ``--sub NAME=VALUE`` gets a stand-in: a Lambda ARN for
    names ending in ``Arn``, the lower-cased name otherwise.
    """
    from plateseg.map_settings import placeholders, substitute

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read definition {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for spec in subs or []:
        key, sep, value = spec.partition("=")
        if not sep or not key:
            raise InputError(f"--sub {spec!r}: expected NAME=VALUE")
        values[key] = value
    for name in sorted(placeholders(text) - set(values)):
        values[name] = _stand_in(name)
        err_console.print(f"note: ${{{name}}} stands in as {values[name]!r}", markup=False)
    text = substitute(text, values)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            f"{path}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None


def load_binding(spec: str) -> tuple[str, Callable[[Any, Any], Any]]:
    """Parse ``NAME=module:callable`` and import the callable.

    Raises
    ------
    InputError
        The spec is malformed, the module cannot be imported or has no such callable.
    """
    name, sep, target = spec.partition("=")
    module_name, colon, attr = target.partition(":")
    if not sep or not colon or not name or not module_name or not attr:
        raise InputError(f"--bind {spec!r}: expected FUNCTION=module:callable")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # user modules, as ``python -m`` would find them
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"--bind {spec!r}: cannot import {module_name!r}: {exc}") from None
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise InputError(f"--bind {spec!r}: {module_name!r} has no callable {attr!r}")
    return name, handler


def split_bindings(
    specs: list[str],
) -> tuple[dict[str, Callable[[Any, Any], Any]], dict[str, Callable[[Any, Any], Any]]]:
    """``--bind`` specs → (Lambda function name → handler, resource ARN → handler).

    A Lambda function ARN binds the function it names; any other ``arn:…`` binds that
    Task resource; anything else is a function name.
    """
    from plateseg.engine.integrations.catalog import LAMBDA_ARN
    from plateseg.engine.invoker import function_name_of

    functions: dict[str, Callable[[Any, Any], Any]] = {}
    resources: dict[str, Callable[[Any, Any], Any]] = {}
    for spec in specs:
        name, handler = load_binding(spec)
        if LAMBDA_ARN.match(name):
            functions[function_name_of(name)] = handler
        elif name.startswith("arn:"):
            resources[name] = handler
        else:
            functions[name] = handler
    return functions, resources


def _state_machines(specs: list[str], subs: list[str]) -> dict[str, Any]:
    """``--state-machine ARN=FILE`` specs → ARN (or name) → definition."""
    machines: dict[str, Any] = {}
    for spec in specs:
        key, sep, file = spec.partition("=")
        if not sep or not key or not file:
            raise InputError(f"--state-machine {spec!r}: expected ARN=FILE or NAME=FILE")
        machines[key] = _load_definition(Path(file), subs)
    return machines


def _fail(exc: PlatesegError) -> typer.Exit:
    if isinstance(exc, DefinitionError):
        for problem in exc.problems:
            err_console.print(problem, markup=False)
    else:
        err_console.print(f"error: {exc}", markup=False)
    return typer.Exit(exc.exit_code)


_BIND_HELP = (
    "FUNCTION=module:callable for a Lambda function, or RESOURCE_ARN=module:callable "
    "for any other Task resource; repeatable."
)
_STATE_MACHINE_HELP = (
    "ARN=FILE (or NAME=FILE): a child state machine states:startExecution may start; repeatable."
)


@app.command("validate")
def validate_command(
    file: Path = typer.Argument(..., help="ASL definition (JSON file)."),
    sub: list[str] = typer.Option([], help="NAME=VALUE for a ${NAME} placeholder; repeatable."),
    bind: list[str] = typer.Option([], help=_BIND_HELP),
    state_machine: list[str] = typer.Option([], "--state-machine", help=_STATE_MACHINE_HELP),
) -> None:
    """Check a definition; print every problem with its JSON pointer."""
    from plateseg.engine import parse_definition

    try:
        _functions, resources = split_bindings(bind)
        children = _state_machines(state_machine, sub)
        document = _load_definition(file, sub)
        problems: list[str] = []
        for key, child in children.items():
            try:
                parse_definition(child, resources)
            except DefinitionError as exc:
                problems.extend(f"state machine {key}: {p}" for p in exc.problems)
        try:
            machine = parse_definition(document, resources)
        except DefinitionError as exc:
            problems = exc.problems + problems
        if problems:
            raise DefinitionError(problems)
    except PlatesegError as exc:
        raise _fail(exc) from None
    print(f"{file}: valid ({len(machine.states)} top-level states)")


@app.command("run")
def run_command(
    definition: Path = typer.Argument(..., help="ASL definition (JSON file)."),
    input_json: str = typer.Option("{}", "--input", help="Execution input: JSON or @FILE."),
    store: Path | None = typer.Option(None, help="Folder standing in for S3 (bucket B = DIR/B)."),
    bind: list[str] = typer.Option([], help=_BIND_HELP),
    state_machine: list[str] = typer.Option([], "--state-machine", help=_STATE_MACHINE_HELP),
    time_scale: float = typer.Option(1.0, min=0.0, help="Scale waits (0 = never sleep)."),
    name: str = typer.Option("", help="Execution name (default: a random UUID)."),
    sub: list[str] = typer.Option([], help="NAME=VALUE for a ${NAME} placeholder; repeatable."),
) -> None:
    """Run a definition to its end; print its output (exit 0) or error (exit 1)."""
    from plateseg.engine import Clock, LocalEngine, parse_definition
    from plateseg.store import LocalStore

    try:
        document = _load_definition(definition, sub)
        functions, resources = split_bindings(bind)
        children = _state_machines(state_machine, sub)
        parse_definition(document, resources)
        execution_input = load_json_argument(input_json, "--input")
    except PlatesegError as exc:
        raise _fail(exc) from None

    def buckets(bucket: str) -> LocalStore:
        if store is None:
            raise InputError(f"bucket {bucket!r} needs --store DIR (the bucket is DIR/{bucket})")
        return LocalStore(store / bucket)

    try:
        engine = LocalEngine(
            functions=functions,
            buckets=buckets,
            clock=Clock(time_scale=time_scale),
            workers=1,
            resources=resources,
            state_machines=children,
        )
    except PlatesegError as exc:
        raise _fail(exc) from None
    with engine:
        result = engine.run(document, execution_input, name=name or None)
    if result.status == "SUCCEEDED":
        print(json.dumps(result.output))
        run_result = aggregate_result_of(result.output)
        if run_result is not None:
            exit_for_run(run_result)
        return
    print(json.dumps({"Error": result.error, "Cause": result.cause}))
    raise typer.Exit(1)
