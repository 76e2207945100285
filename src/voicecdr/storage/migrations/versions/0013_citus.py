"""Citus: the schema distributed by tenant when the database has the citus extension
(``storage/citus.py``): reference tables for apps and rate plans, the per-app tables
distributed by ``app_id`` and colocated with ``cdrs``. Nothing changes without Citus.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from voicecdr.storage import citus

    citus.distribute(op.get_bind())


def downgrade() -> None:
    from voicecdr.storage import citus

    citus.undistribute(op.get_bind())
