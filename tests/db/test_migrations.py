"""Alembic revisions against both backends: up, down, up again, and schema == models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from plateseg.db import current_revision, downgrade, get_engine, head_revision, upgrade
from plateseg.db.models import Base

TABLES = {
    "experiments",
    "runs",
    "run_failures",
    "images",
    "image_metrics",
    "well_metrics",
    "experiment_metrics",
}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = get_engine(db_url)
    assert current_revision(engine) is None

    upgrade(engine)
    assert _tables(engine) == TABLES
    assert current_revision(engine) == head_revision() == "0001"

    downgrade(engine, "base")
    assert _tables(engine) == set()
    assert current_revision(engine) is None

    upgrade(engine)
    assert _tables(engine) == TABLES
    assert current_revision(engine) == "0001"


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    engine = get_engine(db_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == "0001"
    assert _tables(engine) == TABLES


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = get_engine(db_url)
    upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_runs_index_on_experiment_and_finish_time(db_url: str) -> None:
    engine = get_engine(db_url)
    upgrade(engine)
    indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("runs")}
    assert indexes["ix_runs_experiment_id_finished_at"] == ["experiment_id", "finished_at"]
