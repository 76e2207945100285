"""PostgreSQL: rollups stay exact while CDRs are stored and rated, re-rated and pruned, and
the app's timezone changes, all at once. A writer reads the app's timezone ``FOR SHARE``
in its transaction (storage/rollups.py), so a timezone change waits for writers in flight
and writers after it bucket by the new zone; without that, a writer's calls would land
in the old zone's hours after the rebuild."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TypeVar

import pytest

from tests.support.analytics import assert_exact, assert_rollups_as_rebuilt
from tests.support.data import canonical, make_app
from voicecdr.analytics import AnalyticsQuery, Dimension, Filters
from voicecdr.errors import StorageError
from voicecdr.ingest.canonical import validate
from voicecdr.ingest.timebounds import ANY_TIME
from voicecdr.models import CostStatus
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import AppStore, CdrWriter, Database, RatingStore, prune
from voicecdr.workers.rater import Rater, rerate

pytestmark = pytest.mark.postgres
T = TypeVar("T")

DAY = 86_400
FIRST = 1_793_491_200 - 5 * DAY  # 2026-10-27 UTC; New York falls back on 2026-11-01
DAYS = 6
ZONES = ["America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
PLANS = [
    "service,prefix,cycle,unit_price,basic_price\n*,91,60,0.01,0\n*,44,6,0.02,0\n",
    "service,prefix,cycle,unit_price,basic_price\n*,9198,1,0.03,0\n",
]


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    db = Database(pg_url)
    yield db
    db.close()


def _batch(rng: random.Random, appkey: str, thread: int, n: int, seq: int) -> list[object]:
    records = []
    for i in range(n):
        connected = rng.random() < 0.6
        second = rng.choice([0, 3, 6, 40]) if connected else 0
        # Mostly new calls; now and then one told again (a duplicate).
        number = seq * n + i if rng.random() < 0.9 else rng.randrange(max(1, seq * n))
        placed = FIRST + (number * 7919 + thread * 104_729) % (DAYS * DAY)
        records.append(
            canonical(
                f"t{thread}-{number}",
                appkey=appkey,
                time=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(placed)),
                tz="UTC",
                connected=connected,
                second=second,
                phone=("9812345", "2212345")[number % 2],
                country_code=("91", "44")[number % 3 == 0],
            )
        )
    return records


def again_on_deadlock(action: Callable[[], T]) -> T:
    """``action`` until it is not a deadlock's victim. A victim's transaction rolls back
    whole, and it is run again: as the rater's loop does (workers/runner.py), and as an
    operator runs a command again. (A prune dropping a partition whose rows a rater batch
    or a re-rating touches, or holding an app row a timezone change waits for, can make
    them victims.)"""
    while True:
        try:
            return action()
        except StorageError as exc:
            if "Deadlock" not in str(exc):
                raise


def test_rollups_stay_exact_under_concurrent_writes_rating_prune_and_timezone_changes(
    db: Database,
) -> None:
    apps = {key: make_app(db, key, timezone="UTC").app for key in ("a", "b")}
    ratings = RatingStore(db)
    for app in apps.values():
        ratings.import_plan(app.id, parse_plan_csv(PLANS[0]), source="t", now=1)
    stop = threading.Event()
    failures: list[BaseException] = []
    changed = threading.Event()  # the timezone changes, re-rating and prunes are over

    def run(work: Callable[[], None]) -> Callable[[], None]:
        def guarded() -> None:
            try:
                work()
            except BaseException as exc:
                failures.append(exc)
                stop.set()

        return guarded

    def ingest(thread: int) -> Callable[[], None]:
        def work() -> None:
            rng = random.Random(thread)
            writer = CdrWriter(db)
            # Storing before, throughout and after the changes.
            for seq in itertools.count():
                if changed.is_set() and seq >= 20:
                    return
                key = "ab"[seq % 2]
                batch = [
                    (apps[key].id, validate(r, ANY_TIME)) for r in _batch(rng, key, thread, 40, seq)
                ]
                writer.store(batch, now=FIRST + DAYS * DAY)

        return work

    def rate() -> None:
        rater = Rater(db, batch_size=100)
        while not stop.is_set():
            if again_on_deadlock(rater.run_once) == (0, 0):
                time.sleep(0.01)

    def rezone() -> None:
        for tz in ZONES:
            time.sleep(0.3)
            again_on_deadlock(partial(AppStore(db).update, "a", {"timezone": tz}, now=1))

    def replan() -> None:
        for plan in (PLANS[1], PLANS[0]):
            time.sleep(0.5)
            ratings.import_plan(apps["a"].id, parse_plan_csv(plan), source="t", now=2)
            again_on_deadlock(
                lambda: rerate(db, apps["a"], FIRST, FIRST + DAYS * DAY, dry_run=False)
            )

    def cut() -> None:
        for days in (1, 2):
            time.sleep(0.7)
            prune(db, FIRST + days * DAY)

    writers = [threading.Thread(target=run(ingest(t))) for t in range(3)]
    others = [threading.Thread(target=run(w)) for w in (rezone, replan, cut)]
    rater = threading.Thread(target=run(rate))
    for t in [*writers, *others, rater]:
        t.start()
    for t in others:
        t.join()
    changed.set()
    for t in writers:
        t.join()
    stop.set()
    rater.join()
    assert failures == [], "\n".join(f"{f}: {f.__cause__}" for f in failures)
    Rater(db).drain()

    assert_rollups_as_rebuilt(db, [a.id for a in apps.values()])
    for key in apps:
        app = AppStore(db).get(key)
        assert app is not None
        assert app.timezone == (ZONES[-1] if key == "a" else "UTC")
        whole = (FIRST, FIRST + DAYS * DAY)
        assert assert_exact(db, app, AnalyticsQuery(*whole)).total.attempts > 0
        for query in [
            AnalyticsQuery(*whole, (Dimension.HOUR,)),
            AnalyticsQuery(*whole, (Dimension.DAY, Dimension.COUNTRY_CODE), compare=True),
            AnalyticsQuery(FIRST + 2 * DAY + 1234, FIRST + 5 * DAY - 99, (Dimension.PREFIX,)),
            AnalyticsQuery(*whole, (), Filters(cost_status=CostStatus.PENDING)),
        ]:
            assert_exact(db, app, query)
