"""Alembic environment of plateseg, run programmatically by :mod:`plateseg.db.engine`.

The caller passes an open connection in ``config.attributes["connection"]`` (inside a
transaction it owns); there is no ``alembic.ini`` and no URL here. ``render_as_batch``
lets later revisions alter tables on SQLite too.
"""

from __future__ import annotations

from alembic import context

from plateseg.db.models import Base
from plateseg.errors import DatabaseError

target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run the migrations on the connection the caller provided."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise DatabaseError(
            "plateseg migrations run through plateseg.db.engine.upgrade(), "
            "which passes an open connection"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise DatabaseError("plateseg does not support offline (--sql) migrations")
run_migrations_online()
