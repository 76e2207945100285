"""Citus: the schema distributed by tenant, when the database has the citus extension.

Every table that grows with traffic is distributed by ``app_id`` and colocated with
``cdrs``, so one app's CDRs, keys, counts, rollups and receipts live on one node and every
statement about one app is routed there. The small global tables that everything joins
with (``apps``, ``rate_plans``, ``rates``) are reference tables, copied to every node. The
rest stays local to the coordinator, where voicecdr connects: the rate-limit state (one
upsert per request, never joined), ``voicecdr watch``'s spool tables (one watcher, never
joined) and ``alembic_version``.

:func:`distribute` is idempotent and does nothing without the extension: migration 0013
and every ``voicecdr db upgrade`` call it, so a table a later migration adds is placed
when it is listed here.
"""

from __future__ import annotations

import sqlalchemy as sa

REFERENCE = ("apps", "rate_plans", "rates")
# By app_id, colocated with cdrs (the first).
DISTRIBUTED = (
    "cdrs",
    "cdr_keys",
    "cdr_counts",
    "rollup_hours",
    "rollup_days",
    "rollup_prefixes",
    "receipts",
)
COLUMN = "app_id"


def installed(conn: sa.Connection) -> bool:
    """Whether ``conn``'s database has the citus extension (False off PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return False
    found = conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'citus'").first()
    return found is not None


def sequential(conn: sa.Connection) -> None:
    """Make Citus run this transaction's multi-shard work over one connection per node.

    Citus spreads DDL on a distributed table (a new day partition's shards, a dropped one)
    over several connections per node; a transaction that then touches the same table
    again fails with "cannot modify table ... because there was a parallel operation".
    One connection per node keeps every later statement of the transaction possible."""
    conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")


# pg_advisory_xact_lock key of the apps' timezones on Citus: "vcdrzone" in ASCII.
ZONES_LOCK = 0x7663_6472_7A6F_6E65


def hold_zones(conn: sa.Connection, *, exclusive: bool) -> None:
    """Citus's stand-in for ``FOR SHARE`` on the app rows (``rollups.zones``): writers
    of rollups hold this lock shared until their transaction ends, a timezone change
    exclusively. On a reference table ``FOR SHARE`` takes a lock on the table's shard
    that conflicts with itself, so concurrent writers would queue behind, and deadlock
    with, each other."""
    shared = "" if exclusive else "_shared"
    conn.execute(sa.text(f"SELECT pg_advisory_xact_lock{shared}(:key)"), {"key": ZONES_LOCK})


# Holds one app's placement for the rest of the transaction: the metadata lock of the app's
# shard (colocated: all its tables'), shared (5, ShareLock), as Citus's own writers take
# it. A shard move's cutover takes it exclusively, so the cutover waits for a read that
# holds it, and a read that asks for it during a cutover waits for the new placement:
# every statement of the read sees one placement, in one snapshot.
HOLD_APP = (
    "SELECT lock_shard_metadata(5, ARRAY[get_shard_id_for_distribution_column('cdrs', :app)])"
)


def _placed(conn: sa.Connection) -> dict[str, str]:
    rows = conn.exec_driver_sql(
        "SELECT logicalrelid::regclass::text, partmethod FROM pg_dist_partition"
    ).all()
    return {str(name): str(method) for name, method in rows}


def distribute(conn: sa.Connection) -> list[str]:
    """Make the reference and distributed tables that are not yet; returns their names.
    Nothing happens without the extension."""
    if not installed(conn):
        return []
    sequential(conn)
    placed = _placed(conn)
    made = []
    for table in REFERENCE:
        if table not in placed:
            conn.execute(sa.text("SELECT create_reference_table(:t)"), {"t": table})
            made.append(table)
    for table in DISTRIBUTED:
        if table not in placed:
            colocate = "none" if table == DISTRIBUTED[0] else DISTRIBUTED[0]
            conn.execute(
                sa.text("SELECT create_distributed_table(:t, :c, colocate_with => :with)"),
                {"t": table, "c": COLUMN, "with": colocate},
            )
            made.append(table)
    return made


def undistribute(conn: sa.Connection) -> None:
    """Bring every table back to the coordinator as a plain table (migration 0013's
    downgrade)."""
    if not installed(conn):
        return
    sequential(conn)
    placed = _placed(conn)
    for table in (*reversed(DISTRIBUTED), *reversed(REFERENCE)):
        if table in placed:
            conn.execute(
                sa.text("SELECT undistribute_table(:t, cascade_via_foreign_keys => true)"),
                {"t": table},
            )
