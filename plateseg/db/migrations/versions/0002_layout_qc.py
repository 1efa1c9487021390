"""Schema v2: plates, wells with layout annotations, run parameters, image channels and
QC flags, plate QC (Z'), and the CellProfiler-style ``per_image`` / ``per_well`` views.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(128)

RUN_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("model_hash", sa.String(64)),
    ("parameters_json", sa.Text()),
    ("max_concurrency", sa.Integer()),
    ("batch_size", sa.Integer()),
    ("items_total", sa.Integer()),
    ("batches", sa.Integer()),
    ("cost_estimate_usd", sa.Float()),
)

#: Long CellProfiler-style views over every run; filter by experiment_id / run_id.
PER_IMAGE = """
CREATE VIEW per_image AS
SELECT r.experiment_id AS experiment_id,
       i.run_id AS run_id,
       i.image_id AS image_id,
       i.plate AS "Image_Metadata_Plate",
       i.well AS "Image_Metadata_Well",
       i.field AS "Image_Metadata_Site",
       w.condition AS "Image_Metadata_Condition",
       w.compound AS "Image_Metadata_Compound",
       w.concentration AS "Image_Metadata_Concentration",
       w.control AS "Image_Metadata_Control",
       i.status AS status,
       i.qc_flags AS qc_flags,
       i.object_count AS object_count,
       m.metric AS metric,
       m.value AS value
FROM images i
JOIN runs r ON r.run_id = i.run_id
LEFT JOIN wells w
  ON w.experiment_id = r.experiment_id AND w.plate = i.plate AND w.well = i.well
LEFT JOIN image_metrics m ON m.run_id = i.run_id AND m.image_id = i.image_id
"""

PER_WELL = """
CREATE VIEW per_well AS
SELECT r.experiment_id AS experiment_id,
       wm.run_id AS run_id,
       wm.plate AS "Image_Metadata_Plate",
       wm.well AS "Image_Metadata_Well",
       w.condition AS "Image_Metadata_Condition",
       w.compound AS "Image_Metadata_Compound",
       w.concentration AS "Image_Metadata_Concentration",
       w.control AS "Image_Metadata_Control",
       wm.metric AS metric,
       wm.mean AS mean,
       wm.median AS median,
       wm.std AS std,
       wm.n_fields AS n_fields,
       wm.n_objects AS n_objects
FROM well_metrics wm
JOIN runs r ON r.run_id = wm.run_id
LEFT JOIN wells w
  ON w.experiment_id = r.experiment_id AND w.plate = wm.plate AND w.well = wm.well
"""


def upgrade() -> None:
    op.create_table(
        "plates",
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("plate", sa.String(64), nullable=False),
        sa.Column("n_wells", sa.Integer(), nullable=False),
        sa.Column("plate_format", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_plates_experiment_id_experiments",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "plate", name="pk_plates"),
    )
    op.create_table(
        "wells",
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("plate", sa.String(64), nullable=False),
        sa.Column("well", sa.String(16), nullable=False),
        sa.Column("row", sa.String(4), nullable=False),
        sa.Column("column", sa.Integer(), nullable=False),
        sa.Column("condition", sa.String(256), server_default="", nullable=False),
        sa.Column("compound", sa.String(256), server_default="", nullable=False),
        sa.Column("concentration", sa.Float(), nullable=True),
        sa.Column("control", sa.String(8), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id", "plate"],
            ["plates.experiment_id", "plates.plate"],
            name="fk_wells_plate",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "plate", "well", name="pk_wells"),
    )
    op.create_table(
        "plate_qc",
        sa.Column("run_id", sa.String(80), nullable=False),
        sa.Column("plate", sa.String(64), nullable=False),
        sa.Column("metric", ID, nullable=False),
        sa.Column("n_pos", sa.Integer(), nullable=False),
        sa.Column("n_neg", sa.Integer(), nullable=False),
        sa.Column("mean_pos", sa.Float(), nullable=True),
        sa.Column("mean_neg", sa.Float(), nullable=True),
        sa.Column("std_pos", sa.Float(), nullable=True),
        sa.Column("std_neg", sa.Float(), nullable=True),
        sa.Column("z_prime", sa.Float(), nullable=True),
        sa.Column("signal_to_background", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_plate_qc_run_id_runs"),
        sa.PrimaryKeyConstraint("run_id", "plate", "metric", name="pk_plate_qc"),
    )
    with op.batch_alter_table("runs") as batch:
        for name, type_ in RUN_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("channels_json", sa.Text(), nullable=True))
        batch.add_column(sa.Column("metadata_json", sa.Text(), nullable=True))
        batch.add_column(sa.Column("qc_flags", sa.String(256), server_default="", nullable=False))
    op.execute(PER_IMAGE)
    op.execute(PER_WELL)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS per_well")
    op.execute("DROP VIEW IF EXISTS per_image")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("qc_flags")
        batch.drop_column("metadata_json")
        batch.drop_column("channels_json")
    with op.batch_alter_table("runs") as batch:
        for name, _type in reversed(RUN_COLUMNS):
            batch.drop_column(name)
    op.drop_table("plate_qc")
    op.drop_table("wells")
    op.drop_table("plates")
