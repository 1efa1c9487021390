"""Which Task resources the local engine runs, and the problems of those it does not.

A resource is, in order: bound by the user to a Python callable (any ARN); a Lambda
function (ARN or ``lambda:invoke``); an ``aws-sdk:s3`` action of :data:`S3_ACTIONS`;
``states:startExecution`` with the Request Response, ``.sync`` or ``.sync:2`` pattern.
Anything else is refused by name at validation time, with how to bind it.

Parameter names are checked for the integrations the engine runs itself: Step
Functions checks the parameters of its integrations when a state machine is created
(``SCHEMA_VALIDATION_FAILED``), and the engine refuses a parameter it would otherwise
ignore, rather than running without it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

__all__ = [
    "LAMBDA_ARN",
    "LAMBDA_INVOKE",
    "S3_ACTIONS",
    "SDK_S3",
    "START_EXECUTION",
    "Resource",
    "classify",
    "resource_problems",
]

#: ``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]``
LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:([^:]+)(?::[^:]+)?$")
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
SDK_S3 = "arn:aws:states:::aws-sdk:s3:"
START_EXECUTION = "arn:aws:states:::states:startExecution"

#: S3 action → (required parameters, accepted parameters), in the SDK's PascalCase.
S3_ACTIONS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    "getObject": (frozenset({"Bucket", "Key"}), frozenset({"Bucket", "Key"})),
    "headObject": (frozenset({"Bucket", "Key"}), frozenset({"Bucket", "Key"})),
    "deleteObject": (frozenset({"Bucket", "Key"}), frozenset({"Bucket", "Key"})),
    "putObject": (
        frozenset({"Bucket", "Key"}),
        frozenset({"Bucket", "Key", "Body", "ContentType"}),
    ),
    "copyObject": (
        frozenset({"Bucket", "Key", "CopySource"}),
        frozenset({"Bucket", "Key", "CopySource"}),
    ),
    "listObjectsV2": (
        frozenset({"Bucket"}),
        frozenset({"Bucket", "Prefix", "Delimiter", "MaxKeys", "ContinuationToken", "StartAfter"}),
    ),
}

#: ``startExecution`` resource suffix → integration pattern.
SFN_PATTERNS: Mapping[str, str] = {"": "request", ".sync": "sync", ".sync:2": "sync:2"}
#: The parameters of the optimized integration (the StartExecution request).
SFN_REQUIRED = frozenset({"StateMachineArn"})
SFN_PARAMETERS = frozenset({"StateMachineArn", "Input", "Name"})

_PATTERN = re.compile(r"\.(sync(?::2)?|waitForTaskToken)$")


class Resource:
    """A Task resource the engine runs: ``kind`` and, for integrations, its detail.

    ``kind`` is ``"bound"``, ``"lambda"``, ``"s3"`` (``detail``: the action) or
    ``"sfn"`` (``detail``: ``"request"``, ``"sync"`` or ``"sync:2"``).
    """

    __slots__ = ("detail", "kind")

    def __init__(self, kind: str, detail: str = "") -> None:
        self.kind = kind
        self.detail = detail


def classify(resource: str, bound: Collection[str] = ()) -> Resource | None:
    """What runs ``resource``, or ``None`` when the engine does not run it."""
    if resource in bound:
        return Resource("bound")
    if resource == LAMBDA_INVOKE or LAMBDA_ARN.match(resource):
        return Resource("lambda")
    if resource.startswith(SDK_S3):
        action = resource[len(SDK_S3) :]
        return Resource("s3", action) if action in S3_ACTIONS else None
    if resource.startswith(START_EXECUTION):
        pattern = SFN_PATTERNS.get(resource[len(START_EXECUTION) :])
        return Resource("sfn", pattern) if pattern is not None else None
    return None


def _unsupported(resource: Any) -> str:
    if isinstance(resource, str):
        match = _PATTERN.search(resource)
        if resource.startswith(SDK_S3) and match and match.group(1).startswith("sync"):
            return (
                f"resource {resource!r}: AWS SDK integrations do not support the "
                "Run a Job (.sync) pattern"
            )
        if match and match.group(1) == "waitForTaskToken":
            return (
                f"unsupported resource {resource!r}: the local engine does not run the "
                "Wait for a Callback (.waitForTaskToken) pattern"
            )
        if resource.startswith(SDK_S3):
            actions = ", ".join(sorted(S3_ACTIONS))
            return (
                f"unsupported resource {resource!r}: the local engine runs the aws-sdk:s3 "
                f"actions {actions}; bind any other to a Python callable "
                f"(plateseg asl run --bind {resource}=module:callable)"
            )
    return (
        f"unsupported resource {resource!r} (the local engine runs Lambda function ARNs, "
        f"{LAMBDA_INVOKE}, {SDK_S3}<action>, {START_EXECUTION}[.sync|.sync:2], and any "
        f"resource bound to a Python callable: --bind {resource}=module:callable)"
    )


def _names(params: Any) -> set[str] | None:
    """The parameter names of a Parameters/Arguments object (``None``: an expression)."""
    if not isinstance(params, dict):
        return None
    return {key[:-2] if key.endswith(".$") else key for key in params}


def resource_problems(
    resource: Any, params: Any, key: str, at: str, bound: Collection[str] = ()
) -> list[str]:
    """Problems of a Task's ``Resource`` and its ``Parameters``/``Arguments`` (``key``)."""
    found = classify(resource, bound) if isinstance(resource, str) else None
    if found is None:
        return [f"{at}/Resource: {_unsupported(resource)}"]
    if found.kind == "s3":
        required, accepted = S3_ACTIONS[found.detail]
        what = f"aws-sdk:s3:{found.detail}"
    elif found.kind == "sfn":
        required, accepted = SFN_REQUIRED, SFN_PARAMETERS
        what = "states:startExecution"
    elif found.kind == "lambda" and resource == LAMBDA_INVOKE:
        required, accepted, what = frozenset({"FunctionName"}), frozenset(), LAMBDA_INVOKE
    else:
        return []
    names = _names(params)
    if names is None:
        if params is None:
            return [f"{at}/{key}: {what} needs {key}.{', '.join(sorted(required))}"]
        return []  # one JSONata expression: checked when it runs
    problems = [f"{at}/{key}: {what} needs {key}.{name}" for name in sorted(required - names)]
    if accepted:
        problems += [
            f"{at}/{key}/{name}: unsupported parameter {name!r} of {what} "
            f"(the local engine runs {', '.join(sorted(accepted))})"
            for name in sorted(names - accepted)
        ]
    return problems
