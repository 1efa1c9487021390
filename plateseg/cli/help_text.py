"""Command help that reflows to the terminal: Typer (0.29, rich mode) keeps the single
line breaks of a docstring, so at 80 columns a 100-column source line is wrapped and
then broken again where the source broke it, leaving one-word lines.

:func:`unwrap` joins the lines of each prose paragraph; a paragraph whose lines are
indented (the exit-code table) is kept as written. :func:`reflow_help` applies it to
every command and command group of an app, once, after registration.
"""

from __future__ import annotations

import inspect

import typer

__all__ = ["reflow_help", "unwrap"]


def unwrap(text: str) -> str:
    """``text`` with the single line breaks inside prose paragraphs replaced by spaces.

    >>> unwrap("Segment images\\nwith a recipe.\\n\\nExit codes:\\n\\n  0  ok\\n  1  failed")
    'Segment images with a recipe.\\n\\nExit codes:\\n\\n  0  ok\\n  1  failed'
    """
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if _indented(p) else p.replace("\n", " ") for p in paragraphs)


def _indented(paragraph: str) -> bool:
    """Whether a line of ``paragraph`` is indented (a table or list kept as written)."""
    return any(line.startswith((" ", "\t")) for line in paragraph.splitlines())


def reflow_help(app: typer.Typer) -> None:
    """Unwrap the help of ``app``'s commands and groups (recursively), in place."""
    if app.info.help:
        app.info.help = unwrap(app.info.help)
    for command in app.registered_commands:
        text = command.help or (inspect.getdoc(command.callback) if command.callback else None)
        if text:
            command.help = unwrap(text)
    for group in app.registered_groups:
        if group.help:
            group.help = unwrap(group.help)
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)
