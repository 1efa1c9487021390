"""The run lifecycle: start, progress, cancel, resume, redrive and retry, on one engine.

- :mod:`plateseg.runs.ids`: the one rule for run ids and execution names;
- :mod:`plateseg.runs.base`: the :class:`Runner` protocol and :class:`RunOptions`;
- :mod:`plateseg.runs.local`: :class:`LocalRunner` (the local engine);
- :mod:`plateseg.runs.stepfunctions`: :class:`AwsRunner` (AWS Step Functions);
- :mod:`plateseg.runs.factory`: :func:`make_runner`, where the CLI and the web get theirs.

Names are imported on first use (:mod:`plateseg.contracts` imports :mod:`.ids`, and
:mod:`.base` imports :mod:`plateseg.contracts`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plateseg.lazy import lazy_attributes

if TYPE_CHECKING:
    from plateseg.runs.base import Engine, Estimate, Kind, Runner, RunOptions
    from plateseg.runs.factory import StateMachine, make_runner
    from plateseg.runs.local import LocalRunner
    from plateseg.runs.manager import RunManager
    from plateseg.runs.progress import QUEUED, TERMINAL, RunProgress, with_timing
    from plateseg.runs.stepfunctions import AwsRunner

__all__ = [
    "QUEUED",
    "TERMINAL",
    "AwsRunner",
    "Engine",
    "Estimate",
    "Kind",
    "LocalRunner",
    "RunManager",
    "RunOptions",
    "RunProgress",
    "Runner",
    "StateMachine",
    "make_runner",
    "with_timing",
]

_HOME = {
    "QUEUED": "progress",
    "TERMINAL": "progress",
    "RunProgress": "progress",
    "with_timing": "progress",
    "Engine": "base",
    "Estimate": "base",
    "Kind": "base",
    "RunOptions": "base",
    "Runner": "base",
    "RunManager": "manager",
    "LocalRunner": "local",
    "AwsRunner": "stepfunctions",
    "StateMachine": "factory",
    "make_runner": "factory",
}


__getattr__ = lazy_attributes(__name__, _HOME)
