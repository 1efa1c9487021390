"""Where the CLI and the web get their :class:`~plateseg.runs.base.Runner`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from plateseg.engine import Event
from plateseg.runs.base import Engine, Runner
from plateseg.settings import Settings

if TYPE_CHECKING:
    from plateseg.runs.stepfunctions import StateMachineConfig

__all__ = ["StateMachine", "make_runner"]


@dataclass(frozen=True)
class StateMachine:
    """A deployed state machine: its ARN and the Map settings it was deployed with
    (JSON of :class:`~plateseg.map_settings.MapSettings`; empty: unknown)."""

    state_machine_arn: str
    run_settings: str = ""


def make_runner(
    settings: Settings,
    *,
    engine: Engine = "local",
    state_machine: StateMachineConfig | None = None,
    database: Callable[[], sa.Engine] | None = None,
    listener: Callable[[Event], None] | None = None,
    foreground: bool = False,
) -> Runner:
    """The runner of ``engine``.

    Parameters
    ----------
    settings : Settings
        Store, database and workers.
    engine : {"local", "aws"}
        The local engine, or Step Functions executions of ``state_machine``.
    state_machine : StateMachine or an object with the same attributes
        (``WebSettings``); required for ``aws``.
    database : callable, optional
        Opens the results database (a finished run is read back from it).
    listener, foreground
        Local engine: every engine event goes to ``listener`` too, and with
        ``foreground`` a command returns when its execution ended (the CLI).

    Raises
    ------
    NotFoundError
        ``aws`` without a state machine ARN.
    """
    if engine == "aws":
        from plateseg.runs.stepfunctions import AwsRunner

        return AwsRunner(settings, state_machine or StateMachine(""), database=database)
    from plateseg.runs.local import LocalRunner

    return LocalRunner(settings, database=database, listener=listener, foreground=foreground)
