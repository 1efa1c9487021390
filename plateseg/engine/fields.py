"""Which fields each ASL state type may have, and the AWS fields the local engine refuses.

:mod:`plateseg.engine.definition` checks every state against :data:`STATE_FIELDS`
(JSONPath) or :data:`JSONATA_FIELDS` (JSONata); a field AWS accepts but the engine does
not run (:data:`UNSUPPORTED_FIELDS`) is refused by name with the reason, a field of the
other query language is named as such, an unknown one with the closest known field.
"""

from __future__ import annotations

import difflib
from typing import Any

__all__ = [
    "JSONATA_FIELDS",
    "JSONATA_ONLY",
    "JSONPATH_ONLY",
    "STATE_FIELDS",
    "UNSUPPORTED_FIELDS",
    "field_problem",
    "language_problem",
]

_COMMON = {"Type", "Comment", "QueryLanguage"}
_ASSIGN = {"Assign"}
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
        "Assign",
    },
    "Pass": _COMMON | _FLOW | _IO | _ASSIGN | {"Parameters", "Result", "ResultPath"},
    "Choice": _COMMON | _IO | _ASSIGN | {"Choices", "Default"},
    "Wait": _COMMON
    | _FLOW
    | _IO
    | _ASSIGN
    | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath"},
    "Succeed": _COMMON | _IO,
    "Fail": _COMMON | {"Error", "ErrorPath", "Cause", "CausePath"},
    "Parallel": _COMMON
    | _FLOW
    | _IO
    | _ASSIGN
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
        "Assign",
    },
}

#: Fields only JSONPath states have, and fields only JSONata states have.
JSONPATH_ONLY = frozenset(
    {
        "InputPath",
        "OutputPath",
        "Parameters",
        "ResultSelector",
        "ResultPath",
        "Result",
        "ItemsPath",
        "Iterator",
        "SecondsPath",
        "TimestampPath",
        "ErrorPath",
        "CausePath",
        "TimeoutSecondsPath",
        "MaxConcurrencyPath",
        "ToleratedFailurePercentagePath",
        "ToleratedFailureCountPath",
    }
)
JSONATA_ONLY = frozenset({"Arguments", "Output", "Items"})

_JSONATA_IO = {"Output", "Assign"}
#: The fields each state type may have (JSONata), as the local engine runs them.
JSONATA_FIELDS: dict[str, set[str]] = {
    kind: (fields - JSONPATH_ONLY) | _JSONATA_IO for kind, fields in STATE_FIELDS.items()
}
JSONATA_FIELDS["Task"] |= {"Arguments"}
JSONATA_FIELDS["Parallel"] |= {"Arguments"}
JSONATA_FIELDS["Map"] |= {"Items"}
JSONATA_FIELDS["Fail"] -= _JSONATA_IO
JSONATA_FIELDS["Succeed"] -= {"Assign"}


_NO_HEARTBEATS = (
    "heartbeats (HeartbeatSeconds, HeartbeatSecondsPath) are not supported by the local "
    "engine: its Lambda tasks send none; bound the task with TimeoutSeconds instead"
)

#: Fields AWS accepts that the local engine does not run, and why.
UNSUPPORTED_FIELDS = {
    "Credentials": "cross-account Credentials are not supported by the local engine",
    "HeartbeatSeconds": _NO_HEARTBEATS,
    "HeartbeatSecondsPath": _NO_HEARTBEATS,
}


def language_problem(language: Any) -> str:
    """Why a ``QueryLanguage`` value is refused."""
    return f"QueryLanguage must be JSONPath or JSONata, got {language!r}"


def field_problem(key: str, allowed: set[str], kind: str, name: str, language: str) -> str:
    """Say whether ``key`` is a known-but-unsupported field, a field of the other query
    language, or an unknown one."""
    if key in UNSUPPORTED_FIELDS:
        return f"unsupported field in {kind} state {name!r}: {UNSUPPORTED_FIELDS[key]}"
    if language == "JSONata" and key in JSONPATH_ONLY:
        return (
            f"{key} is a JSONPath field: {kind} state {name!r} uses JSONata "
            "(use Arguments, Output and {% %} expressions)"
        )
    if language == "JSONPath" and key in JSONATA_ONLY:
        return (
            f"{key} is a JSONata field: {kind} state {name!r} uses JSONPath "
            '(set "QueryLanguage": "JSONata" on the state or the state machine)'
        )
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {key!r} for a {kind} state {name!r}{hint}"
