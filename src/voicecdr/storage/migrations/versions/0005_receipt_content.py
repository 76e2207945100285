"""Receipts store what their body is made of, not the body.

New receipts keep their CDR's time, the charge they report and their app's timezone and
language when they were made; the sender renders the body from those and the CDR's call
data (which never changes after ingest) at each attempt, the same bytes every time.
``payload`` becomes nullable: receipts recorded before this revision keep theirs and are
sent as stored. Why: the body was most of a receipt row's bytes and most of the rater's
own work; see docs/architecture.md, "The receipt outbox".

On SQLite making ``payload`` nullable copies the receipts table once; on PostgreSQL every
step is a catalog change. The downgrade renders the bodies of the new receipts and stores
them, so a downgraded database sends exactly what this one would have.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    ("cdr_placed_at", sa.BigInteger),
    ("cycle", sa.Integer),
    ("size", sa.Integer),
    ("unit_price_nanos", sa.BigInteger),
    ("basic_price_nanos", sa.BigInteger),
    ("timezone", sa.String(64)),
    ("language", sa.String(8)),
)
CHUNK = 10_000


def upgrade() -> None:
    with op.batch_alter_table("receipts") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.alter_column("payload", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    _store_bodies()
    with op.batch_alter_table("receipts") as batch:
        batch.alter_column("payload", existing_type=sa.Text(), nullable=False)
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)


def _store_bodies() -> None:
    """Render and store the body of every receipt that has none, a chunk at a time."""
    from voicecdr.models import Language, ReceiptContent
    from voicecdr.receipts import render

    conn = op.get_bind()
    select = sa.text(
        "SELECT r.id, c.placed_at, c.service, c.phone, c.country_code, c.messageid, "
        "c.answered_at, c.ended_at, c.billsec, c.connected, c.hangup_cause, "
        "c.hangup_disposition, c.ivr_result, c.record_url, r.cycle, r.size, "
        "r.unit_price_nanos, r.basic_price_nanos, r.timezone, r.language "
        "FROM receipts r JOIN cdrs c ON c.id = r.cdr_id AND c.placed_at = r.cdr_placed_at "
        "WHERE r.payload IS NULL AND r.id > :after ORDER BY r.id LIMIT :n"
    )
    update = sa.text("UPDATE receipts SET payload = :payload WHERE id = :id")
    after = 0
    while rows := conn.execute(select, {"after": after, "n": CHUNK}).all():
        bodies = []
        for row in rows:
            content = ReceiptContent(
                tuple(row[1:14]),
                row[14],
                row[15],
                row[16],
                row[17],
                row[18],
                Language(row[19]),
            )
            bodies.append({"id": row[0], "payload": render(content)})
        conn.execute(update, bodies)
        after = rows[-1][0]
