"""Analytics: ``cdrs.rate_prefix`` and the rollups ``rollup_hours``, ``rollup_days`` and
``rollup_prefixes`` (storage/rollups.py), filled from the CDRs already stored.

The CDRs priced before this revision get the prefix of the rate that priced them, found
in their plan by the rater's rule (the longest prefix of country code + phone among the
service's own rates, else among the ``*`` rates). The rollups are filled by the
migration that adds the region to their keys (``*_region.py``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

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


def _sums(names: tuple[str, ...]) -> list[sa.Column[int]]:
    return [sa.Column(n, sa.BigInteger, nullable=False) for n in names]


def upgrade() -> None:
    op.add_column("cdrs", sa.Column("rate_prefix", sa.String(20), nullable=True))
    op.create_table(
        "rollup_hours",
        sa.Column("app_id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        *_sums(_SUMS),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rollup_days",
        sa.Column("app_id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("service", sa.SmallInteger, primary_key=True),
        sa.Column("country_code", sa.String(8), primary_key=True),
        sa.Column("connected", sa.Boolean, primary_key=True),
        sa.Column("hangup_cause", sa.String(64), primary_key=True),
        sa.Column("hangup_disposition", sa.String(64), primary_key=True),
        *_sums(_SUMS),
        *_sums(_PENDING),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rollup_prefixes",
        sa.Column("app_id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("prefix", sa.String(20), primary_key=True),
        sa.Column("service", sa.SmallInteger, primary_key=True),
        sa.Column("country_code", sa.String(8), primary_key=True),
        *_sums(_SUMS),
        sqlite_with_rowid=False,
    )
    # The rate that priced each final CDR: its plan's service rows first (service IS NULL
    # sorts after), the longest matching prefix first (the empty prefix matches all).
    op.execute(
        "UPDATE cdrs SET rate_prefix = (SELECT r.prefix FROM rates r "
        "WHERE r.plan_id = cdrs.rate_plan_id "
        "AND (r.service = cdrs.service OR r.service IS NULL) "
        "AND substr(cdrs.country_code || cdrs.phone, 1, length(r.prefix)) = r.prefix "
        "ORDER BY r.service IS NULL, length(r.prefix) DESC LIMIT 1) "
        "WHERE cost_status = 1 AND rate_plan_id IS NOT NULL"
    )
    # The CDRs stored before are summed into the rollups by the region migration, which
    # adds the region to their keys: the code that sums them (rollups.rebuild) knows only
    # the head's tables.


def downgrade() -> None:
    op.drop_table("rollup_prefixes")
    op.drop_table("rollup_days")
    op.drop_table("rollup_hours")
    op.drop_column("cdrs", "rate_prefix")
