"""Exit codes of ``plateseg``: one table, and how a finished run exits.

An error carries its own code (``exit_code`` of each class in :mod:`plateseg.errors`);
this module adds the codes that are not errors (success, a run where some images
failed) or not ours (an internal error, an interrupt), keeps the one table that the
``plateseg`` module docstring and ``plateseg run --help`` show, and decides the exit of
a run that finished: :func:`exit_for_run`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from plateseg.cli.output import err_console
from plateseg.errors import (
    AllImagesFailedError,
    DatabaseError,
    ImageError,
    InputError,
    PlatesegError,
    StoreError,
    TransientError,
)

if TYPE_CHECKING:
    from plateseg.contracts import AggregateResult
    from plateseg.db.rows import FailureRow

__all__ = [
    "EXIT_CODES",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SOME_IMAGES_FAILED",
    "aggregate_result_of",
    "exit_code_table",
    "exit_for_run",
]

#: Every image of the run was segmented (or: the command did what it was asked).
EXIT_OK = 0
#: The run finished but some (not all) of its images failed; the summary is on stderr.
EXIT_SOME_IMAGES_FAILED = 10
#: Not a :class:`~plateseg.errors.PlatesegError`: a bug; ``PLATESEG_DEBUG=1`` shows it.
EXIT_INTERNAL = 70
#: Interrupted (Ctrl-C), as shells report SIGINT.
EXIT_INTERRUPTED = 130

#: ``(code, meaning)`` of every exit status, in order; the documentation shows this table.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success: a run segmented every image"),
    (PlatesegError.exit_code, "the execution failed, or every image of the run failed"),
    (InputError.exit_code, "bad input: arguments, experiment id, recipe, layout, definition"),
    (ImageError.exit_code, "an unusable image, or an experiment with no images"),
    (StoreError.exit_code, "store error (S3 or the local store folder)"),
    (DatabaseError.exit_code, "database error"),
    (EXIT_SOME_IMAGES_FAILED, "the run finished but some images failed (count on stderr)"),
    (EXIT_INTERNAL, "internal error (PLATESEG_DEBUG=1 shows the traceback)"),
    (TransientError.exit_code, "temporary fault (throttling, database down): try again"),
    (EXIT_INTERRUPTED, "interrupted"),
)

#: Failures a summary names before it says "and N more".
_NAMED_FAILURES = 3


def exit_code_table() -> str:
    """The exit codes as aligned plain-text lines (``"  0    success: ..."``).

    >>> exit_code_table().splitlines()[6]
    '  10   the run finished but some images failed (count on stderr)'
    """
    return "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)


def aggregate_result_of(output: Any) -> AggregateResult | None:
    """The segmentation run's result in an execution output (JSON text or parsed), if it is one.

    ``None`` for the output of any other state machine (``plateseg asl run`` runs any
    definition) and for an empty or truncated output.
    """
    from pydantic import ValidationError

    from plateseg.contracts import AggregateResult

    if isinstance(output, str):
        try:
            output = json.loads(output)
        except json.JSONDecodeError:
            return None
    if not isinstance(output, dict):
        return None
    try:
        return AggregateResult.model_validate(output)
    except ValidationError:
        return None


def _first_failures(failures: Sequence[FailureRow]) -> str:
    """``" (P1_A01_1 ImageReadError, P1_B02_1 ImageShapeError and 4 more)"``, or ``""``."""
    if not failures:
        return ""
    named = ", ".join(f"{row.item_id} {row.error}" for row in failures[:_NAMED_FAILURES])
    more = len(failures) - _NAMED_FAILURES
    return f" ({named}{f' and {more} more' if more > 0 else ''})"


def exit_for_run(result: AggregateResult, failures: Sequence[FailureRow] = ()) -> None:
    """Return if every image of a finished run succeeded; otherwise say so and exit.

    Parameters
    ----------
    result : AggregateResult
        The run's final output.
    failures : sequence of FailureRow
        Its failed items in order, where the caller can read them (the local
        database); the first few are named.

    Raises
    ------
    AllImagesFailedError
        No image was segmented (exit 1, ``error: run R: all N images failed ...``).
    typer.Exit
        With :data:`EXIT_SOME_IMAGES_FAILED` after ``warning: run R: N of M images
        failed ...`` on stderr.
    """
    if result.status == "SUCCEEDED":
        return
    total = result.images_ok + result.images_failed
    listing = (
        f"list them with: plateseg results {result.experiment_id} "
        f"--run-id {result.run_id} --export images.csv"
    )
    named = _first_failures(failures)
    if result.images_ok == 0:
        what = f"all {total} images failed" if total else "no image was segmented"
        if result.batches_failed:
            what += f" ({result.batches_failed} batches failed)"
        raise AllImagesFailedError(f"run {result.run_id}: {what}{named}; {listing}")
    what = f"{result.images_failed} of {total} images failed"
    if result.batches_failed:
        what += f" ({result.batches_failed} batches failed)"
    err_console.print(
        Text.assemble(("warning:", "yellow"), f" run {result.run_id}: {what}{named}; {listing}")
    )
    raise typer.Exit(EXIT_SOME_IMAGES_FAILED)
