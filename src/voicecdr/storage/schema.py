"""Table definitions (SQLAlchemy Core). Migrations create them; queries are built from them.

Times are Unix seconds (UTC) in BIGINT columns: comparisons and ordering are integer work on
both databases, and the app's timezone is applied only when rendering. Money is BIGINT
nanos (1e-9 currency units), so sums stay exact everywhere.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# SQLite only aliases the rowid for a column declared exactly INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("appkey", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(200), nullable=False),
    sa.Column("signing_secret", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("callback_url", sa.Text, nullable=True),
    sa.Column("rate_limit", sa.Float, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

cdrs = sa.Table(
    "cdrs",
    metadata,
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
    sa.Index("ix_cdrs_query", "app_id", "voice_group", "placed_at", "id"),
    sa.Index("ix_cdrs_messageid", "app_id", "messageid"),
)

# PostgreSQL only: the shared rate-limit state, UNLOGGED so an update writes no WAL.
# SQLite deployments keep the same table in a sidecar file in memory-backed storage.
rate_limit_state = sa.Table(
    "rate_limit_state",
    sa.MetaData(),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("tat", sa.Float(precision=53), nullable=False),
)
