"""A handler module the prewarm tests expect idle workers to import before any call."""

from __future__ import annotations

import os
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"event": event, "pid": os.getpid()}
