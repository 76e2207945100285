"""Rate plans, the rater and re-rating against SQLite and PostgreSQL."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.data import canonical, charged, make_app, read_cdrs, receipt_call
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.models import CostStatus, ReceiptStatus, Service, VoiceGroup
from voicecdr.rating import Rate, parse_plan_csv
from voicecdr.receipts import form_body, render
from voicecdr.storage import AppStore, CdrWriter, Database, Outbox, RatingStore
from voicecdr.workers.rater import Rater, rerate


@pytest.fixture
def database_url(any_database_url: str) -> str:
    """SQLite, PostgreSQL and Citus: these tests hold on every database."""
    return any_database_url


T0 = 1567990800  # 2019-09-09 09:00:00 Asia/Shanghai
HEADER = "service,prefix,cycle,unit_price,basic_price\n"
PLAN = HEADER + "group_call,91,20,0.05,0.005\nverification,,1,0.012,0\n"


def load(db: Database, records: list[dict[str, Any]]) -> None:
    summary = Ingestor(AppStore(db), CdrWriter(db)).ingest(
        Item(i, r) for i, r in enumerate(records)
    )
    assert summary.accepted == len(records)


def rows(db: Database, app_id: int, group: VoiceGroup = VoiceGroup.GROUP_CALL) -> list[Any]:
    return read_cdrs(
        db, app_id, group, T0 - 60, T0 + 3600, messageid=None, offset=0, limit=100
    ).rows


def revisions(db: Database, app_id: int) -> list[int]:
    """Each CDR's revision, in time order: one more with every write of its charge (what
    the query API's kept rows rely on, storage/pages.py)."""
    query = "SELECT revision FROM cdrs WHERE app_id = :app ORDER BY placed_at, id"
    with db.reader.connect() as conn:
        return list(conn.execute(sa.text(query), {"app": app_id}).scalars())


def test_rater_prices_records_the_plan_and_receipts(db: Database) -> None:
    app = make_app(db, "app1", callback_url="https://hooks.example.com/dr").app
    quiet = make_app(db, "quiet").app  # no callback: priced, no receipt
    ratings = RatingStore(db)
    first = ratings.import_plan(app.id, parse_plan_csv(PLAN), source="p.csv", now=1)
    ratings.import_plan(quiet.id, parse_plan_csv(PLAN), source="p.csv", now=1)
    load(
        db,
        [
            canonical("a", second=19),
            canonical("b", connected=False, time="2019-09-09 09:00:05"),
            canonical("c", service="verification", second=3, time="2019-09-09 09:00:06"),
            canonical("q", appkey="quiet", second=45),
        ],
    )
    assert Rater(db, batch_size=2).drain() == (4, 0)
    connected, missed = rows(db, app.id)
    assert (connected.cost_status, connected.cycle, connected.size) == (CostStatus.FINAL, 20, 1)
    assert (connected.unit_price_nanos, connected.cost_nanos) == (50_000_000, 50_000_000)
    assert (missed.size, missed.cost_nanos, missed.basic_price_nanos) == (0, 5_000_000, 5_000_000)
    (verification,) = rows(db, app.id, VoiceGroup.VERIFICATION)
    assert (verification.size, verification.cost_nanos) == (3, 36_000_000)
    (q,) = rows(db, quiet.id)
    assert (q.size, q.cost_nanos) == (3, 150_000_000)
    listed = Outbox(db).list()
    assert sorted(r.cdr_id for r in listed) == sorted([connected.id, missed.id, verification.id])
    assert {r.status for r in listed} == {ReceiptStatus.PENDING}
    assert ratings.plans(app.id)[0].id == first.id
    assert Rater(db).drain() == (0, 0)  # nothing priced twice


def test_unpriced_cdrs_wait_with_a_reason_until_a_plan_covers_them(db: Database) -> None:
    app = make_app(db, "app1").app
    ratings = RatingStore(db)
    load(db, [canonical("a"), canonical("n", service="notification", second=5)])
    assert Rater(db).drain() == (0, 2)
    assert revisions(db, app.id) == [0, 0]  # a reason is not a charge
    total, listed = ratings.unpriced(app.id, limit=10)
    assert total == 2
    assert all("no rate plan" in reason for _, reason in listed)
    ratings.import_plan(app.id, parse_plan_csv(PLAN), source="v1", now=2)
    assert Rater(db).drain() == (1, 1)  # the group call is now priced
    assert revisions(db, app.id) == [1, 0]
    total, listed = ratings.unpriced(app.id, limit=10)
    assert total == 1
    assert listed[0][1] == "no rate for notification calls to 91810022458 in plan version 1"
    ratings.import_plan(app.id, parse_plan_csv(PLAN + "*,,6,0.02,0\n"), source="v2", now=3)
    assert Rater(db).drain() == (1, 0)
    assert ratings.unpriced(app.id, limit=10)[0] == 0
    assert [p.version for p in ratings.plans(app.id)] == [1, 2]
    assert rater_lag_is_zero(db)


def rater_lag_is_zero(db: Database) -> bool:
    return RatingStore(db).lag(10**10) == 0


def test_rerate_dry_run_then_apply(db: Database) -> None:
    app = make_app(db, "app1", callback_url="https://hooks.example.com/dr").app
    ratings = RatingStore(db)
    ratings.import_plan(app.id, parse_plan_csv(PLAN), source="v1", now=1)
    load(
        db,
        [
            canonical("a", second=19),
            canonical("b", second=45, time="2019-09-09 09:10:00"),
            canonical("late", second=5, time="2019-09-10 09:00:00"),
        ],
    )
    Rater(db).drain()
    assert revisions(db, app.id) == [1, 1, 1]
    receipts_before = len(Outbox(db).list())
    ratings.import_plan(app.id, parse_plan_csv(PLAN.replace("0.05", "0.04")), source="v2", now=2)

    dry = rerate(db, app, T0, T0 + 3600, dry_run=True)
    assert (dry.records, dry.changed) == (2, 2)
    assert (dry.cost_before_nanos, dry.cost_after_nanos) == (200_000_000, 160_000_000)
    assert rows(db, app.id)[0].cost_nanos == 50_000_000  # nothing written
    assert revisions(db, app.id) == [1, 1, 1]

    done = rerate(db, app, T0, T0 + 3600, dry_run=False)
    assert (done.changed, done.receipts) == (2, 0)
    assert [r.cost_nanos for r in rows(db, app.id)] == [40_000_000, 120_000_000]
    assert revisions(db, app.id) == [2, 2, 1]  # "late" is outside the window
    assert len(Outbox(db).list()) == receipts_before  # no resend unless asked

    again = rerate(db, app, T0, T0 + 3600, dry_run=False, resend_receipts=True)
    assert again.changed == 0  # already current
    assert revisions(db, app.id) == [2, 2, 1]

    ratings.import_plan(app.id, parse_plan_csv(PLAN.replace("0.05", "0.03")), source="v3", now=3)
    would = rerate(db, app, T0, T0 + 3600, dry_run=True, resend_receipts=True)
    assert (would.changed, would.receipts) == (2, 2)
    resent = rerate(db, app, T0, T0 + 3600, dry_run=False, resend_receipts=True)
    assert (resent.changed, resent.receipts) == (2, 2)
    assert len(Outbox(db).list()) == receipts_before + 2


def test_rerate_can_make_cdrs_pending_again(db: Database) -> None:
    app = make_app(db, "app1").app
    ratings = RatingStore(db)
    ratings.import_plan(app.id, parse_plan_csv(PLAN), source="v1", now=1)
    load(db, [canonical("a")])
    Rater(db).drain()
    ratings.import_plan(
        app.id, parse_plan_csv(HEADER + "verification,,1,0.01,0\n"), source="v2", now=2
    )
    report = rerate(db, app, T0, T0 + 60, dry_run=False)
    assert (report.changed, report.newly_pending) == (1, 1)
    assert revisions(db, app.id) == [2]  # pending again is a new charge too
    (row,) = rows(db, app.id)
    assert (row.cost_status, row.cost_nanos) == (CostStatus.PENDING, 0)
    assert ratings.unpriced(app.id, limit=1)[0] == 1


def test_a_batch_mixing_priced_pending_and_apps_with_and_without_callbacks(db: Database) -> None:
    hooked = make_app(db, "hooked", callback_url="https://hooks.example.com/dr").app
    zh = make_app(db, "zh", language="zh", callback_url="https://hooks.example.com/zh").app
    quiet = make_app(db, "quiet").app
    planless = make_app(db, "planless", callback_url="https://hooks.example.com/p").app
    ratings = RatingStore(db)
    for app in (hooked, zh, quiet):
        ratings.import_plan(app.id, parse_plan_csv(PLAN), source="p.csv", now=1)
    records = []
    for n, appkey in enumerate(["hooked", "zh", "quiet", "planless"] * 3):
        at = f"2019-09-09 09:{n:02d}:00"
        records += [
            canonical(f"g{n}", appkey=appkey, time=at, second=n + 1, ivr_result="1#"),
            canonical(f"m{n}", appkey=appkey, time=at, connected=False, messageid="a b&c"),
            canonical(f"v{n}", appkey=appkey, time=at, service="verification", second=n),
            # No rate: notification calls are not in the plan.
            canonical(f"n{n}", appkey=appkey, time=at, service="notification", second=5),
        ]
    load(db, records)

    assert Rater(db, batch_size=1000).drain() == (27, 21)  # all in one batch

    total, reasons = ratings.unpriced(hooked.id, limit=10)
    assert total == 3
    assert {r for _, r in reasons} == {
        "no rate for notification calls to 91810022458 in plan version 1"
    }
    total, reasons = ratings.unpriced(planless.id, limit=20)
    assert total == 12
    assert {r for _, r in reasons} == {
        "the app has no rate plan: import one with `voicecdr rates import`"
    }
    listed = Outbox(db).list(limit=100)
    assert len(listed) == 18  # priced CDRs of the apps with a callback URL
    assert {r.appkey for r in listed} == {"hooked", "zh"}
    assert all(re.fullmatch(r"msg_[0-9a-f]{32}", r.webhook_id) for r in listed)
    assert len({r.webhook_id for r in listed}) == 18
    # Each body the sender sends is the reference rendering of the CDR as stored, with its
    # charge.
    apps = {a.id: a for a in AppStore(db).list()}
    payloads = sent_payloads(db)
    for app in (hooked, zh):
        for group in VoiceGroup:
            for row in read_cdrs(
                db, app.id, group, T0 - 60, T0 + 3600, messageid=None, offset=0, limit=100
            ).rows:
                if row.cost_status is CostStatus.PENDING:
                    assert row.id not in payloads
                    continue
                charge = charged(row)
                assert charge is not None
                assert payloads[row.id] == form_body(apps[app.id], receipt_call(row), charge)
    assert Rater(db).drain() == (0, 0)


def sent_payloads(db: Database) -> dict[int, str]:
    """The body of every receipt as the sender renders it, by CDR id (claiming them)."""
    with db.reader.connect() as conn:
        cdr_ids = dict(conn.execute(sa.text("SELECT id, cdr_id FROM receipts")).all())
    due = Outbox(db).claim_due(now=T0 + 10**9, limit=10**6, per_app=10**6, busy={}, lease=1)
    assert len(due) == len(cdr_ids)
    bodies = {}
    for receipt in due:
        assert receipt.payload is None
        assert receipt.content is not None
        bodies[cdr_ids[receipt.id]] = render(receipt.content)
    return bodies


def test_concurrent_raters_price_each_cdr_once(db: Database) -> None:
    app = make_app(db, "app1", callback_url="https://hooks.example.com/dr").app
    RatingStore(db).import_plan(app.id, parse_plan_csv(PLAN), source="p.csv", now=1)
    load(
        db,
        [canonical(f"c{n}", time=f"2019-09-09 09:{n // 60:02d}:{n % 60:02d}") for n in range(300)],
    )
    raters = [Rater(db, batch_size=7) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda r: r.drain(), raters))
    assert sum(priced for priced, _ in results) == 300
    receipts = Outbox(db).list(limit=1000)
    assert sorted(r.cdr_id for r in receipts) == sorted({r.cdr_id for r in receipts})
    assert len(receipts) == 300


def test_a_cost_too_large_to_store_sets_that_cdr_aside_and_prices_the_rest(db: Database) -> None:
    """A plan stored before import refused such prices: one day-long call at the top
    price per second would cost more than a 64-bit integer of nanos holds."""
    rich = make_app(db, "rich", callback_url="https://hooks.example.com/dr").app
    other = make_app(db, "other", callback_url="https://hooks.example.com/dr").app
    ratings = RatingStore(db)
    top = Rate(Service.GROUP_CALL, "", 1, 999_999_999_999_999, 5_000_000)
    ratings.import_plan(rich.id, [top], source="old.csv", now=1)
    ratings.import_plan(other.id, parse_plan_csv(PLAN), source="p.csv", now=1)
    load(
        db,
        [
            canonical("cheap", appkey="rich", second=19),
            canonical("huge", appkey="rich", second=86_400, time="2019-09-09 09:00:01"),
            canonical("missed", appkey="rich", connected=False, time="2019-09-09 09:00:02"),
            canonical("o1", appkey="other", second=19, time="2019-09-09 09:00:03"),
            canonical("o2", appkey="other", second=45, time="2019-09-09 09:00:04"),
        ],
    )
    assert Rater(db).drain() == (4, 1)
    cheap, huge, missed = rows(db, rich.id)
    assert (cheap.cost_status, cheap.cost_nanos) == (CostStatus.FINAL, 19 * 999_999_999_999_999)
    assert (missed.cost_status, missed.cost_nanos) == (CostStatus.FINAL, 5_000_000)
    assert (huge.cost_status, huge.cost_nanos) == (CostStatus.PENDING, 0)
    assert [r.cost_nanos for r in rows(db, other.id)] == [50_000_000, 150_000_000]
    total, listed = ratings.unpriced(rich.id, limit=10)
    assert total == 1
    assert listed[0][0][0] == huge.id  # UnratedCdr: the id first
    assert listed[0][1] == (
        "cost 86399999999.9999136 of a 86400 s group_call call at 999999.999999999 per 1 s "
        "(plan version 1) is more than the largest storable cost 9223372036.854775807: "
        "import a plan with a lower unit_price"
    )
    assert ratings.unpriced(other.id, limit=10)[0] == 0
    assert {r.cdr_id for r in Outbox(db).list()} == {cheap.id, missed.id} | {
        r.id for r in rows(db, other.id)
    }
    assert Rater(db).drain() == (0, 0)  # set aside, not retried every batch
    assert rater_lag_is_zero(db)


def test_rerate_sets_aside_a_cost_too_large_to_store(db: Database) -> None:
    app = make_app(db, "app1").app
    ratings = RatingStore(db)
    ratings.import_plan(app.id, parse_plan_csv(PLAN), source="v1", now=1)
    load(
        db,
        [canonical("a", second=86_400), canonical("b", second=19, time="2019-09-09 09:00:01")],
    )
    assert Rater(db).drain() == (2, 0)
    top = Rate(Service.GROUP_CALL, "", 1, 999_999_999_999_999, 0)
    ratings.import_plan(app.id, [top], source="v2", now=2)
    report = rerate(db, app, T0, T0 + 60, dry_run=False)
    assert (report.changed, report.newly_pending) == (2, 1)
    assert report.cost_after_nanos == 19 * 999_999_999_999_999
    huge, small = rows(db, app.id)
    assert (huge.cost_status, small.cost_status) == (CostStatus.PENDING, CostStatus.FINAL)
    total, listed = ratings.unpriced(app.id, limit=1)
    assert total == 1
    assert "more than the largest storable cost" in listed[0][1]
