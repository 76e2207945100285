"""The storage contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.support.data import cdr, make_app, read_cdrs
from voicecdr.errors import Conflict, NotFound
from voicecdr.models import Language, VoiceGroup
from voicecdr.storage import AppStore, CdrWriter, Database, Outcome


@pytest.fixture
def database_url(any_database_url: str) -> str:
    """SQLite, PostgreSQL and Citus: these tests hold on every database."""
    return any_database_url


T0 = 1567990800  # 2019-09-09 09:00:00 Asia/Shanghai


def test_app_round_trip(db: Database) -> None:
    issued = make_app(db, "app1", language="zh", callback_url="https://example.com/dr")
    app = AppStore(db).get("app1")
    assert app == issued.app
    assert app.language is Language.ZH
    assert app.callback_url == "https://example.com/dr"
    assert AppStore(db).get("nope") is None
    assert [a.appkey for a in AppStore(db).list()] == ["app1"]


def test_appkey_is_unique(db: Database) -> None:
    make_app(db, "app1")
    with pytest.raises(Conflict, match="already taken"):
        make_app(db, "app1")


def test_update_app(db: Database) -> None:
    make_app(db, "app1")
    updated = AppStore(db).update("app1", {"rate_limit": 3.0, "timezone": "UTC"}, now=1)
    assert (updated.rate_limit, updated.timezone) == (3.0, "UTC")
    with pytest.raises(NotFound):
        AppStore(db).update("nope", {"rate_limit": 3.0}, now=1)


def test_store_is_idempotent_by_call_id(db: Database) -> None:
    app_id = make_app(db).app.id
    first = CdrWriter(db).store([(app_id, cdr("a")), (app_id, cdr("b"))], now=1)
    assert first == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    again = CdrWriter(db).store(
        [(app_id, cdr("a")), (app_id, cdr("b", second=5)), (app_id, cdr("c"))], now=2
    )
    assert again == [Outcome.DUPLICATE, Outcome.CONFLICT, Outcome.ACCEPTED]
    page = read_cdrs(db, app_id, VoiceGroup.GROUP_CALL, T0, T0, messageid=None, offset=0, limit=10)
    assert page.total == 3
    assert {r.second for r in page.rows} == {19}  # the conflicting copy did not overwrite


def test_repeats_inside_one_batch(db: Database) -> None:
    app_id = make_app(db).app.id
    outcomes = CdrWriter(db).store(
        [(app_id, cdr("a")), (app_id, cdr("a")), (app_id, cdr("a", second=3))], now=1
    )
    assert outcomes == [Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.CONFLICT]


def test_call_ids_are_scoped_per_app(db: Database) -> None:
    one = make_app(db, "one").app.id
    two = make_app(db, "two").app.id
    assert CdrWriter(db).store(
        [(one, cdr("a", appkey="one")), (two, cdr("a", appkey="two"))], now=1
    ) == [Outcome.ACCEPTED, Outcome.ACCEPTED]


def test_large_batch_spans_insert_chunks(db: Database) -> None:
    app_id = make_app(db).app.id
    batch = [(app_id, cdr(f"c{i}")) for i in range(1000)]
    assert set(CdrWriter(db).store(batch, now=1)) == {Outcome.ACCEPTED}
    assert set(CdrWriter(db).store(batch, now=1)) == {Outcome.DUPLICATE}


def test_query_orders_by_time_then_id_and_pages(db: Database) -> None:
    app_id = make_app(db).app.id
    times = [
        "2019-09-09 09:00:05",
        "2019-09-09 09:00:01",
        "2019-09-09 09:00:05",
        "2019-09-09 09:00:03",
    ]
    CdrWriter(db).store([(app_id, cdr(f"c{i}", time=t)) for i, t in enumerate(times)], now=1)
    page = read_cdrs(
        db, app_id, VoiceGroup.GROUP_CALL, T0, T0 + 60, messageid=None, offset=0, limit=10
    )
    assert [r.time - T0 for r in page.rows] == [1, 3, 5, 5]
    fives = [r.id for r in page.rows if r.time == T0 + 5]
    assert fives == sorted(fives)
    second = read_cdrs(
        db, app_id, VoiceGroup.GROUP_CALL, T0, T0 + 60, messageid=None, offset=2, limit=2
    )
    assert (second.total, [r.id for r in second.rows]) == (4, [r.id for r in page.rows[2:]])
    past = read_cdrs(
        db, app_id, VoiceGroup.GROUP_CALL, T0, T0 + 60, messageid=None, offset=10, limit=2
    )
    assert (past.total, past.rows) == (4, [])


def test_window_bounds_are_inclusive(db: Database) -> None:
    app_id = make_app(db).app.id
    times = [
        "2019-09-09 08:59:59",
        "2019-09-09 09:00:00",
        "2019-09-09 09:00:10",
        "2019-09-09 09:00:11",
    ]
    CdrWriter(db).store([(app_id, cdr(f"c{i}", time=t)) for i, t in enumerate(times)], now=1)
    page = read_cdrs(
        db, app_id, VoiceGroup.GROUP_CALL, T0, T0 + 10, messageid=None, offset=0, limit=10
    )
    assert [r.time - T0 for r in page.rows] == [0, 10]


def test_voice_groups_messageid_and_tenants_are_separate(db: Database) -> None:
    one = make_app(db, "one").app.id
    two = make_app(db, "two").app.id
    CdrWriter(db).store(
        [
            (one, cdr("g", appkey="one")),
            (one, cdr("v", appkey="one", service="verification")),
            (one, cdr("n", appkey="one", service="notification", messageid="m-2")),
            (two, cdr("x", appkey="two")),
        ],
        now=1,
    )

    def ids(app_id: int, group: VoiceGroup, messageid: str | None = None) -> int:
        return read_cdrs(
            db, app_id, group, T0, T0 + 60, messageid=messageid, offset=0, limit=10
        ).total

    assert ids(one, VoiceGroup.GROUP_CALL) == 1
    assert ids(one, VoiceGroup.VERIFICATION) == 2
    assert ids(one, VoiceGroup.VERIFICATION, "m-2") == 1
    assert ids(one, VoiceGroup.VERIFICATION, "m-9") == 0
    assert ids(two, VoiceGroup.GROUP_CALL) == 1
    assert ids(two, VoiceGroup.VERIFICATION) == 0


def test_stored_row_keeps_every_field(db: Database) -> None:
    app_id = make_app(db).app.id
    CdrWriter(db).store(
        [(app_id, cdr("a", ivr_result="12#", record_url="https://r.example.com/a.wav"))], now=1
    )
    (row,) = read_cdrs(
        db, app_id, VoiceGroup.GROUP_CALL, T0, T0, messageid=None, offset=0, limit=1
    ).rows
    assert (row.phone, row.country_code, row.show_phone, row.messageid) == (
        "810022458",
        "91",
        "085944247",
        "m-1",
    )
    assert (row.time, row.start_time, row.end_time, row.second) == (T0, T0 + 1, T0 + 20, 19)
    assert row.connected is True
    assert (row.ivr_result, row.record_url) == ("12#", "https://r.example.com/a.wav")
    assert (row.hangup_cause, row.hangup_disposition) == ("NORMAL_CLEARING", "recv_bye")
    assert (row.cycle, row.size, row.unit_price_nanos, row.cost_nanos) == (0, 0, 0, 0)


def test_concurrent_writers_store_each_call_once(db: Database) -> None:
    """Two writers with overlapping batches: every call_id accepted exactly once, the rest
    duplicates (SQLite queues the writers; PostgreSQL falls back to ON CONFLICT)."""
    app_id = make_app(db).app.id
    batches = [[(app_id, cdr(f"w{i}")) for i in range(start, start + 300)] for start in (0, 150)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda b: CdrWriter(db).store(b, now=1), batches))
    outcomes = [o for result in results for o in result]
    assert outcomes.count(Outcome.ACCEPTED) == 450
    assert outcomes.count(Outcome.DUPLICATE) == 150
    page = read_cdrs(db, app_id, VoiceGroup.GROUP_CALL, T0, T0, messageid=None, offset=0, limit=1)
    assert page.total == 450


@pytest.mark.postgres
def test_a_query_survives_its_pooled_connection_being_dropped(pg_url: str) -> None:
    """The query path checks connections out without a ping: a connection the server
    dropped (restart, idle timeout, failover) is replaced and the read run again."""
    db = Database(pg_url)
    try:
        app_id = make_app(db).app.id
        CdrWriter(db).store([(app_id, cdr("a"))], now=1)
        ask = {"messageid": None, "offset": 0, "limit": 10}
        assert read_cdrs(db, app_id, VoiceGroup.GROUP_CALL, T0, T0, **ask).total == 1
        with psycopg.connect(pg_url, autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert dropped is not None
        assert dropped[0] >= 1
        assert read_cdrs(db, app_id, VoiceGroup.GROUP_CALL, T0, T0, **ask).total == 1
    finally:
        db.close()
