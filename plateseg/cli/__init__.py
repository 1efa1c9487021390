"""The ``plateseg`` command line: a small surface, one clear line per error.

Every :class:`~plateseg.errors.PlatesegError` is printed as ``error: <message>`` on
stderr and exits with the error class's code (2 bad input, 3 bad image, 4 store,
5 database, 75 transient, 1 failed execution). Anything else is an internal error:
one line, exit 70, and the traceback only with ``PLATESEG_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from plateseg.cli import asl, data, db, plan, run, serve, train
from plateseg.cli import aws as aws_cli
from plateseg.cli.output import err_console
from plateseg.errors import PlatesegError

__all__ = ["app", "main"]

app = typer.Typer(
    name="plateseg",
    help="Segment microscopy experiments with a Step Functions Distributed Map, "
    "on AWS or on this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data.register(app)
run.register(app)
train.register(app)
serve.register(app)
aws_cli.register(app)
plan.register(app)
app.add_typer(asl.app, name="asl")
app.add_typer(db.app, name="db")

EXIT_INTERNAL = 70


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``plateseg`` console script."""
    try:
        app(args=argv, prog_name="plateseg", standalone_mode=False)
    except PlatesegError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"error: {exc.format_message()}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("PLATESEG_DEBUG"):
            traceback.print_exc()
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc} "
            "(set PLATESEG_DEBUG=1 to see the traceback)",
            highlight=False,
        )
        sys.exit(EXIT_INTERNAL)
