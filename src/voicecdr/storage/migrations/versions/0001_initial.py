"""Apps, CDRs and the shared rate-limit state.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("appkey", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("signing_secret", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("callback_url", sa.Text, nullable=True),
        sa.Column("rate_limit", sa.Float, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("appkey", name="apps_appkey_key"),
    )
    op.create_table(
        "cdrs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("service", sa.SmallInteger, nullable=False),
        sa.Column("voice_group", sa.SmallInteger, nullable=False),
        sa.Column("messageid", sa.String(128), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("country_code", sa.String(8), nullable=False),
        sa.Column("show_phone", sa.String(64), nullable=False),
        sa.Column("placed_at", sa.BigInteger, nullable=False),
        sa.Column("answered_at", sa.BigInteger, nullable=True),
        sa.Column("ended_at", sa.BigInteger, nullable=True),
        sa.Column("billsec", sa.Integer, nullable=False),
        sa.Column("connected", sa.Boolean, nullable=False),
        sa.Column("hangup_cause", sa.String(64), nullable=False),
        sa.Column("hangup_disposition", sa.String(64), nullable=False),
        sa.Column("ivr_result", sa.String(64), nullable=False),
        sa.Column("record_url", sa.Text, nullable=True),
        sa.Column("cost_status", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("cycle", sa.Integer, nullable=False, server_default="0"),
        sa.Column("size", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unit_price_nanos", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("basic_price_nanos", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cost_nanos", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("ingested_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("app_id", "call_id", name="uq_cdrs_app_call"),
    )
    op.create_index("ix_cdrs_query", "cdrs", ["app_id", "voice_group", "placed_at", "id"])
    op.create_index("ix_cdrs_messageid", "cdrs", ["app_id", "messageid"])
    if op.get_bind().dialect.name == "postgresql":
        # UNLOGGED: rate-limit updates write no WAL; losing the state in a crash only
        # forgives a second of limits.
        op.execute(
            "CREATE UNLOGGED TABLE rate_limit_state ("
            " key varchar(128) PRIMARY KEY, tat double precision NOT NULL)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE rate_limit_state")
    op.drop_index("ix_cdrs_messageid", "cdrs")
    op.drop_index("ix_cdrs_query", "cdrs")
    op.drop_table("cdrs")
    op.drop_table("apps")
