"""Which fields each ASL state type may have, and the AWS fields the local engine refuses.

:mod:`plateseg.engine.definition` checks every state against :data:`STATE_FIELDS`; a
field AWS accepts but the engine does not run (:data:`UNSUPPORTED_FIELDS`) is refused by
name with the reason, an unknown one with the closest known field.
"""

from __future__ import annotations

import difflib
from typing import Any

__all__ = ["STATE_FIELDS", "UNSUPPORTED_FIELDS", "field_problem", "language_problem"]

_COMMON = {"Type", "Comment", "QueryLanguage"}
_FLOW = {"Next", "End"}
_IO = {"InputPath", "OutputPath"}
#: The fields each state type may have (JSONPath), as the local engine runs them.
STATE_FIELDS: dict[str, set[str]] = {
    "Task": _COMMON
    | _FLOW
    | _IO
    | {
        "Resource",
        "Parameters",
        "ResultSelector",
        "ResultPath",
        "Retry",
        "Catch",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
    },
    "Pass": _COMMON | _FLOW | _IO | {"Parameters", "Result", "ResultPath"},
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _FLOW | _IO | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath"},
    "Succeed": _COMMON | _IO,
    "Fail": _COMMON | {"Error", "ErrorPath", "Cause", "CausePath"},
    "Parallel": _COMMON
    | _FLOW
    | _IO
    | {"Branches", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"},
    "Map": _COMMON
    | _FLOW
    | _IO
    | {
        "ItemProcessor",
        "Iterator",
        "ItemsPath",
        "ItemSelector",
        "Parameters",
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
        "MaxConcurrency",
        "MaxConcurrencyPath",
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
        "ToleratedFailureCount",
        "ToleratedFailureCountPath",
        "Label",
        "ResultSelector",
        "ResultPath",
        "Retry",
        "Catch",
    },
}


_NO_HEARTBEATS = (
    "heartbeats (HeartbeatSeconds, HeartbeatSecondsPath) are not supported by the local "
    "engine: its Lambda tasks send none; bound the task with TimeoutSeconds instead"
)

#: Fields AWS accepts that the local engine does not run, and why.
UNSUPPORTED_FIELDS = {
    "Arguments": "JSONata field (the local engine runs JSONPath only)",
    "Output": "JSONata field (the local engine runs JSONPath only)",
    "Condition": "JSONata field (the local engine runs JSONPath only)",
    "Items": "JSONata field (the local engine runs JSONPath only)",
    "Assign": "variables (Assign) are not supported by the local engine",
    "Credentials": "cross-account Credentials are not supported by the local engine",
    "HeartbeatSeconds": _NO_HEARTBEATS,
    "HeartbeatSecondsPath": _NO_HEARTBEATS,
}


def language_problem(language: Any) -> str:
    """Why a ``QueryLanguage`` other than JSONPath is refused."""
    if language == "JSONata":
        return "QueryLanguage JSONata is not supported by the local engine (only JSONPath)"
    return f"unknown QueryLanguage {language!r} (the local engine runs JSONPath)"


def field_problem(key: str, allowed: set[str], kind: str, name: str) -> str:
    """Say whether ``key`` is a known-but-unsupported field or an unknown one."""
    if key in UNSUPPORTED_FIELDS:
        return f"unsupported field in {kind} state {name!r}: {UNSUPPORTED_FIELDS[key]}"
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {key!r} for a {kind} state {name!r}{hint}"
