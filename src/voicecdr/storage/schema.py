"""Table definitions (SQLAlchemy Core). Migrations create them; queries are built from them.

Times are Unix seconds (UTC) in BIGINT columns: comparisons and ordering are integer work on
both databases, and the app's timezone is applied only when rendering. Money is BIGINT
nanos (1e-9 currency units), so sums stay exact everywhere.

The tables are declared once per database, by :func:`_declare`: ``metadata`` is the schema
SQLite has (and the one queries are built from: the columns are the same everywhere), and
``metadata_for("postgresql")`` is PostgreSQL's, which differs where partitioning forces it
to (see docs/architecture.md, "Partitions"):

- ``cdrs`` is range-partitioned by ``placed_at``, one partition per UTC day. PostgreSQL
  enforces a unique key on a partitioned table only if it contains the partition key, so
  the ``(app_id, call_id)`` idempotency key moves to the small table ``cdr_keys``, written
  in the same transaction as the row, and ``cdrs`` keeps ``(app_id, call_id, placed_at)``.
  Its primary key is ``(id, placed_at, app_id)``: the partition key and the tenant
  (Citus's distribution column) must both be in it; ``id`` leads so lookups by id use it.
- ``receipts.cdr_id`` has no foreign key: a foreign key must reference a unique key, and
  ``id`` alone is not one on a partitioned table (nor on Citus without ``app_id``). The
  receipts' own keys include ``app_id`` too (``(id, app_id)``, ``(webhook_id, app_id)``;
  both ids are unique anyway), so the table can be distributed by tenant on Citus.
- the shared rate-limit state lives in the ``UNLOGGED`` table ``rate_limit_state``.

The day partitions themselves (``cdrs_pYYYYMMDD``) are not declared: they come and go with
time (``storage/partitions.py``), and :func:`declared_name` leaves them out of comparisons.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import sqlalchemy as sa

from ..analytics import PENDING_SUM_NAMES, SUM_NAMES
from ..models import ReceiptStatus

# SQLite only aliases the rowid for a column declared exactly INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Receipts that are not pending any more, delivered or dead.
SETTLED_RECEIPTS = f"status <> {int(ReceiptStatus.PENDING)}"

PARTITION_PREFIX = "cdrs_p"
_PARTITION_NAME = re.compile(rf"^{PARTITION_PREFIX}\d{{8}}$")


# The shared rate-limit state (ratelimit.py): on PostgreSQL a table of its schema, created
# UNLOGGED by migration 0001 so an update writes no WAL; SQLite deployments keep it in a
# sidecar file in memory-backed storage, where the rate limiter creates it.
rate_limit_state = sa.Table(
    "rate_limit_state",
    sa.MetaData(),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("tat", sa.Float(precision=53), nullable=False),
)


def _declare(metadata: sa.MetaData, dialect: str) -> None:
    """Declare every table in ``metadata`` as it is on ``dialect``. Options for one
    database are given on that database's schema only: SQLAlchemy loads a dialect to
    check its options, and a process on SQLite need not load PostgreSQL's."""
    partitioned = dialect == "postgresql"

    def partial(condition: str) -> dict[str, Any]:
        """A partial index's condition, as this database's option."""
        return {f"{dialect}_where": sa.text(condition)}

    cdrs_options: dict[str, Any] = {}
    if partitioned:
        cdrs_options["postgresql_partition_by"] = "RANGE (placed_at)"
    sa.Table(
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
        # When the operator disabled the app; NULL while it is in service (migration 0008).
        sa.Column("disabled_at", sa.BigInteger, nullable=True),
    )

    key: list[Any]
    if partitioned:
        key = [
            sa.PrimaryKeyConstraint("id", "placed_at", "app_id", name="cdrs_pkey"),
            sa.UniqueConstraint("app_id", "call_id", "placed_at", name="uq_cdrs_app_call_placed"),
        ]
    else:
        key = [sa.UniqueConstraint("app_id", "call_id", name="uq_cdrs_app_call")]
    sa.Table(
        "cdrs",
        metadata,
        sa.Column("id", BigId, primary_key=not partitioned, autoincrement=True),
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
        # One more with every write of the charge (the rated columns above): with the id
        # and content hash, what identifies everything an answer shows of the row.
        sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
        # The prefix of the rate that priced the CDR (NULL while pending, and on CDRs
        # priced before migration 0009): analytics' destination.
        sa.Column("rate_prefix", sa.String(20), nullable=True),
        # ISO 3166-1 alpha-2 of country_code + phone (e164.region_of): NULL where none.
        sa.Column("region", sa.String(2), nullable=True),
        *key,
        sa.Index("ix_cdrs_query", "app_id", "voice_group", "placed_at", "id"),
        sa.Index("ix_cdrs_messageid", "app_id", "messageid"),
        # The rater's queue: pending CDRs it has not yet found unpriceable. Partial, so it
        # stays as small as the backlog however large the table grows.
        sa.Index(
            "ix_cdrs_unrated",
            "id",
            **partial("cost_status = 0 AND pending_reason IS NULL"),
        ),
        **cdrs_options,
    )

    if partitioned:
        # The idempotency key across partitions, and where (which day) each call lives.
        sa.Table(
            "cdr_keys",
            metadata,
            sa.Column("app_id", sa.Integer, primary_key=True),
            sa.Column("call_id", sa.String(128), primary_key=True),
            sa.Column("placed_at", sa.BigInteger, nullable=False),
        )

    # Rows per (app, voice group, 5-minute bucket of placed_at), kept in the transaction
    # that stores the rows: exact totals and deep pages without reading them (counts.py).
    sa.Table(
        "cdr_counts",
        metadata,
        sa.Column("app_id", sa.Integer, primary_key=True),
        sa.Column("voice_group", sa.SmallInteger, primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )

    # Analytics' rollups (rollups.py): sums by app and local hour, local day with the
    # call's fields, and local day with the rate prefix. Kept by the writes they sum.
    def sums(names: tuple[str, ...]) -> list[sa.Column[Any]]:
        return [sa.Column(n, sa.BigInteger, nullable=False) for n in names]

    sa.Table(
        "rollup_hours",
        metadata,
        sa.Column("app_id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        *sums(SUM_NAMES),
        sqlite_with_rowid=False,
    )
    sa.Table(
        "rollup_days",
        metadata,
        sa.Column("app_id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("service", sa.SmallInteger, primary_key=True),
        sa.Column("country_code", sa.String(8), primary_key=True),
        sa.Column("region", sa.String(2), primary_key=True),  # "" for none (a key)
        sa.Column("connected", sa.Boolean, primary_key=True),
        sa.Column("hangup_cause", sa.String(64), primary_key=True),
        sa.Column("hangup_disposition", sa.String(64), primary_key=True),
        *sums(SUM_NAMES),
        *sums(PENDING_SUM_NAMES),
        sqlite_with_rowid=False,
    )
    sa.Table(
        "rollup_prefixes",
        metadata,
        sa.Column("app_id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("prefix", sa.String(20), primary_key=True),
        sa.Column("service", sa.SmallInteger, primary_key=True),
        sa.Column("country_code", sa.String(8), primary_key=True),
        sa.Column("region", sa.String(2), primary_key=True),
        *sums(SUM_NAMES),
        sqlite_with_rowid=False,
    )

    # ``voicecdr watch`` (spool.py, migration 0010): each followed file's position, the
    # records it could not store, and per source and hour what came in and what became of it.
    sa.Table(
        "spool_files",
        metadata,
        sa.Column("device", sa.BigInteger, primary_key=True),
        sa.Column("inode", sa.BigInteger, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("fingerprint_len", sa.Integer, nullable=False),
        sa.Column("byte_offset", sa.BigInteger, nullable=False),
        sa.Column("line", sa.BigInteger, nullable=False),
        sa.Column("done", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    sa.Table(
        "spool_rejects",
        metadata,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("line", sa.BigInteger, nullable=True),
        sa.Column("call_id", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    sa.Table(
        "source_counts",
        metadata,
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("shard", sa.SmallInteger, primary_key=True),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("stored", sa.BigInteger, nullable=False),
        sa.Column("duplicate", sa.BigInteger, nullable=False),
        sa.Column("rejected", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )

    sa.Table(
        "rate_plans",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("app_id", "version", name="uq_rate_plans_app_version"),
    )

    sa.Table(
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
    cdr_ref: list[Any] = [] if partitioned else [sa.ForeignKey("cdrs.id")]
    receipt_keys: list[Any] = []
    if partitioned:
        receipt_keys = [
            sa.PrimaryKeyConstraint("id", "app_id", name="receipts_pkey"),
            sa.UniqueConstraint("webhook_id", "app_id", name="uq_receipts_webhook_app"),
        ]
    sa.Table(
        "receipts",
        metadata,
        sa.Column("id", BigId, primary_key=not partitioned, autoincrement=True),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("cdr_id", sa.BigInteger, *cdr_ref, nullable=False),
        sa.Column("webhook_id", sa.String(64), nullable=False, unique=not partitioned),
        # The stored body of a receipt recorded before schema 0005; NULL since then, when
        # the body is rendered at each attempt from the columns after it (outbox.py).
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("status", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float(precision=53), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        # What the body is rendered from, besides the CDR's call data: the CDR's time (so
        # PostgreSQL finds it in one partition), the charge the receipt reports, and the
        # app's timezone and language when it was made. NULL only on receipts that have
        # a payload.
        sa.Column("cdr_placed_at", sa.BigInteger, nullable=True),
        sa.Column("cycle", sa.Integer, nullable=True),
        sa.Column("size", sa.Integer, nullable=True),
        sa.Column("unit_price_nanos", sa.BigInteger, nullable=True),
        sa.Column("basic_price_nanos", sa.BigInteger, nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Index("ix_receipts_due", "status", "next_attempt_at"),
        # Settled receipts only (delivered or dead), for replays by app and time: a new
        # receipt, which the rater writes with every priced CDR, is not in it. Pending
        # ones are found through ix_receipts_due (migration 0006).
        sa.Index(
            "ix_receipts_app_settled",
            "app_id",
            "created_at",
            **partial(SETTLED_RECEIPTS),
        ),
        sa.Index("ix_receipts_cdr", "cdr_id"),
        *receipt_keys,
    )

    # The console's session-signing key when VOICECDR_CONSOLE_SECRET_KEY is unset: made
    # once by the first process that needs it, so every process and restart agrees.
    sa.Table(
        "console_keys",
        metadata,
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )

    if partitioned:
        rate_limit_state.to_metadata(metadata)


metadata = sa.MetaData()
_declare(metadata, "sqlite")

apps = metadata.tables["apps"]
cdrs = metadata.tables["cdrs"]
cdr_counts = metadata.tables["cdr_counts"]
rate_plans = metadata.tables["rate_plans"]
rates = metadata.tables["rates"]
receipts = metadata.tables["receipts"]
spool_files = metadata.tables["spool_files"]
spool_rejects = metadata.tables["spool_rejects"]
source_counts = metadata.tables["source_counts"]
console_keys = metadata.tables["console_keys"]


def metadata_for(dialect: str) -> sa.MetaData:
    """The schema as it is on ``dialect`` ("sqlite" or "postgresql")."""
    return _postgresql_metadata() if dialect == "postgresql" else metadata


@functools.cache
def _postgresql_metadata() -> sa.MetaData:
    # Declared on first use: only processes on PostgreSQL (and migrations) ask for it.
    declared = sa.MetaData()
    _declare(declared, "postgresql")
    return declared


def is_partition(name: str) -> bool:
    """Whether ``name`` is one of the day partitions of ``cdrs``."""
    return bool(_PARTITION_NAME.match(name))


def declared_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Alembic's ``include_name`` hook: everything but the day partitions, which are
    made and dropped at run time rather than declared."""
    return not (type_ == "table" and name is not None and is_partition(name))
