"""Schema v1: experiments, runs, run failures, images and long-format metrics.

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(128)
KEY = sa.String(1024)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", name="pk_experiments"),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(80), nullable=False),
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("execution_id", KEY, nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("recipe_json", sa.Text(), nullable=False),
        sa.Column("recipe_hash", sa.String(64), nullable=False),
        sa.Column("map_run_arn", KEY, nullable=False),
        sa.Column("result_manifest_key", KEY, nullable=False),
        sa.Column("objects_prefix", KEY, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=False),
        sa.Column("images_ok", sa.Integer(), nullable=False),
        sa.Column("images_failed", sa.Integer(), nullable=False),
        sa.Column("batches_failed", sa.Integer(), nullable=False),
        sa.Column("objects", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_runs_experiment_id_experiments",
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_experiment_id_finished_at", "runs", ["experiment_id", "finished_at"])
    op.create_table(
        "run_failures",
        sa.Column("run_id", sa.String(80), nullable=False),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("batch", ID, nullable=True),
        sa.Column("error", sa.String(256), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_run_failures_run_id_runs"),
        sa.PrimaryKeyConstraint("run_id", "item_id", name="pk_run_failures"),
    )
    op.create_table(
        "images",
        sa.Column("run_id", sa.String(80), nullable=False),
        sa.Column("image_id", ID, nullable=False),
        sa.Column("plate", sa.String(64), nullable=False),
        sa.Column("well", sa.String(16), nullable=False),
        sa.Column("field", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error", sa.String(256), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("object_count", sa.Integer(), nullable=False),
        sa.Column("mask_key", KEY, nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_images_run_id_runs"),
        sa.PrimaryKeyConstraint("run_id", "image_id", name="pk_images"),
    )
    op.create_table(
        "image_metrics",
        sa.Column("run_id", sa.String(80), nullable=False),
        sa.Column("image_id", ID, nullable=False),
        sa.Column("metric", ID, nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id", "image_id"],
            ["images.run_id", "images.image_id"],
            name="fk_image_metrics_image",
        ),
        sa.PrimaryKeyConstraint("run_id", "image_id", "metric", name="pk_image_metrics"),
    )
    op.create_table(
        "well_metrics",
        sa.Column("run_id", sa.String(80), nullable=False),
        sa.Column("plate", sa.String(64), nullable=False),
        sa.Column("well", sa.String(16), nullable=False),
        sa.Column("metric", ID, nullable=False),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("median", sa.Float(), nullable=True),
        sa.Column("std", sa.Float(), nullable=True),
        sa.Column("n_fields", sa.Integer(), nullable=False),
        sa.Column("n_objects", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_well_metrics_run_id_runs"),
        sa.PrimaryKeyConstraint("run_id", "plate", "well", "metric", name="pk_well_metrics"),
    )
    op.create_table(
        "experiment_metrics",
        sa.Column("run_id", sa.String(80), nullable=False),
        sa.Column("metric", ID, nullable=False),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("median", sa.Float(), nullable=True),
        sa.Column("std", sa.Float(), nullable=True),
        sa.Column("n_wells", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_experiment_metrics_run_id_runs"
        ),
        sa.PrimaryKeyConstraint("run_id", "metric", name="pk_experiment_metrics"),
    )


def downgrade() -> None:
    op.drop_table("experiment_metrics")
    op.drop_table("well_metrics")
    op.drop_table("image_metrics")
    op.drop_table("images")
    op.drop_table("run_failures")
    op.drop_index("ix_runs_experiment_id_finished_at", table_name="runs")
    op.drop_table("runs")
    op.drop_table("experiments")
