"""Per-bucket CDR counts, for exact totals and deep pages at first-page cost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BUCKET_SECONDS = 300  # voicecdr.storage.counts.BUCKET_SECONDS when this was written


def upgrade() -> None:
    op.create_table(
        "cdr_counts",
        sa.Column("app_id", sa.Integer, primary_key=True),
        sa.Column("voice_group", sa.SmallInteger, primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    # The rows stored before this revision, counted once.
    op.execute(
        "INSERT INTO cdr_counts (app_id, voice_group, bucket, n) "
        f"SELECT app_id, voice_group, placed_at - placed_at % {BUCKET_SECONDS}, count(*) "
        "FROM cdrs GROUP BY 1, 2, 3"
    )


def downgrade() -> None:
    op.drop_table("cdr_counts")
