"""``cdrs.revision``: how many times a CDR's charge has been written.

The query API keeps rendered rows by *stamp*, what identifies a row's whole content
(``storage/pages.py``). It was the id, time, content hash and the six rated columns the
answer shows; every write of those columns (rating, re-rating) now also adds one to
``revision``, so id, time, content hash and revision say the same in four values instead
of nine: the driver, whose cost is per row and per value, hands back less than half the
values per page.
Existing rows start at 0; a CDR's charge only changes through those writes afterwards.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: neither database rewrites the table (PostgreSQL 11+, and
    # SQLite's ADD COLUMN never does); on a partitioned table every partition gets it.
    op.add_column("cdrs", sa.Column("revision", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    # Not batch mode: on SQLite that copies the table, which the receipts' foreign key
    # forbids; SQLite drops a column in place since 3.35.
    op.drop_column("cdrs", "revision")
