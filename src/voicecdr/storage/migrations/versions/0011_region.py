"""``cdrs.region``: the ISO 3166-1 alpha-2 region of each CDR's country code and number
(``e164.region_of``), filled in for the CDRs stored before; ``region`` in the keys of
``rollup_days`` and ``rollup_prefixes``, whose rows are made again from the CDRs.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 10_000  # CDRs read, placed and written back at a time

_SUMS = (
    "attempts",
    "answered",
    "billsec",
    "answer_wait",
    "answer_timed",
    "short_calls",
    "priced",
    "billed_seconds",
    "cost_nanos",
)
_PENDING = tuple(f"pending_{n}" for n in _SUMS[1:6])
_DAY_KEY = ("service", "country_code", "connected", "hangup_cause", "hangup_disposition")
_PREFIX_KEY = ("prefix", "service", "country_code")
_KEY_TYPES: dict[str, Any] = {
    "service": sa.SmallInteger,
    "country_code": sa.String(8),
    "region": sa.String(2),
    "connected": sa.Boolean,
    "hangup_cause": sa.String(64),
    "hangup_disposition": sa.String(64),
    "prefix": sa.String(20),
}


def _create(name: str, key: tuple[str, ...], sums: tuple[str, ...]) -> None:
    op.create_table(
        name,
        sa.Column("app_id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        *(sa.Column(k, _KEY_TYPES[k], primary_key=True) for k in key),
        *(sa.Column(n, sa.BigInteger, nullable=False) for n in sums),
        sqlite_with_rowid=False,
    )


def _with_region(key: tuple[str, ...]) -> tuple[str, ...]:
    at = key.index("country_code") + 1
    return (*key[:at], "region", *key[at:])


def upgrade() -> None:
    op.add_column("cdrs", sa.Column("region", sa.String(2), nullable=True))
    conn = op.get_bind()
    _backfill(conn, conn.dialect.name)
    op.drop_table("rollup_prefixes")
    op.drop_table("rollup_days")
    _create("rollup_days", _with_region(_DAY_KEY), (*_SUMS, *_PENDING))
    _create("rollup_prefixes", _with_region(_PREFIX_KEY), _SUMS)
    # Every app's rollups summed again, with the region, in this transaction, by the code
    # that keeps them (its tables are these at this revision).
    from voicecdr.storage.rollups import rebuild

    for (app_id,) in conn.exec_driver_sql("SELECT id FROM apps ORDER BY id").all():
        rebuild(conn, conn.dialect.name, app_id)


def _backfill(conn: sa.Connection, dialect: str) -> None:
    """Each stored CDR's region, in id order, BATCH at a time; only non-NULL ones written.
    placed_at beside the id: on PostgreSQL it prunes the update to one partition."""
    from voicecdr.e164 import region_of

    last = -1
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT id, placed_at, country_code, phone FROM cdrs "
                "WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": BATCH},
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        placed = [(region, i, at) for i, at, cc, phone in rows if (region := region_of(cc, phone))]
        if not placed:
            continue
        if dialect == "sqlite":
            conn.exec_driver_sql(
                "UPDATE cdrs SET region = ? WHERE id = ? AND placed_at = ?", placed
            )
        else:
            regions, ids, times = (list(c) for c in zip(*placed, strict=True))
            conn.exec_driver_sql(
                "UPDATE cdrs SET region = v.region FROM unnest(%s::varchar[], "
                "%s::bigint[], %s::bigint[]) AS v (region, id, placed_at) "
                "WHERE cdrs.id = v.id AND cdrs.placed_at = v.placed_at",
                (regions, ids, times),
            )


def downgrade() -> None:
    # The rollups without the region: the same sums, added over it.
    conn = op.get_bind()
    for name, key, sums in (
        ("rollup_days", _DAY_KEY, (*_SUMS, *_PENDING)),
        ("rollup_prefixes", _PREFIX_KEY, _SUMS),
    ):
        group = ", ".join(("app_id", "bucket", *key))
        added = ", ".join(f"sum({n})" for n in sums)
        rows = conn.exec_driver_sql(f"SELECT {group}, {added} FROM {name} GROUP BY {group}")
        kept = [tuple(r) for r in rows]
        op.drop_table(name)
        _create(name, key, sums)
        if kept:
            columns = ("app_id", "bucket", *key, *sums)
            table = sa.table(name, *(sa.column(c) for c in columns))
            conn.execute(sa.insert(table), [dict(zip(columns, r, strict=True)) for r in kept])
    op.drop_column("cdrs", "region")
