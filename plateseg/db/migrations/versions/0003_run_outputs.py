"""Schema v3: what a run's results are made of, recorded with the run.

``runs.object_parts_json``: the JSON list of the per-object Parquet parts the run's
successful batches wrote (exports read exactly these, never a listing of the prefix,
which also holds parts of superseded attempts). ``runs.layout_csv``: the plate layout
the run was aggregated with, so editing ``layout.csv`` later does not rewrite an old
run's annotations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: Added with plain ALTER TABLE (both SQLite and PostgreSQL do it in place): a batch
#: "move and copy" on SQLite would break the per_image / per_well views over ``runs``.
COLUMNS = ("object_parts_json", "layout_csv")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("runs", sa.Column(name, sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE runs DROP COLUMN layout_csv")
    op.execute("ALTER TABLE runs DROP COLUMN object_parts_json")
