"""PostgreSQL: cdrs partitioned by day of placed_at, with the idempotency key in cdr_keys.

Nothing changes on SQLite. On PostgreSQL the rows move into a new table partitioned by
range of ``placed_at``, one partition per UTC day holding rows; the id sequence carries
on. ``(app_id, call_id)`` stays unique through ``cdr_keys`` (a partitioned table can only
enforce unique keys that contain ``placed_at``), ``receipts.cdr_id`` loses its foreign
key (``id`` alone is no longer a unique key), and the receipts' keys take ``app_id`` in,
for Citus. See docs/architecture.md, "Partitions", and docs/scaling.md.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import time

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DAY = 86_400
COLUMNS = """
  id bigint NOT NULL DEFAULT nextval('cdrs_id_seq'),
  app_id integer NOT NULL,
  call_id varchar(128) NOT NULL,
  content_hash varchar(64) NOT NULL,
  service smallint NOT NULL,
  voice_group smallint NOT NULL,
  messageid varchar(128) NOT NULL,
  phone varchar(32) NOT NULL,
  country_code varchar(8) NOT NULL,
  show_phone varchar(64) NOT NULL,
  placed_at bigint NOT NULL,
  answered_at bigint,
  ended_at bigint,
  billsec integer NOT NULL,
  connected boolean NOT NULL,
  hangup_cause varchar(64) NOT NULL,
  hangup_disposition varchar(64) NOT NULL,
  ivr_result varchar(64) NOT NULL,
  record_url text,
  cost_status smallint NOT NULL DEFAULT 0,
  cycle integer NOT NULL DEFAULT 0,
  size integer NOT NULL DEFAULT 0,
  unit_price_nanos bigint NOT NULL DEFAULT 0,
  basic_price_nanos bigint NOT NULL DEFAULT 0,
  cost_nanos bigint NOT NULL DEFAULT 0,
  ingested_at bigint NOT NULL,
  rate_plan_id integer,
  pending_reason text,
  rated_at bigint
"""
# Built after the rows are in: one sorted build per index beats maintaining it per row.
INDEXES = (
    "CREATE INDEX ix_cdrs_query ON cdrs (app_id, voice_group, placed_at, id)",
    "CREATE INDEX ix_cdrs_messageid ON cdrs (app_id, messageid)",
    "CREATE INDEX ix_cdrs_unrated ON cdrs (id) WHERE cost_status = 0 AND pending_reason IS NULL",
    "ALTER TABLE cdrs ADD CONSTRAINT cdrs_app_id_fkey FOREIGN KEY (app_id) REFERENCES apps (id)",
    "ALTER TABLE cdrs ADD CONSTRAINT fk_cdrs_rate_plan_id_rate_plans "
    "FOREIGN KEY (rate_plan_id) REFERENCES rate_plans (id)",
)


NAMES = ", ".join(line.split()[0] for line in COLUMNS.strip().split(",\n"))


def _replace_cdrs(keys: tuple[str, ...]) -> None:
    """Move every row of ``cdrs`` into the new table ``cdrs_new``, which then takes the
    name, the id sequence, ``keys`` and the INDEXES. Writers of ``cdrs`` are locked out
    from the start (see :func:`upgrade`)."""
    op.execute(f"INSERT INTO cdrs_new ({NAMES}) SELECT {NAMES} FROM cdrs")
    op.execute("ALTER SEQUENCE cdrs_id_seq OWNED BY NONE")  # or DROP TABLE takes it along
    op.execute("DROP TABLE cdrs")
    op.execute("ALTER TABLE cdrs_new RENAME TO cdrs")
    op.execute("ALTER SEQUENCE cdrs_id_seq OWNED BY cdrs.id")
    for statement in (*keys, *INDEXES):
        op.execute(statement)


def _lock_out_writers() -> None:
    # A row committed by a running voicecdr after the copy began would be dropped with the
    # old table: writers wait for the migration instead (reads go on until the swap).
    op.execute("LOCK TABLE cdrs IN EXCLUSIVE MODE")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _lock_out_writers()
    op.execute(
        "CREATE TABLE cdr_keys (app_id integer NOT NULL, call_id varchar(128) NOT NULL, "
        "placed_at bigint NOT NULL, CONSTRAINT cdr_keys_pkey PRIMARY KEY (app_id, call_id))"
    )
    op.execute("INSERT INTO cdr_keys SELECT app_id, call_id, placed_at FROM cdrs")
    op.execute("ALTER TABLE receipts DROP CONSTRAINT IF EXISTS receipts_cdr_id_fkey")
    # Keys that contain the tenant, so receipts can be distributed by app_id on Citus.
    _rekey_receipts(
        "PRIMARY KEY (id, app_id)", "uq_receipts_webhook_app UNIQUE (webhook_id, app_id)"
    )
    days = op.get_bind().exec_driver_sql(
        f"SELECT DISTINCT placed_at - mod(mod(placed_at, {DAY}) + {DAY}, {DAY}) FROM cdrs"
    )
    partitions = [
        f"CREATE TABLE cdrs_p{time.strftime('%Y%m%d', time.gmtime(day))} PARTITION OF "
        f"cdrs_new FOR VALUES FROM ({day}) TO ({day + DAY})"
        for (day,) in days.all()
    ]
    op.execute(f"CREATE TABLE cdrs_new ({COLUMNS}) PARTITION BY RANGE (placed_at)")
    for statement in partitions:
        op.execute(statement)
    _replace_cdrs(
        (
            "ALTER TABLE cdrs ADD CONSTRAINT cdrs_pkey PRIMARY KEY (id, placed_at, app_id)",
            "ALTER TABLE cdrs ADD CONSTRAINT uq_cdrs_app_call_placed "
            "UNIQUE (app_id, call_id, placed_at)",
        ),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _lock_out_writers()
    op.execute(f"CREATE TABLE cdrs_new ({COLUMNS})")
    _replace_cdrs(
        (
            "ALTER TABLE cdrs ADD CONSTRAINT cdrs_pkey PRIMARY KEY (id)",
            "ALTER TABLE cdrs ADD CONSTRAINT uq_cdrs_app_call UNIQUE (app_id, call_id)",
        ),
    )
    op.execute(
        "ALTER TABLE receipts ADD CONSTRAINT receipts_cdr_id_fkey "
        "FOREIGN KEY (cdr_id) REFERENCES cdrs (id)"
    )
    _rekey_receipts("PRIMARY KEY (id)", "receipts_webhook_id_key UNIQUE (webhook_id)")
    op.drop_table("cdr_keys")


def _rekey_receipts(primary: str, webhook: str) -> None:
    for name in ("receipts_pkey", "receipts_webhook_id_key", "uq_receipts_webhook_app"):
        op.execute(f"ALTER TABLE receipts DROP CONSTRAINT IF EXISTS {name}")
    op.execute(f"ALTER TABLE receipts ADD CONSTRAINT receipts_pkey {primary}")
    op.execute(f"ALTER TABLE receipts ADD CONSTRAINT {webhook}")
