"""The per-app index of receipts holds only settled ones (delivered or dead).

``ix_receipts_app`` (``app_id, created_at``) served only ``voicecdr receipts replay
--app/--from/--to``, yet the rater paid for an entry in it with every receipt it wrote, in
the transaction that prices the CDR: about a fifteenth of the rater's work on SQLite.
``ix_receipts_app_settled`` is the same index over receipts whose ``status`` is not
pending, so a new receipt enters it only when the sender settles it (an UPDATE that, on
PostgreSQL, writes new entries in every index anyway). Replay finds pending receipts
through ``ix_receipts_due`` (``status, next_attempt_at``) and settled ones through this
index (``storage/outbox.py``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SETTLED = "status <> 0"  # ReceiptStatus.PENDING is 0


def upgrade() -> None:
    op.create_index(
        "ix_receipts_app_settled",
        "receipts",
        ["app_id", "created_at"],
        sqlite_where=sa.text(SETTLED),
        postgresql_where=sa.text(SETTLED),
    )
    op.drop_index("ix_receipts_app", table_name="receipts")


def downgrade() -> None:
    op.create_index("ix_receipts_app", "receipts", ["app_id", "created_at"])
    op.drop_index("ix_receipts_app_settled", table_name="receipts")
