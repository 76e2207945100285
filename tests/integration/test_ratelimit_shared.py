"""The rate limit is shared state: two limiters (as two server processes would hold) on
the same database see one budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.data import cdr, make_app
from voicecdr.config import Settings
from voicecdr.errors import TokenRefused
from voicecdr.models import Service, VoiceGroup
from voicecdr.ratelimit import Decision, Quota
from voicecdr.storage import CdrWriter, Database, PageReader
from voicecdr.storage.pages import Page, PageRequest, Stamp
from voicecdr.storage.ratelimit import (
    PRUNE_EVERY,
    Admission,
    SharedRateLimiter,
    default_state_path,
)


def limiters(settings: Settings) -> tuple[SharedRateLimiter, SharedRateLimiter, list[Database]]:
    dbs = [Database(settings.database_url), Database(settings.database_url)]
    return (
        SharedRateLimiter(dbs[0], settings.rate_limit_state),
        SharedRateLimiter(dbs[1], settings.rate_limit_state),
        dbs,
    )


def test_two_processes_share_one_budget(settings: Settings) -> None:
    one, two, dbs = limiters(settings)
    try:
        quota = Quota(1)
        assert one.acquire("k", quota, 100.0).allowed
        denied = two.acquire("k", quota, 100.4)
        assert not denied.allowed
        assert abs(denied.retry_after - 0.6) < 1e-6
        assert denied.retry_after_header == "1"
        assert two.acquire("k", quota, 101.0).allowed
        assert not one.acquire("k", quota, 101.5).allowed
        assert one.acquire("other", quota, 101.5).allowed  # keys are independent
    finally:
        for limiter in (one, two):
            limiter.close()
        for db in dbs:
            db.close()


def test_higher_rates_and_bursts(settings: Settings) -> None:
    one, two, dbs = limiters(settings)
    try:
        quota = Quota(10, burst=3)
        results = [(one if i % 2 else two).acquire("k", quota, 50.0).allowed for i in range(5)]
        assert results == [True, True, True, False, False]
        assert one.acquire("k", quota, 50.1).allowed  # one interval later, one more
    finally:
        for limiter in (one, two):
            limiter.close()
        for db in dbs:
            db.close()


def test_sqlite_state_defaults_to_memory_backed_file(tmp_path: Path) -> None:
    path = default_state_path(str(tmp_path / "x.db"))
    assert path.name.startswith("ratelimit-")
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path == default_state_path(str(tmp_path / "x.db"))
    assert path != default_state_path(str(tmp_path / "y.db"))


def test_admit_takes_a_token_unless_locked_out(settings: Settings, db: Database) -> None:
    limiter = SharedRateLimiter(db, settings.rate_limit_state)
    # Only PostgreSQL keeps the state where a page's own statement can carry the token.
    carried = limiter.admission("q", Quota(1), LOCKS, lambda: 0.0).carried_sql
    assert (carried is not None) is (db.dialect == "postgresql")
    try:
        quota = Quota(1)
        locks = (("lock:app", Quota(1 / 60, burst=2)), ("lock:addr", Quota(1 / 60, burst=5)))
        assert limiter.admit("q", quota, locks, lambda: 100.0) == Decision(True)
        refused = limiter.admit("q", quota, locks, lambda: 100.25)
        assert (refused.allowed, refused.locked_out) == (False, False)
        assert abs(refused.retry_after - 0.75) < 1e-6
        # Two failures exhaust the appkey's lock (burst 2): the next request is locked
        # out, whatever the query budget says, and takes no query token.
        for _ in range(2):
            assert limiter.acquire("lock:app", locks[0][1], 101.0).allowed
        locked = limiter.admit("q", quota, locks, lambda: 101.0)
        assert (locked.allowed, locked.locked_out) == (False, True)
        assert locked.retry_after == pytest.approx(60 - 0.01)  # one failure's age, less slack
        assert limiter.admit("q", quota, locks, lambda: 102.0).locked_out
        # One failure ages out after 60 s: admitted again, and the query budget is
        # untouched by the locked-out requests.
        assert limiter.admit("q", quota, locks, lambda: 161.0) == Decision(True)
        assert not limiter.acquire("q", quota, 161.5).allowed
        # The other lock (per address) locks out just the same.
        for _ in range(5):
            assert limiter.acquire("lock:addr", locks[1][1], 200.0).allowed
        assert limiter.admit("q", quota, locks, lambda: 200.0).locked_out
    finally:
        limiter.close()


T0 = 1_795_700_100
LOCKS = (("lock:app", Quota(1 / 60, burst=2)), ("lock:addr", Quota(1 / 60, burst=5)))


@pytest.mark.postgres
def test_a_page_read_takes_the_token_and_reads_nothing_when_refused(pg_url: str) -> None:
    db = Database(pg_url)
    limiter = SharedRateLimiter(db)
    try:
        app_id = make_app(db).app.id
        calls = [cdr(f"c{i}", connected=False)._replace(time=T0 + i) for i in range(5)]
        CdrWriter(db).store(
            [(app_id, c._replace(service=Service.GROUP_CALL)) for c in calls], now=1
        )
        looked: list[int] = []

        def lookup(stamps: list[Stamp]) -> list[None]:
            looked.append(len(stamps))
            return [None] * len(stamps)

        reader = PageReader(db)

        def read(offset: int, token: Admission) -> Page[None]:
            request = PageRequest(
                app_id, VoiceGroup.GROUP_CALL, T0, T0 + 3600, offset, 10, token=token
            )
            return reader.read(request, lookup)

        def admission(at: float) -> Admission:
            return limiter.admission("q", Quota(1), LOCKS, lambda: at)

        page = read(0, admission(100.0))
        assert (page.total, len(page.rows), looked) == (5, 5, [5])
        refused = admission(100.25)
        with pytest.raises(TokenRefused):
            read(0, refused)
        assert looked == [5]  # nothing read
        decision = limiter.refused(refused)
        assert (decision.allowed, decision.locked_out) == (False, False)
        assert decision.retry_after == pytest.approx(0.75)
        # A deep page of a window never sought: the token goes first, by itself.
        with pytest.raises(TokenRefused):
            read(400, admission(100.5))
        assert read(400, admission(101.0)).total == 5
        # Locked out (two failed authentications of the appkey): refused, whatever the
        # budget says, and refused() says why.
        for _ in range(2):
            assert limiter.acquire("lock:app", LOCKS[0][1], 105.0).allowed
        locked = admission(105.0)
        with pytest.raises(TokenRefused):
            read(0, locked)
        assert limiter.refused(locked).locked_out
        assert looked == [5]
    finally:
        limiter.close()
        db.close()


def _state_keys(settings: Settings, db: Database) -> set[str]:
    if db.dialect == "postgresql":
        engine = db.reader
    else:
        engine = sa.create_engine(f"sqlite:///{settings.rate_limit_state}")
    with engine.connect() as conn:
        keys = set(conn.execute(sa.text("SELECT key FROM rate_limit_state")).scalars())
    if db.dialect != "postgresql":
        engine.dispose()
    return keys


def test_the_state_of_keys_that_ran_out_is_pruned(settings: Settings, db: Database) -> None:
    # Every failed authentication from a new address or appkey makes a key: an attacker
    # must not be able to grow the shared state (memory, on SQLite) without bound.
    limiter = SharedRateLimiter(db, settings.rate_limit_state)
    every, t0 = PRUNE_EVERY, 1000.0
    failures = Quota(1 / every, burst=3)  # each failure's state lasts `every` seconds
    try:
        for i in range(5):
            assert limiter.acquire(f"authfail:{i}", failures, t0).allowed
        assert limiter.acquire("query:app", Quota(1), t0).allowed
        assert len(_state_keys(settings, db)) == 6
        # Pruned at most once every PRUNE_EVERY seconds (a DELETE per failure would cost).
        assert limiter.acquire("authfail:new", failures, t0 + every - 1).allowed
        assert len(_state_keys(settings, db)) == 7
        # Past their TAT a key's state says nothing a missing one would not: gone.
        assert limiter.acquire("authfail:last", failures, t0 + every + 1).allowed
        assert _state_keys(settings, db) == {"authfail:new", "authfail:last"}
        # ... and nothing else changed: a pruned key starts afresh, as it would have.
        assert limiter.acquire("authfail:0", Quota(1 / every, burst=1), t0 + every + 1).allowed
        assert not limiter.acquire("authfail:0", Quota(1 / every, burst=1), t0 + every + 2).allowed
    finally:
        limiter.close()
