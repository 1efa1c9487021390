"""What every local-engine worker process runs first (the engine's ``worker_initializer``).

Apart from :mod:`plateseg.runs.embedded` so that a starting worker imports the settings
only, not the runner and the state-machine interpreter it never uses (with the lazy
:mod:`plateseg.engine` package, ~0.4 s less CPU per worker).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from plateseg.settings import use_settings

__all__ = ["init_worker"]


def init_worker(settings: dict[str, Any]) -> None:
    """Initializer of the engine's worker processes: same settings, quiet handler logs."""
    use_settings(settings)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "plateseg")
    logging.getLogger().setLevel(logging.WARNING)
