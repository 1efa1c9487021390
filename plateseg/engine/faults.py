"""Fault injection for reliability tests: a documented, test-only seam.

Nothing here runs unless the environment variable ``PLATESEG_FAULTS`` holds a fault
plan (JSON). The plan is read where the fault would happen — the engine's Lambda
invoker, a worker process before it runs a handler, :class:`plateseg.store.S3Store`
before it sends a request — so a fault travels the same code path a real one would.
Worker processes inherit the variable, and each rule's budget (``times``) is shared
by every process through a counter file in the plan's ``state`` folder, so "fail the
first two calls" means the first two calls of the whole run.

Plan::

    {"state": "/tmp/faults",                     # folder for the shared counters
     "rules": [
       {"at": "invoke", "function": "plateseg-segment",
        "error": "Lambda.TooManyRequestsException", "times": 2},
       {"at": "worker", "function": "plateseg-segment", "action": "segfault", "times": 1},
       {"at": "s3", "operation": "GetObject", "code": "SlowDown", "status": 503, "times": 3}
     ]}

``at`` is where the rule fires:

- ``invoke`` (the Lambda service, in the engine): ``error`` is raised as the Task's
  error before the function runs (``Lambda.TooManyRequestsException``,
  ``Lambda.ServiceException``, ...);
- ``worker`` (the Lambda runtime, in the worker process, before the handler):
  ``action`` is ``segfault`` (SIGSEGV), ``oomkill`` (SIGKILL, what the kernel's
  out-of-memory killer sends), ``memory`` (``RLIMIT_AS`` lowered to ``limit_mb``, then
  a large allocation: a :class:`MemoryError`) or ``hang`` (sleep ``seconds``, to outlive
  the Task's timeout);
- ``s3`` (the S3 endpoint, in botocore): the request is answered with HTTP ``status``
  and S3 error ``code`` instead of being sent.

Optional ``match``: the rule only fires when this substring occurs in the request
(the JSON event for ``invoke``/``worker``, the key for ``s3``).
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plateseg.errors import InputError

__all__ = ["ENV", "FaultPlan", "FaultRule", "active_plan", "fire"]

#: The environment variable holding the plan.
ENV = "PLATESEG_FAULTS"

_WHERE = frozenset({"invoke", "worker", "s3"})
_ACTIONS = frozenset({"segfault", "oomkill", "memory", "hang"})


@dataclass(frozen=True)
class FaultRule:
    """One rule of a plan (see the module docstring for the fields)."""

    index: int
    at: str
    target: str
    times: int
    match: str | None
    spec: dict[str, Any]


@dataclass(frozen=True)
class FaultPlan:
    """Rules and the folder of their shared counters."""

    state: Path
    rules: tuple[FaultRule, ...]

    def claim(self, rule: FaultRule) -> bool:
        """Take one firing of ``rule`` if its budget is not spent (atomic across processes)."""
        self.state.mkdir(parents=True, exist_ok=True)
        path = self.state / f"rule-{rule.index}.count"
        with path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            used = int(handle.read().strip() or 0)
            if used >= rule.times:
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(str(used + 1))
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def fired(self, index: int) -> int:
        """How many times rule ``index`` has fired so far (all processes)."""
        path = self.state / f"rule-{index}.count"
        return int(path.read_text(encoding="utf-8").strip() or 0) if path.exists() else 0


def parse_plan(text: str) -> FaultPlan:
    """Parse a plan; a malformed one is an :class:`InputError` naming the rule and field."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{ENV}: not JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("state"), str):
        raise InputError(f'{ENV}: expected {{"state": FOLDER, "rules": [...]}}')
    rules: list[FaultRule] = []
    for index, spec in enumerate(raw.get("rules") or []):
        where = f"{ENV} rule {index}"
        if not isinstance(spec, dict) or spec.get("at") not in _WHERE:
            raise InputError(f"{where}: 'at' must be one of {sorted(_WHERE)}")
        at = spec["at"]
        target = spec.get("operation" if at == "s3" else "function")
        if not isinstance(target, str) or not target:
            field = "operation" if at == "s3" else "function"
            raise InputError(f"{where}: '{field}' must name the {field} to fault")
        times = spec.get("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            raise InputError(f"{where}: 'times' must be a non-negative integer, got {times!r}")
        if at == "invoke" and not isinstance(spec.get("error"), str):
            raise InputError(f"{where}: an 'invoke' rule needs the 'error' to raise")
        if at == "worker" and spec.get("action") not in _ACTIONS:
            raise InputError(f"{where}: 'action' must be one of {sorted(_ACTIONS)}")
        if at == "s3" and not isinstance(spec.get("code"), str):
            raise InputError(f"{where}: an 's3' rule needs the S3 error 'code'")
        match = spec.get("match")
        rules.append(FaultRule(index, at, target, times, match, dict(spec)))
    return FaultPlan(state=Path(raw["state"]), rules=tuple(rules))


_cache: tuple[str, FaultPlan] | None = None


def active_plan() -> FaultPlan | None:
    """The plan in ``PLATESEG_FAULTS``, or ``None`` (the normal case: no faults)."""
    global _cache
    text = os.environ.get(ENV)
    if not text:
        return None
    if _cache is None or _cache[0] != text:
        _cache = (text, parse_plan(text))
    return _cache[1]


def fire(at: str, target: str, subject: str) -> FaultRule | None:
    """The rule that fires for this call, its firing claimed; ``None`` if none does.

    Parameters
    ----------
    at : {"invoke", "worker", "s3"}
        Where the call is.
    target : str
        Function name (``invoke``, ``worker``) or S3 operation name (``s3``).
    subject : str
        Text a rule's ``match`` is looked for in (the event JSON, the S3 key).
    """
    plan = active_plan()
    if plan is None:
        return None
    for rule in plan.rules:
        if rule.at != at or rule.target != target:
            continue
        if rule.match is not None and rule.match not in subject:
            continue
        if plan.claim(rule):
            return rule
    return None


def run_worker_fault(rule: FaultRule) -> None:
    """Do what a ``worker`` rule says, inside the worker process."""
    import signal
    import time

    action = rule.spec["action"]
    if action == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif action == "oomkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "hang":
        time.sleep(float(rule.spec.get("seconds", 60)))
    elif action == "memory":
        import resource

        limit = int(rule.spec.get("limit_mb", 1024)) * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        hog = bytearray(limit)  # more than the limit leaves: MemoryError
        del hog
    time.sleep(0.5)  # a signal is delivered before this returns
