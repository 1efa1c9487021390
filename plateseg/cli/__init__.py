"""The ``plateseg`` command line: a small surface, one clear line per error.

Every :class:`~plateseg.errors.PlatesegError` is printed as ``error: <message>`` on
stderr and exits with the error class's code. Anything else is an internal error:
one line, exit 70, and the traceback only with ``PLATESEG_DEBUG=1``. Messages are
printed as plain text: user data (a plate folder ``Plate [old]``, a layout well
``[/b]``) is never read as Rich markup.

A run (``plateseg run``, ``redrive``, ``retry``, ``wait``) that finishes with failed
images says so: ``warning: run R: N of M images failed (...)`` and exit 10 when some
images were segmented, ``error: run R: all N images failed (...)`` and exit 1 when none
were; each names the first few failures and how to list them all.

Exit codes (:data:`plateseg.cli.exit_codes.EXIT_CODES`)::

    0    success: a run segmented every image
    1    the execution failed, or every image of the run failed
    2    bad input: arguments, experiment id, recipe, layout, definition
    3    an unusable image, or an experiment with no images
    4    store error (S3 or the local store folder)
    5    database error
    10   the run finished but some images failed (count on stderr)
    70   internal error (PLATESEG_DEBUG=1 shows the traceback)
    75   temporary fault (throttling, database down): try again
    130  interrupted
"""

from __future__ import annotations

import os
import sys
import traceback

import typer
from rich.text import Text

from plateseg.cli import asl, data, db, plan, run, serve, train
from plateseg.cli import aws as aws_cli
from plateseg.cli.exit_codes import EXIT_INTERNAL, EXIT_INTERRUPTED
from plateseg.cli.help_text import reflow_help
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
reflow_help(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``plateseg`` console script.

    Returns on success; exits (``SystemExit``) with the code of the table above
    otherwise. With ``standalone_mode=False`` Typer hands back the code of a
    ``typer.Exit`` instead of exiting, so that code is passed on here.
    """
    try:
        code = app(args=argv, prog_name="plateseg", standalone_mode=False)
    except PlatesegError as exc:
        err_console.print(Text.assemble(("error:", "bold red"), " ", str(exc)))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"error: {exc.format_message()}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if os.environ.get("PLATESEG_DEBUG"):
            traceback.print_exc()
        err_console.print(
            Text.assemble(
                ("internal error:", "bold red"),
                f" {type(exc).__name__}: {exc} (set PLATESEG_DEBUG=1 to see the traceback)",
            )
        )
        sys.exit(EXIT_INTERNAL)
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        if code == EXIT_INTERRUPTED:  # Typer turns Ctrl-C in a command into Exit(130)
            err_console.print("interrupted")
        sys.exit(code)
