"""The one state machine definition as the local runner loads it.

``statemachines/segmentation.asl.json`` is the single source of truth for AWS and the
local engine. Its Map settings and ``${Name}`` placeholders are filled by
:func:`plateseg.map_settings.apply_tunables` — on AWS from ``cdk.json`` (placeholders by
CloudFormation), here from :class:`~plateseg.map_settings.MapSettings` and
:func:`local_substitutions`; a test keeps both placeholder sets equal to the file's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plateseg.map_settings import (
    DEFINITION_PATH,
    FUNCTIONS,
    MapSettings,
    apply_tunables,
    read_definition,
)
from plateseg.settings import Settings, get_settings

__all__ = [
    "DEFINITION_PATH",
    "LOCAL_ACCOUNT",
    "LOCAL_FUNCTIONS",
    "LOCAL_REGION",
    "load_definition",
    "local_substitutions",
]

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "000000000000"

#: Lambda function name (as in the local ARNs) → handler that runs it, "module:callable";
#: the same handlers as the container image's commands (:data:`~plateseg.map_settings.FUNCTIONS`).
LOCAL_FUNCTIONS: dict[str, str] = {
    f"plateseg-{name.lower()}": ":".join(command.rsplit(".", 1))
    for name, command in FUNCTIONS.items()
}


def local_substitutions(settings: Settings | None = None) -> dict[str, str]:
    """Values the local runner substitutes: local function ARNs and the local bucket."""
    settings = settings or get_settings()
    prefix = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:plateseg-"
    values = {f"{name}FunctionArn": prefix + name.lower() for name in FUNCTIONS}
    return {**values, "BucketName": settings.local_bucket}


def load_definition(
    path: Path = DEFINITION_PATH,
    values: dict[str, str] | None = None,
    settings: MapSettings | None = None,
) -> dict[str, Any]:
    """Read a definition and render it: Map settings written in, placeholders filled.

    Parameters
    ----------
    path : Path
        ASL JSON file; the segmentation definition by default.
    values : dict, optional
        Placeholder values; :func:`local_substitutions` by default.
    settings : MapSettings, optional
        The Map settings; the defaults if omitted.
    """
    return apply_tunables(
        read_definition(path),
        settings or MapSettings(),
        local_substitutions() if values is None else values,
    )
