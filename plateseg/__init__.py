"""plateseg: segment high-content microscopy experiments at scale.

A Step Functions Distributed Map pipeline (Lookup → batched Segment → Aggregate) that
runs on AWS or, with the same definition, on one machine. The public surface is small:

- :func:`plateseg.runs.embedded.run_local` — run an experiment on this machine;
- :class:`plateseg.contracts.Recipe`, :class:`plateseg.contracts.ExecutionInput` — what a
  run is asked to do;
- :func:`plateseg.store.open_store` — the object store (S3 or a folder);
- :class:`plateseg.errors.PlatesegError` — the root of every error.
"""

from __future__ import annotations

from plateseg.contracts import ExecutionInput, Recipe
from plateseg.errors import PlatesegError

__all__ = ["ExecutionInput", "PlatesegError", "Recipe", "__version__"]

__version__ = "0.1.0"
