"""``apps.disabled_at``: when the operator disabled the app (``voicecdr apps disable``).

NULL for an app in service, which every existing app is. A disabled app keeps its data;
its queries are refused as with a wrong secret and its new CDRs are refused at ingest.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apps", sa.Column("disabled_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    # In place, as 0007: batch mode would copy the table, which foreign keys reference.
    op.drop_column("apps", "disabled_at")
