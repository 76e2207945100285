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
    sa.Column("rate_plan_id", sa.Integer, sa.ForeignKey("rate_plans.id"), nullable=True),
    sa.Column("pending_reason", sa.Text, nullable=True),
    sa.Column("rated_at", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("app_id", "call_id", name="uq_cdrs_app_call"),
    sa.Index("ix_cdrs_query", "app_id", "voice_group", "placed_at", "id"),
    sa.Index("ix_cdrs_messageid", "app_id", "messageid"),
    # The rater's queue: pending CDRs it has not yet found unpriceable. Partial, so it
    # stays as small as the backlog however large the table grows.
    sa.Index(
        "ix_cdrs_unrated",
        "id",
        sqlite_where=sa.text("cost_status = 0 AND pending_reason IS NULL"),
        postgresql_where=sa.text("cost_status = 0 AND pending_reason IS NULL"),
    ),
)

# Rows per (app, voice group, 5-minute bucket of placed_at), kept in the transaction that
# stores the rows: exact totals and deep pages without reading the rows (see counts.py).
cdr_counts = sa.Table(
    "cdr_counts",
    metadata,
    sa.Column("app_id", sa.Integer, primary_key=True),
    sa.Column("voice_group", sa.SmallInteger, primary_key=True),
    sa.Column("bucket", sa.BigInteger, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

rate_plans = sa.Table(
    "rate_plans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("app_id", "version", name="uq_rate_plans_app_version"),
)

rates = sa.Table(
    "rates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("plan_id", sa.Integer, sa.ForeignKey("rate_plans.id"), nullable=False),
    sa.Column("service", sa.SmallInteger, nullable=True),  # NULL is the * wildcard
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("unit_price_nanos", sa.BigInteger, nullable=False),
    sa.Column("basic_price_nanos", sa.BigInteger, nullable=False),
    sa.Index("ix_rates_plan", "plan_id"),
)

# The transactional outbox: one row per receipt, written in the transaction that makes
# its CDR final, so no crash can lose one.
receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
    sa.Column("cdr_id", sa.BigInteger, sa.ForeignKey("cdrs.id"), nullable=False),
    sa.Column("webhook_id", sa.String(64), nullable=False, unique=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float(precision=53), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_receipts_due", "status", "next_attempt_at"),
    sa.Index("ix_receipts_app", "app_id", "created_at"),
    sa.Index("ix_receipts_cdr", "cdr_id"),
)

# PostgreSQL only: the shared rate-limit state, UNLOGGED so an update writes no WAL.
# SQLite deployments keep the same table in a sidecar file in memory-backed storage.
rate_limit_state = sa.Table(
    "rate_limit_state",
    sa.MetaData(),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("tat", sa.Float(precision=53), nullable=False),
)
