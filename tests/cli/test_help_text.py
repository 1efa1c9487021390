"""Command help reflows to the terminal (:mod:`plateseg.cli.help_text`)."""

from __future__ import annotations

import os
import subprocess

import pytest
import typer

from plateseg.cli import app
from plateseg.cli.help_text import unwrap
from tests.cli.console import PLATESEG


def _commands(group: typer.Typer) -> list[typer.models.CommandInfo]:
    found = list(group.registered_commands)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            found += _commands(sub.typer_instance)
    return found


def test_unwrap_joins_prose_lines_and_keeps_indented_blocks() -> None:
    text = "First line\n    of a doc.\n\n    Second\n    one.\n\n    Codes:\n\n      0  ok"
    assert unwrap(text) == "First line of a doc.\n\nSecond one.\n\nCodes:\n\n  0  ok"


def test_every_command_help_has_no_line_break_inside_a_prose_paragraph() -> None:
    commands = _commands(app)
    assert len(commands) > 10
    for command in commands:
        assert command.help, command.name
        for paragraph in command.help.split("\n\n"):
            lines = paragraph.splitlines()
            if not any(line.startswith(" ") for line in lines):
                assert len(lines) == 1, (command.name, paragraph)


@pytest.mark.parametrize("args", [["segment"], ["run"], ["db", "upgrade"]])
def test_help_at_80_columns_fills_its_lines(args: list[str]) -> None:
    """The installed script at 80 columns: within a paragraph of the description, every
    line but the last is nearly full (Typer alone left one-word lines where the
    docstring's source lines broke)."""
    env = dict(os.environ, COLUMNS="80", TERM="dumb")
    done = subprocess.run(
        [str(PLATESEG), *args, "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    description = done.stdout.split("╭")[0].splitlines()[3:]  # after the usage line
    paragraphs: list[list[str]] = [[]]
    for line in description:
        if line.strip():
            paragraphs[-1].append(line.rstrip())
        else:
            paragraphs.append([])
    prose = [p for p in paragraphs if p and not p[0].startswith("   ")]
    assert prose, done.stdout
    for paragraph in prose:
        for line in paragraph[:-1]:
            assert len(line) > 60, (line, paragraph)
