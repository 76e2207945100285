"""Migrations build exactly the schema the code declares, and run both ways."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.support.analytics import ROLLUP_TABLES, assert_exact, assert_rollups_as_rebuilt
from tests.support.data import canonical, make_app
from voicecdr.analytics import AnalyticsQuery, Dimension
from voicecdr.errors import SchemaOutOfDate
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.rating import parse_plan_csv
from voicecdr.receipts import render
from voicecdr.storage import AppStore, CdrWriter, Database, Outbox, RatingStore, migrate
from voicecdr.storage.schema import declared_name, metadata_for
from voicecdr.workers.rater import Rater

PLAN = "service,prefix,cycle,unit_price,basic_price\n*,,20,0.05,0.005\n"


def test_migrated_schema_matches_the_declared_tables(db: Database) -> None:
    # Each database against its own declaration (schema.py): on PostgreSQL that includes
    # cdr_keys, rate_limit_state, the partition-wide keys of cdrs and receipts without a
    # foreign key to cdrs. Only the day partitions are left out: they are made at run
    # time, not declared (``declared_name``).
    with db.writer.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": declared_name})
        diff = compare_metadata(context, metadata_for(db.dialect))
    assert diff == []


def test_downgrade_and_upgrade_again(db: Database) -> None:
    assert migrate.current_revision(db) == migrate.head_revision()
    migrate.downgrade(db, "base")
    assert migrate.current_revision(db) is None
    with pytest.raises(SchemaOutOfDate, match="voicecdr db upgrade"):
        migrate.require_current(db)
    before, after = migrate.upgrade(db)
    assert (before, after) == (None, migrate.head_revision())
    migrate.upgrade(db)  # a second upgrade is a no-op
    migrate.require_current(db)


def test_downgrade_below_0005_stores_the_bodies_receipts_would_send(db: Database) -> None:
    # From 0005 receipts keep what their body is made of; 0004 needs the body itself.
    app = make_app(db, "app1", callback_url="https://hooks.example.com/dr").app
    RatingStore(db).import_plan(app.id, parse_plan_csv(PLAN), source="t", now=1)
    records = [canonical(f"c{i}", second=19 + i, messageid=f"m {i}") for i in range(3)]
    Ingestor(AppStore(db), CdrWriter(db)).ingest(Item(i, r) for i, r in enumerate(records))
    assert Rater(db).drain() == (3, 0)
    due = Outbox(db).claim_due(now=2**40, limit=10, per_app=10, busy={}, lease=1)
    assert len(due) == 3
    expected = {x.id: render(x.content) for x in due if x.content is not None}
    migrate.downgrade(db, "0004")
    with db.reader.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT id, payload FROM receipts")).all())
    assert stored == expected
    migrate.upgrade(db)
    due = Outbox(db).claim_due(now=2**41, limit=10, per_app=10, busy={}, lease=1)
    assert {x.id: x.payload for x in due} == expected


def test_0008_adds_the_disabled_state_and_its_downgrade_drops_only_that(db: Database) -> None:
    make_app(db, "app1")
    Ingestor(AppStore(db), CdrWriter(db)).ingest([Item(0, canonical("c1"))])
    AppStore(db).update("app1", {"disabled_at": 1_700_000_000}, now=1)
    migrate.downgrade(db, "0007")
    with db.reader.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("apps")}
        assert "disabled_at" not in columns
        assert conn.execute(sa.text("SELECT count(*) FROM cdrs")).scalar() == 1
    migrate.upgrade(db)
    app = AppStore(db).get("app1")
    assert app is not None
    assert app.disabled_at is None  # every app is in service after the upgrade


def test_0009_backfills_rollups_that_answer_as_the_cdrs_do(db: Database) -> None:
    # A database at 0008 holds CDRs, some priced: the upgrade sums them into rollups
    # (each app in its own timezone) that give the reports a plain GROUP BY gives.
    zones = {"ny": "America/New_York", "ktm": "Asia/Kathmandu"}
    apps = {key: make_app(db, key, timezone=tz).app for key, tz in zones.items()}
    RatingStore(db).import_plan(apps["ny"].id, parse_plan_csv(PLAN), source="t", now=1)
    records = [
        canonical(
            f"c{i}",
            appkey=key,
            time=f"2026-11-0{1 + i % 3} 0{i % 4}:{(17 * i) % 60:02d}:00",
            tz="UTC",
            connected=i % 3 != 0,
            second=i % 9,
            country_code=("91", "44")[i % 2],
        )
        for i in range(40)
        for key in zones
    ]
    Ingestor(AppStore(db), CdrWriter(db)).ingest(Item(i, r) for i, r in enumerate(records))
    assert Rater(db).drain() == (40, 40)  # ny's priced; ktm has no plan
    migrate.downgrade(db, "0008")
    with db.reader.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert not tables & set(ROLLUP_TABLES)
    migrate.upgrade(db)
    assert_rollups_as_rebuilt(db, [a.id for a in apps.values()])
    with db.reader.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM rollup_days")).scalar_one() > 0
    start, end = 1_793_491_200, 1_793_750_400  # 2026-11-01 to 2026-11-04, UTC
    for app in apps.values():
        for group_by in [(), (Dimension.HOUR,), (Dimension.DAY, Dimension.COUNTRY_CODE)]:
            for window in [(start, end), (start + 3 * 3600 + 7, end - 86_400 - 900)]:
                report = assert_exact(db, app, AnalyticsQuery(*window, group_by))
                assert report.total.attempts > 0
        # Priced before 0009, they are given the prefix of their plan's rate (the catch-all
        # ""); the calls still pending have none.
        by_prefix = assert_exact(db, app, AnalyticsQuery(start, end, (Dimension.PREFIX,)))
        assert [g.key for g in by_prefix.groups] == [("",) if app.appkey == "ny" else (None,)]
        assert by_prefix.total.priced == (40 if app.appkey == "ny" else 0)
