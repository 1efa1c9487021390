"""The results database: SQLAlchemy models, Alembic migrations, engines and the run writer.

>>> from plateseg.db import get_engine, upgrade  # doctest: +SKIP
>>> engine = get_engine("sqlite:////tmp/plateseg.db"); upgrade(engine)  # doctest: +SKIP
"""

from __future__ import annotations

from plateseg.db.engine import (
    current_revision,
    describe_url,
    dispose_engines,
    downgrade,
    get_engine,
    head_revision,
    open_database,
    translate_errors,
    upgrade,
)
from plateseg.db.writer import RunRows, write_run

__all__ = [
    "RunRows",
    "current_revision",
    "describe_url",
    "dispose_engines",
    "downgrade",
    "get_engine",
    "head_revision",
    "open_database",
    "translate_errors",
    "upgrade",
    "write_run",
]
