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
    "plates",
    "wells",
    "plate_qc",
}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = get_engine(db_url)
    assert current_revision(engine) is None

    upgrade(engine)
    assert _tables(engine) == TABLES
    assert current_revision(engine) == head_revision() == "0003"

    downgrade(engine, "base")
    assert _tables(engine) == set()
    assert current_revision(engine) is None

    upgrade(engine)
    assert _tables(engine) == TABLES
    assert current_revision(engine) == "0003"


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    engine = get_engine(db_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == "0003"
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


def test_views_are_created_and_dropped(db_url: str) -> None:
    engine = get_engine(db_url)
    upgrade(engine)
    assert {"per_image", "per_well"} <= set(sa.inspect(engine).get_view_names())
    downgrade(engine, "0001")
    assert not {"per_image", "per_well"} & set(sa.inspect(engine).get_view_names())
    assert _tables(engine) == TABLES - {"plates", "wells", "plate_qc"}


def test_upgrading_a_filled_0001_database_keeps_its_rows(db_url: str) -> None:
    engine = get_engine(db_url)
    upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO experiments VALUES ('E', '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO runs (run_id, experiment_id, execution_id, engine, status, "
                "recipe_json, recipe_hash, map_run_arn, result_manifest_key, objects_prefix, "
                "finished_at, images_ok, images_failed, batches_failed, objects) VALUES "
                "('r', 'E', 'x', 'local', 'SUCCEEDED', '{}', 'h', 'a', 'k', 'p', "
                "'2025-01-01 00:00:00', 1, 0, 0, 5)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO images (run_id, image_id, plate, well, field, status, "
                "object_count) VALUES ('r', 'P1_A01_1', 'P1', 'A01', 1, 'ok', 5)"
            )
        )
        connection.execute(
            sa.text("INSERT INTO image_metrics VALUES ('r', 'P1_A01_1', 'Count_Nuclei', 5.0)")
        )

    upgrade(engine)

    with engine.connect() as connection:
        image = connection.execute(sa.text("SELECT qc_flags, channels_json FROM images")).one()
        assert tuple(image) == ("", None)
        view = connection.execute(
            sa.text(
                'SELECT experiment_id, "Image_Metadata_Well", "Image_Metadata_Control", metric, '
                "value FROM per_image"
            )
        ).one()
        assert tuple(view) == ("E", "A01", None, "Count_Nuclei", 5.0)
        run = connection.execute(sa.text("SELECT objects, batch_size FROM runs")).one()
        assert tuple(run) == (5, None)
