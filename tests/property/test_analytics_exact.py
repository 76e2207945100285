"""Property: after any history of writes, an analytics report read from the rollups equals
the plain GROUP BY over the CDRs and the sums computed in the test from the raw rows, on
SQLite and PostgreSQL.

A history is applied through the product's own write paths: batches stored by
``CdrWriter`` (new calls, exact duplicates, conflicts, late arrivals), the rater, new rate
plans and re-rating, retention and timezone changes. The calls cluster around the
instants where calendars turn (DST changes, half- and quarter-hour-offset midnights, a
year with an ISO week 53), so the edges of hours and days are where the data is.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TEMPLATE
from tests.support.analytics import ZONES, assert_exact, assert_rollups_as_rebuilt
from tests.support.data import make_app
from tests.support.postgres import PostgresServer
from tests.support.shared_database import SharedDatabase
from voicecdr.analytics import AnalyticsQuery, Calendar, Dimension, Filters
from voicecdr.ingest.canonical import validate
from voicecdr.ingest.timebounds import ANY_TIME
from voicecdr.models import App, CostStatus, Service, VoiceGroup
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import AppStore, CdrWriter, Database, RatingStore, migrate, prune
from voicecdr.timefmt import zone
from voicecdr.workers.rater import Rater, rerate

APPS = 3
NOW = 1_798_000_000  # 2026-12-23, after every call


def _utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())  # type: ignore[misc]


# Where calendars turn.
ANCHORS = (
    _utc(2026, 3, 8, 7),  # New York springs forward (02:00 EST)
    _utc(2026, 11, 1, 6),  # New York falls back: 01:00 twice
    _utc(2026, 3, 29, 1),  # London springs forward
    _utc(2026, 10, 25, 1),  # London falls back
    _utc(2026, 4, 4, 15),  # Lord Howe goes back half an hour
    _utc(2026, 10, 3, 15, 30),  # Lord Howe goes forward half an hour
    _utc(2026, 11, 30, 18, 30),  # midnight in Kolkata: December begins
    _utc(2026, 12, 31, 18, 15),  # midnight in Kathmandu: 2027 begins, in ISO week 2026-W53
    _utc(2027, 1, 1),  # the year ends in UTC and London
)
# (country code, phone): the regions vary within the shared codes 1 and 44, some numbers
# come in international form (no country code), one of code 1 has no region.
NUMBERS = (
    ("91", "9812345678"),
    ("91", "2212345678"),
    ("44", "2071234567"),
    ("1", "2125550100"),
    ("1", "4165550100"),
    (None, "+1 (416) 555-0199"),
    (None, "0044 1534 456789"),
    ("44", "+44 1481 256789"),
    ("1", "9995550100"),
)
REGIONS = ("IN", "GB", "US", "CA", "JE", "GG", "ZZ")
CAUSES = (("NORMAL_CLEARING", "recv_bye"), ("USER_BUSY", "recv_cancel"), ("NO_ANSWER", "send_bye"))
# Plans the history switches between: prices and prefixes change, and a destination's
# rate disappears (its calls go back to pending on re-rating).
PLANS = (
    "*,91,60,0.01,0\n*,9198,1,0.02,0.001\n*,44,30,0.03,0\n*,1,6,0.005,0\n",
    "*,91,60,0.015,0\n*,919,1,0.02,0\n*,1,6,0.004,0.002\n",
    "*,,20,0.05,0.005\nverification,91,1,0.1,0\n",
    "notification,44,1,0.2,0\n",
)
HEADER = "service,prefix,cycle,unit_price,basic_price\n"

# Most calls and window edges fall within an hour and a half of an anchor.
offsets = st.one_of(
    st.sampled_from([0, -1, 1, -900, 900, -1800, 1800, -3600, 3600, -86400, 86400]),
    st.integers(-5400, 5400),
    st.integers(-2 * 86400, 2 * 86400),
)


@dataclass(frozen=True)
class Call:
    """A call the history may store, for any app, and its conflicting variant."""

    placed: int
    service: Service
    connected: bool
    billsec: int
    wait: int | None  # placing to answering; None: no start_time
    number: int
    cause: int

    def cdr(self, call_id: str, appkey: str, variant: int) -> Any:
        billsec = self.billsec + 7 * variant if self.connected else 0
        country, phone = NUMBERS[self.number]
        cause, disposition = CAUSES[(self.cause + variant) % len(CAUSES)]
        answered = None if self.wait is None else self.placed + self.wait
        record = {
            "call_id": call_id,
            "appkey": appkey,
            "service": self.service.wire_name,
            "messageid": f"m-{call_id}",
            "phone": phone,
            **({} if country is None else {"country_code": country}),
            "show_phone": "085944247",
            "time": _iso(self.placed),
            "start_time": None if answered is None else _iso(answered),
            "end_time": None if answered is None else _iso(answered + billsec),
            "second": billsec,
            "connected": self.connected,
            "hangup_cause": cause,
            "hangup_disposition": disposition,
        }
        return validate(record, ANY_TIME)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


@st.composite
def calls(draw: st.DrawFn) -> Call:
    placed = draw(st.sampled_from(ANCHORS)) + draw(offsets)
    connected = draw(st.booleans())
    if connected:
        billsec = draw(st.sampled_from([0, 1, 5, 6, 7, 59, 61, 3600]))
        wait: int | None = draw(st.integers(0, 45))
    else:
        billsec = 0
        wait = draw(st.none() | st.integers(0, 45))
    return Call(
        placed,
        draw(st.sampled_from(Service)),
        connected,
        billsec,
        wait,
        draw(st.integers(0, len(NUMBERS) - 1)),
        draw(st.integers(0, len(CAUSES) - 1)),
    )


# -- the history ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    items: list[tuple[int, int, int]]  # app, call, variant (0 as first told, 1 conflicting)


@dataclass(frozen=True)
class Rate:
    pass


@dataclass(frozen=True)
class Replan:
    app: int
    plan: int
    window: tuple[int, int] | None  # re-rated after the import; None: not re-rated


@dataclass(frozen=True)
class Prune:
    cutoff: int


@dataclass(frozen=True)
class Rezone:
    app: int
    timezone: str


@dataclass(frozen=True)
class Check:
    pass


Step = Store | Rate | Replan | Prune | Rezone | Check

windows = st.one_of(
    st.just((0, 2**40)),
    st.tuples(st.sampled_from(ANCHORS), offsets, st.integers(0, 3 * 86400)).map(
        lambda t: (t[0] + t[1], t[0] + t[1] + t[2])
    ),
)


def steps(pool: int) -> st.SearchStrategy[Step]:
    item = st.tuples(
        st.integers(0, APPS - 1), st.integers(0, pool - 1), st.sampled_from([0, 0, 0, 1])
    )
    return st.one_of(
        st.lists(item, min_size=1, max_size=10).map(Store),
        st.just(Rate()),
        st.builds(
            Replan,
            st.integers(0, APPS - 1),
            st.integers(0, len(PLANS) - 1),
            st.none() | windows,
        ),
        st.builds(Prune, st.sampled_from(ANCHORS).map(lambda a: a - 86400) | st.just(0)),
        st.builds(Rezone, st.integers(0, APPS - 1), st.sampled_from(ZONES)),
        st.just(Check()),
    )


# -- the questions ---------------------------------------------------------------------------

_DIMENSIONS = list(Dimension)
GROUPINGS = [
    (),
    *((d,) for d in _DIMENSIONS),
    *((a, b) for a, b in itertools.permutations(_DIMENSIONS, 2) if not (a.is_time and b.is_time)),
]
LENGTHS = [1, 899, 900, 1800, 3600, 5400, 86_400, 90_000, 3 * 86_400, 40 * 86_400]
ALIGNMENTS = [None, Dimension.HOUR, Dimension.DAY, Dimension.WEEK, Dimension.MONTH]

filters = st.builds(
    Filters,
    st.none() | st.sampled_from(Service),
    st.none() | st.sampled_from(VoiceGroup),
    st.none() | st.sampled_from(["91", "44", "1", "999"]),
    st.none() | st.booleans(),
    st.none() | st.sampled_from(CostStatus),
    st.none() | st.sampled_from(REGIONS),
)


@st.composite
def questions(draw: st.DrawFn, timezone: str, near: tuple[int, ...]) -> AnalyticsQuery:
    """A question about calls around ``near`` (the anchors and the calls' own times)."""
    points = st.sampled_from(near)
    start = draw(points) + draw(offsets)
    if draw(st.booleans()):
        end = start + draw(st.sampled_from(LENGTHS) | st.integers(1, 10 * 86_400))
    else:  # both edges near where calls are
        start, end = sorted((start, draw(points) + draw(offsets)))
        end = max(end, start + 1)
    unit = draw(st.sampled_from(ALIGNMENTS))
    if unit is not None:  # on the app's own calendar, as most questions are asked
        calendar = Calendar(zone(timezone))
        start, end = calendar.start(unit, start), calendar.start(unit, end)
        if end <= start:
            end = calendar.start(unit, start + 32 * 86_400)
    grouping = draw(
        st.sampled_from(GROUPINGS)
        # The rollups serve these by rollup_hours, and prefixes with service and country.
        | st.sampled_from([(), (Dimension.HOUR,), (Dimension.DAY,), (Dimension.MONTH,)])
        | st.sampled_from(
            [
                (Dimension.PREFIX,),
                (Dimension.PREFIX, Dimension.SERVICE),
                (Dimension.COUNTRY_CODE, Dimension.PREFIX),
                (Dimension.REGION, Dimension.PREFIX),
                (Dimension.DAY, Dimension.PREFIX),
                (Dimension.DAY, Dimension.REGION),
                (Dimension.REGION,),
            ]
        )
    )
    chosen = draw(st.just(Filters()) | filters)
    return AnalyticsQuery(start, end, grouping, chosen, draw(st.booleans()))


# -- the databases ---------------------------------------------------------------------------

Fresh = Callable[[], AbstractContextManager[Database]]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fresh]:
    """A migrated database with no rows per example."""
    names = itertools.count()
    if request.param == "sqlite":
        template = tmp_path / "template.db"
        db = Database(f"sqlite:///{template}")
        migrate.upgrade(db)
        db.close()

        @contextmanager
        def sqlite() -> Iterator[Database]:
            path = tmp_path / f"example{next(names)}.db"
            shutil.copy(template, path)
            db = Database(f"sqlite:///{path}")
            try:
                yield db
            finally:
                db.close()
                path.unlink()

        yield sqlite
        return
    # One database for the test, emptied per example: making one per example costs more
    # than the example.
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"voicecdr_exact_{os.getpid()}"
    shared = SharedDatabase(
        lambda: server.create_database(name, template=TEMPLATE),
        lambda: server.drop_database(name),
    )

    @contextmanager
    def postgresql() -> Iterator[Database]:
        db = Database(shared.empty())
        try:
            yield db
        finally:
            db.close()

    yield postgresql
    server.drop_database(name)


# -- the property ----------------------------------------------------------------------------


class History:
    def __init__(self, db: Database, pool: list[Call], zones: list[str]) -> None:
        self.db = db
        self.pool = pool
        self.appkeys = [f"app{i}" for i in range(APPS)]
        pairs = zip(self.appkeys, zones, strict=True)
        self.ids = [make_app(db, k, timezone=z).app.id for k, z in pairs]
        self.writer = CdrWriter(db)

    def app(self, i: int) -> App:
        found = AppStore(self.db).get(self.appkeys[i])
        assert found is not None
        return found

    def apply(self, step: Step) -> None:
        db = self.db
        if isinstance(step, Store):
            batch = [
                (self.ids[a], self.pool[c].cdr(f"call-{c}", self.appkeys[a], v))
                for a, c, v in step.items
            ]
            self.writer.store(batch, now=NOW)
        elif isinstance(step, Rate):
            Rater(db).drain()
        elif isinstance(step, Replan):
            rates = parse_plan_csv(HEADER + PLANS[step.plan])
            RatingStore(db).import_plan(self.ids[step.app], rates, source="test", now=NOW)
            if step.window is not None:
                rerate(db, self.app(step.app), *step.window, dry_run=False)
        elif isinstance(step, Prune):
            prune(db, step.cutoff, sleep=lambda _: None)
        elif isinstance(step, Rezone):
            AppStore(db).update(self.appkeys[step.app], {"timezone": step.timezone}, now=NOW)

    def check(self, data: st.DataObject) -> None:
        near = ANCHORS + tuple(c.placed for c in self.pool)
        everything = AnalyticsQuery(min(near) - 3 * 86_400, max(near) + 3 * 86_400)
        with self.db.reader.connect() as conn:
            stored = dict(
                conn.execute(sa.text("SELECT app_id, count(*) FROM cdrs GROUP BY app_id")).all()
            )
        for i in range(APPS):
            app = self.app(i)
            # Each app's report counts its own calls, all of them (the apps share call ids).
            assert assert_exact(self.db, app, everything).total.attempts == stored.get(app.id, 0)
            for _ in range(2):
                assert_exact(self.db, app, data.draw(questions(app.timezone, near)))
        assert_rollups_as_rebuilt(self.db, self.ids)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pool=st.lists(calls(), min_size=1, max_size=20),
    zones=st.lists(st.sampled_from(ZONES), min_size=APPS, max_size=APPS),
    data=st.data(),
)
def test_reports_equal_the_plain_group_by_after_any_history(
    fresh: Fresh, pool: list[Call], zones: list[str], data: st.DataObject
) -> None:
    history_steps = data.draw(st.lists(steps(len(pool)), min_size=1, max_size=10))
    with fresh() as db:
        history = History(db, pool, zones)
        for step in history_steps:
            history.apply(step)
            if isinstance(step, Check):
                history.check(data)
        history.apply(Rate())
        history.check(data)


def test_half_hour_clock_changes_cut_hours_where_they_happen(db: Database) -> None:
    # Found by the property above: Lord Howe's clocks change by half an hour, and the
    # rollups' hour held calls from before its own start (counted twice by a window
    # ending inside it, and labelled with the offset before the change).
    back, forward = ANCHORS[4], ANCHORS[5]
    times = [back - 1800, back - 1, back, back + 1799, back + 1800]
    times += [forward - 1800, forward - 1, forward, forward + 1799, forward + 1800]
    pool = [Call(t, Service.GROUP_CALL, True, 7, 3, 0, 0) for t in times]
    history = History(db, pool, ["Australia/Lord_Howe"] * APPS)
    history.apply(Store([(0, i, 0) for i in range(len(pool))]))
    app = history.app(0)
    hours = (Dimension.HOUR,)
    for edge in (back, forward):
        for end in (edge + 900, edge + 1800, edge + 2700):
            assert_exact(db, app, AnalyticsQuery(edge - 7200, end))
            assert_exact(db, app, AnalyticsQuery(edge - 7200, end, hours))
        assert_exact(db, app, AnalyticsQuery(edge + 900, edge + 7200))
    report = assert_exact(db, app, AnalyticsQuery(back - 3600, forward + 3600, hours))
    assert [(g.key[0], g.sums.attempts) for g in report.groups] == [
        ("2026-04-05T01:00+11:00", 2),  # 01:30 and 01:59:59 before going back
        ("2026-04-05T01:30+10:30", 2),  # then 01:30 again, now +10:30, and 01:59:59
        ("2026-04-05T02:00+10:30", 1),
        ("2026-10-04T01:00+10:30", 2),
        ("2026-10-04T02:30+11:00", 2),  # 02:00 became 02:30
        ("2026-10-04T03:00+11:00", 1),
    ]
