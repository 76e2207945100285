"""Rate plans, the rater and re-rating against SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.support.data import canonical, make_app
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.models import CostStatus, ReceiptStatus, VoiceGroup
from voicecdr.rating import parse_plan_csv
from voicecdr.storage.outbox import Outbox
from voicecdr.storage.rating import RatingStore
from voicecdr.storage.store import Store
from voicecdr.workers.rater import Rater, rerate

T0 = 1567990800  # 2019-09-09 09:00:00 Asia/Shanghai
HEADER = "service,prefix,cycle,unit_price,basic_price\n"
PLAN = HEADER + "group_call,91,20,0.05,0.005\nverification,,1,0.012,0\n"


def load(store: Store, records: list[dict[str, Any]]) -> None:
    summary = Ingestor(store).ingest(Item(i, r) for i, r in enumerate(records))
    assert summary.accepted == len(records)


def rows(store: Store, app_id: int, group: VoiceGroup = VoiceGroup.GROUP_CALL) -> list[Any]:
    return store.query_cdrs(
        app_id, group, T0 - 60, T0 + 3600, messageid=None, offset=0, limit=100
    ).rows


def test_rater_prices_records_the_plan_and_receipts(store: Store) -> None:
    app = make_app(store, "app1", callback_url="https://hooks.example.com/dr").app
    quiet = make_app(store, "quiet").app  # no callback: priced, no receipt
    ratings = RatingStore(store)
    first = ratings.import_plan(app.id, parse_plan_csv(PLAN), source="p.csv", now=1)
    ratings.import_plan(quiet.id, parse_plan_csv(PLAN), source="p.csv", now=1)
    load(
        store,
        [
            canonical("a", second=19),
            canonical("b", connected=False, time="2019-09-09 09:00:05"),
            canonical("c", service="verification", second=3, time="2019-09-09 09:00:06"),
            canonical("q", appkey="quiet", second=45),
        ],
    )
    assert Rater(store, batch_size=2).drain() == (4, 0)
    connected, missed = rows(store, app.id)
    assert (connected.cost_status, connected.cycle, connected.size) == (CostStatus.FINAL, 20, 1)
    assert (connected.unit_price_nanos, connected.cost_nanos) == (50_000_000, 50_000_000)
    assert (missed.size, missed.cost_nanos, missed.basic_price_nanos) == (0, 5_000_000, 5_000_000)
    (verification,) = rows(store, app.id, VoiceGroup.VERIFICATION)
    assert (verification.size, verification.cost_nanos) == (3, 36_000_000)
    (q,) = rows(store, quiet.id)
    assert (q.size, q.cost_nanos) == (3, 150_000_000)
    listed = Outbox(store).list()
    assert sorted(r.cdr_id for r in listed) == sorted([connected.id, missed.id, verification.id])
    assert {r.status for r in listed} == {ReceiptStatus.PENDING}
    assert ratings.plans(app.id)[0].id == first.id
    assert Rater(store).drain() == (0, 0)  # nothing priced twice


def test_unpriced_cdrs_wait_with_a_reason_until_a_plan_covers_them(store: Store) -> None:
    app = make_app(store, "app1").app
    ratings = RatingStore(store)
    load(store, [canonical("a"), canonical("n", service="notification", second=5)])
    assert Rater(store).drain() == (0, 2)
    total, listed = ratings.unpriced(app.id, limit=10)
    assert total == 2
    assert all("no rate plan" in reason for _, reason in listed)
    ratings.import_plan(app.id, parse_plan_csv(PLAN), source="v1", now=2)
    assert Rater(store).drain() == (1, 1)  # the group call is now priced
    total, listed = ratings.unpriced(app.id, limit=10)
    assert total == 1
    assert listed[0][1] == "no rate for notification calls to 91810022458 in plan version 1"
    ratings.import_plan(app.id, parse_plan_csv(PLAN + "*,,6,0.02,0\n"), source="v2", now=3)
    assert Rater(store).drain() == (1, 0)
    assert ratings.unpriced(app.id, limit=10)[0] == 0
    assert [p.version for p in ratings.plans(app.id)] == [1, 2]
    assert rater_lag_is_zero(store)


def rater_lag_is_zero(store: Store) -> bool:
    return RatingStore(store).lag(10**10) == 0


def test_rerate_dry_run_then_apply(store: Store) -> None:
    app = make_app(store, "app1", callback_url="https://hooks.example.com/dr").app
    ratings = RatingStore(store)
    ratings.import_plan(app.id, parse_plan_csv(PLAN), source="v1", now=1)
    load(
        store,
        [
            canonical("a", second=19),
            canonical("b", second=45, time="2019-09-09 09:10:00"),
            canonical("late", second=5, time="2019-09-10 09:00:00"),
        ],
    )
    Rater(store).drain()
    receipts_before = len(Outbox(store).list())
    ratings.import_plan(app.id, parse_plan_csv(PLAN.replace("0.05", "0.04")), source="v2", now=2)

    dry = rerate(store, app, T0, T0 + 3600, dry_run=True)
    assert (dry.records, dry.changed) == (2, 2)
    assert (dry.cost_before_nanos, dry.cost_after_nanos) == (200_000_000, 160_000_000)
    assert rows(store, app.id)[0].cost_nanos == 50_000_000  # nothing written

    done = rerate(store, app, T0, T0 + 3600, dry_run=False)
    assert (done.changed, done.receipts) == (2, 0)
    assert [r.cost_nanos for r in rows(store, app.id)] == [40_000_000, 120_000_000]
    assert len(Outbox(store).list()) == receipts_before  # no resend unless asked

    again = rerate(store, app, T0, T0 + 3600, dry_run=False, resend_receipts=True)
    assert again.changed == 0  # already current

    ratings.import_plan(app.id, parse_plan_csv(PLAN.replace("0.05", "0.03")), source="v3", now=3)
    resent = rerate(store, app, T0, T0 + 3600, dry_run=False, resend_receipts=True)
    assert (resent.changed, resent.receipts) == (2, 2)
    assert len(Outbox(store).list()) == receipts_before + 2


def test_rerate_can_make_cdrs_pending_again(store: Store) -> None:
    app = make_app(store, "app1").app
    ratings = RatingStore(store)
    ratings.import_plan(app.id, parse_plan_csv(PLAN), source="v1", now=1)
    load(store, [canonical("a")])
    Rater(store).drain()
    ratings.import_plan(
        app.id, parse_plan_csv(HEADER + "verification,,1,0.01,0\n"), source="v2", now=2
    )
    report = rerate(store, app, T0, T0 + 60, dry_run=False)
    assert (report.changed, report.newly_pending) == (1, 1)
    (row,) = rows(store, app.id)
    assert (row.cost_status, row.cost_nanos) == (CostStatus.PENDING, 0)
    assert ratings.unpriced(app.id, limit=1)[0] == 1
