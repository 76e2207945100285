"""Rate plans, rating columns on CDRs, and the receipt outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNRATED = "cost_status = 0 AND pending_reason IS NULL"


def upgrade() -> None:
    op.create_table(
        "rate_plans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("app_id", "version", name="uq_rate_plans_app_version"),
    )
    op.create_table(
        "rates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("rate_plans.id"), nullable=False),
        sa.Column("service", sa.SmallInteger, nullable=True),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("unit_price_nanos", sa.BigInteger, nullable=False),
        sa.Column("basic_price_nanos", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_rates_plan", "rates", ["plan_id"])
    with op.batch_alter_table("cdrs") as batch:
        batch.add_column(sa.Column("rate_plan_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("pending_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("rated_at", sa.BigInteger, nullable=True))
        batch.create_foreign_key(
            "fk_cdrs_rate_plan_id_rate_plans", "rate_plans", ["rate_plan_id"], ["id"]
        )
    op.create_index(
        "ix_cdrs_unrated",
        "cdrs",
        ["id"],
        sqlite_where=sa.text(UNRATED),
        postgresql_where=sa.text(UNRATED),
    )
    op.create_table(
        "receipts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("cdr_id", sa.BigInteger, sa.ForeignKey("cdrs.id"), nullable=False),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float(precision=53), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.UniqueConstraint("webhook_id", name="receipts_webhook_id_key"),
    )
    op.create_index("ix_receipts_due", "receipts", ["status", "next_attempt_at"])
    op.create_index("ix_receipts_app", "receipts", ["app_id", "created_at"])
    op.create_index("ix_receipts_cdr", "receipts", ["cdr_id"])


def downgrade() -> None:
    op.drop_table("receipts")
    op.drop_index("ix_cdrs_unrated", "cdrs")
    with op.batch_alter_table("cdrs") as batch:
        batch.drop_constraint("fk_cdrs_rate_plan_id_rate_plans", type_="foreignkey")
        batch.drop_column("rated_at")
        batch.drop_column("pending_reason")
        batch.drop_column("rate_plan_id")
    op.drop_index("ix_rates_plan", "rates")
    op.drop_table("rates")
    op.drop_table("rate_plans")
