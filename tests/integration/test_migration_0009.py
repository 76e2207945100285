"""Migration 0009 gives the CDRs priced before it the prefix of the rate that priced them
(by the rater's own rule), and rollups that answer as the CDRs do."""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.data import canonical, make_app
from voicecdr.analytics import AnalyticsQuery, Dimension, to_json
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import AppStore, CdrWriter, Database, RatingStore, ReportReader, migrate
from voicecdr.workers.rater import Rater

# Service rows beat `*` rows; the longest prefix wins; the empty prefix matches all.
PLAN = """service,prefix,cycle,unit_price,basic_price
verification,,1,0.012,0
verification,9198,1,0.004,0
group_call,91,20,0.05,0.005
*,,6,0.018,0.001
*,9198,30,0.03,0
"""
CALLS = [  # (service, country code, phone, the prefix that must price it)
    ("verification", "91", "9876543210", "9198"),
    ("verification", "44", "7700900123", ""),
    ("group_call", "91", "9876543210", "91"),
    ("group_call", "44", "7700900123", ""),
    ("notification", "91", "9876543210", "9198"),
    ("notification", "62", "8123456789", ""),
]


def test_0009_backfills_the_rate_prefix_and_the_rollups(db: Database) -> None:
    app = make_app(db, "app1").app
    records = [
        canonical(f"c{i}", service=service, country_code=country, phone=phone, second=7 + i)
        for i, (service, country, phone, _) in enumerate(CALLS)
    ]
    Ingestor(AppStore(db), CdrWriter(db)).ingest(Item(i, r) for i, r in enumerate(records))
    RatingStore(db).import_plan(app.id, parse_plan_csv(PLAN), source="t", now=1)
    assert Rater(db).drain() == (len(CALLS), 0)
    with db.reader.connect() as conn:
        rated = dict(conn.execute(sa.text("SELECT call_id, rate_prefix FROM cdrs")).all())
    assert rated == {f"c{i}": prefix for i, (*_, prefix) in enumerate(CALLS)}

    migrate.downgrade(db, "0008")
    migrate.upgrade(db)

    with db.reader.connect() as conn:
        backfilled = dict(conn.execute(sa.text("SELECT call_id, rate_prefix FROM cdrs")).all())
    assert backfilled == rated
    reader = ReportReader(db)
    day = 86_400
    stored = AppStore(db).get("app1")
    assert stored is not None
    for group_by in [(), (Dimension.DAY, Dimension.PREFIX), (Dimension.HOUR,)]:
        query = AnalyticsQuery(1_560_000_000, 1_560_000_000 + 200 * day, group_by)
        report = to_json(reader.report(stored, query))
        assert report == to_json(reader.scan(stored, query))
        assert report["total"]["attempts"] == len(CALLS)
