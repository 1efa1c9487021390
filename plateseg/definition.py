"""The one state machine definition, and the substitutions the local runner supplies.

``statemachines/segmentation.asl.json`` is the single source of truth for AWS and the
local engine. Its ``${Name}`` placeholders are filled by CDK on AWS and by
:func:`local_substitutions` here; a test keeps both sets equal to the file's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from plateseg.errors import DefinitionError
from plateseg.settings import Settings, get_settings

__all__ = [
    "DEFINITION_PATH",
    "LOCAL_ACCOUNT",
    "LOCAL_FUNCTIONS",
    "LOCAL_REGION",
    "load_definition",
    "local_substitutions",
    "placeholders",
    "substitute",
]

DEFINITION_PATH = Path(__file__).resolve().parents[1] / "statemachines" / "segmentation.asl.json"

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "000000000000"

#: Lambda function name (as in the local ARNs) → handler that runs it, "module:callable".
LOCAL_FUNCTIONS: dict[str, str] = {
    "plateseg-lookup": "lambdas.lookup:handler",
    "plateseg-segment": "lambdas.segment:handler",
    "plateseg-aggregate": "lambdas.aggregate:handler",
}

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders(text: str) -> set[str]:
    """Names of every ``${Name}`` placeholder in a definition text."""
    return set(_PLACEHOLDER.findall(text))


def local_substitutions(settings: Settings | None = None) -> dict[str, str]:
    """Values the local runner substitutes: local function ARNs and the local bucket."""
    settings = settings or get_settings()

    def arn(name: str) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{name}"

    return {
        "LookupFunctionArn": arn("plateseg-lookup"),
        "SegmentFunctionArn": arn("plateseg-segment"),
        "AggregateFunctionArn": arn("plateseg-aggregate"),
        "BucketName": settings.local_bucket,
    }


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace every placeholder; a placeholder without a value is a :class:`DefinitionError`."""
    missing = placeholders(text) - set(values)
    if missing:
        raise DefinitionError([f"no value for placeholder ${{{name}}}" for name in sorted(missing)])
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def load_definition(
    path: Path = DEFINITION_PATH, values: dict[str, str] | None = None
) -> dict[str, Any]:
    """Read a definition, substitute placeholders and parse it.

    Parameters
    ----------
    path : Path
        ASL JSON file; the segmentation definition by default.
    values : dict, optional
        Placeholder values; :func:`local_substitutions` by default.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read: {exc.strerror}") from exc
    text = substitute(text, local_substitutions() if values is None else values)
    try:
        parsed: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    return parsed
