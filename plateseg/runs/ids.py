"""The one owner of run ids and execution names.

A run id is three things at once, so one rule serves all three:

* the **Step Functions execution name** of the run's first execution (AWS: 1-80
  characters, no whitespace, none of ``< > { } [ ] ? * " # % \\ ^ | ~ ` $ & , ; : /``,
  no control characters; CloudWatch logging wants only ``0-9 A-Z a-z - _``);
* the **folder of the local journal**, ``<home>/runs/<run_id>/journal.sqlite``, and
  the store prefix ``runs/<run_id>/``: one path segment, never ``.`` or ``..``;
* the prefix of its **retries**, executions named ``<run_id>--retry-<n>``, which must
  still be valid execution names.

Hence :data:`RUN_ID_RULE`: 1-64 letters, digits, ``-`` or ``_``, starting with a letter
or digit. 64 leaves room for ``--retry-<n>`` (up to 8 digits) within AWS's 80
characters, so a retry's name is never cut and always maps back to its run.
:func:`check_run_id` applies it at the edge (:class:`plateseg.contracts.ExecutionInput`,
the web's path parameters), so the journal and Step Functions never see an id they
refuse.

Imports the standard library and :mod:`plateseg.errors` only.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from plateseg.errors import InputError

__all__ = [
    "MAX_EXECUTION_NAME",
    "MAX_RUN_ID",
    "RUN_ID_PATTERN",
    "RUN_ID_RULE",
    "base_run_id",
    "check_execution_name",
    "check_run_id",
    "execution_name",
    "new_run_id",
    "retry_execution_name",
    "retry_number",
    "run_id_problem",
]

#: Step Functions' limit on an execution name.
MAX_EXECUTION_NAME = 80
#: The longest run id: ``--retry-99999999`` (16 characters) must still fit in 80.
MAX_RUN_ID = 64
#: The run id rule, as a pattern.
RUN_ID_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_RUN_ID - 1}}}$")
#: The run id rule, in words (every refusal quotes it).
RUN_ID_RULE = (
    f"1-{MAX_RUN_ID} letters, digits, '-' or '_', starting with a letter or digit "
    "(it names the Step Functions execution and the run's folder)"
)
#: ``<run_id>--retry-<n>``: the execution name of the n-th retry of a run.
_RETRY = re.compile(r"^(?P<run>.+)--retry-(?P<n>[0-9]{1,8})$")
#: Characters a generated run id takes from an experiment id as they are.
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
#: Characters Step Functions refuses in an execution name (besides whitespace and
#: control characters).
_NOT_IN_EXECUTION_NAME = set('<>{}[]?*"#%\\^|~`$&,;:/')


def run_id_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a run id, in words; ``None`` when it is valid.

    >>> run_id_problem("run-2026-11-23_exp042") is None
    True
    >>> run_id_problem("v1.2")
    "it contains '.'"
    """
    if not value:
        return "it is empty"
    if len(value) > MAX_RUN_ID:
        return f"it is {len(value)} characters long (at most {MAX_RUN_ID})"
    bad = sorted({c for c in value if not (c.isascii() and (c.isalnum() or c in "_-"))})
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad[:5])}"
    if not value[0].isalnum():
        return "it must start with a letter or digit"
    return None


def check_run_id(value: str) -> str:
    """Return ``value`` if it is a valid run id, else raise naming it and the rule.

    Raises
    ------
    InputError
        ``invalid run id 'v1.2': it contains '.'; use 1-64 letters, ...``.

    >>> check_run_id("r1")
    'r1'
    """
    problem = run_id_problem(value)
    if problem is not None:
        shown = value if len(value) <= 60 else f"{value[:60]}…"
        raise InputError(f"invalid run id {shown!r}: {problem}; use {RUN_ID_RULE}")
    return value


def check_execution_name(name: str) -> str:
    """Return ``name`` if it is a run id or a retry of one (``<run_id>--retry-<n>``).

    The names of a run's executions, hence of its local journals.

    Raises
    ------
    InputError
        Naming ``name`` and the run id rule.
    """
    check_run_id(base_run_id(name))
    return name


def new_run_id(experiment_id: str, now: datetime | None = None) -> str:
    """A new, unique run id from an experiment id: ``<experiment>-<UTC stamp>-<6 hex>``.

    >>> new_run_id("EXP.1", datetime(2026, 11, 23, 7, tzinfo=UTC))[:22]
    'EXP-1-20261123T070000-'
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    base = _UNSAFE.sub("-", experiment_id)[:40] or "run"
    if not base[0].isalnum():
        base = f"r{base}"[:40]
    return check_run_id(f"{base}-{stamp}-{secrets.token_hex(3)}")


def execution_name(run_id: str | None) -> str | None:
    """The Step Functions execution name of a run's first execution.

    A valid run id is its own execution name; a name from elsewhere (an execution
    started with the raw API) loses what AWS refuses: ``:`` and the other forbidden
    characters become ``-``, and it is cut to 80 characters.

    >>> execution_name("2026-11-23T05:00:00")
    '2026-11-23T05-00-00'
    """
    if not run_id:
        return None
    cleaned = "".join(
        "-" if c in _NOT_IN_EXECUTION_NAME or c.isspace() or not c.isprintable() else c
        for c in run_id
    )
    return cleaned[:MAX_EXECUTION_NAME]


def retry_execution_name(run_id: str, attempt: int) -> str:
    """``<run_id>--retry-<attempt>`` (a valid run id never needs cutting).

    >>> retry_execution_name("EXP-1-20261123T070000-abc123", 2)
    'EXP-1-20261123T070000-abc123--retry-2'
    """
    suffix = f"--retry-{attempt}"
    base = execution_name(run_id) or ""
    return base[: MAX_EXECUTION_NAME - len(suffix)] + suffix


def retry_number(name: str) -> int | None:
    """``n`` when ``name`` is ``<run>--retry-<n>``, else ``None``."""
    found = _RETRY.fullmatch(name)
    return int(found.group("n")) if found else None


def base_run_id(name: str) -> str:
    """The run an execution name belongs to: ``r1`` for ``r1--retry-2`` and for ``r1``."""
    found = _RETRY.fullmatch(name)
    return found.group("run") if found else name
