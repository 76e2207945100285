"""The rate limit is shared state: two limiters (as two server processes would hold) on
the same database see one budget."""

from __future__ import annotations

from pathlib import Path

from voicecdr.config import Settings
from voicecdr.ratelimit import Decision, Quota
from voicecdr.storage.ratelimit import SharedRateLimiter, default_state_path
from voicecdr.storage.store import Store


def limiters(settings: Settings) -> tuple[SharedRateLimiter, SharedRateLimiter, list[Store]]:
    stores = [Store(settings.database_url), Store(settings.database_url)]
    return (
        SharedRateLimiter(stores[0], settings.rate_limit_state),
        SharedRateLimiter(stores[1], settings.rate_limit_state),
        stores,
    )


def test_two_processes_share_one_budget(settings: Settings) -> None:
    one, two, stores = limiters(settings)
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
        for store in stores:
            store.close()


def test_higher_rates_and_bursts(settings: Settings) -> None:
    one, two, stores = limiters(settings)
    try:
        quota = Quota(10, burst=3)
        results = [(one if i % 2 else two).acquire("k", quota, 50.0).allowed for i in range(5)]
        assert results == [True, True, True, False, False]
        assert one.acquire("k", quota, 50.1).allowed  # one interval later, one more
    finally:
        for limiter in (one, two):
            limiter.close()
        for store in stores:
            store.close()


def test_sqlite_state_defaults_to_memory_backed_file(tmp_path: Path) -> None:
    path = default_state_path(str(tmp_path / "x.db"))
    assert path.name.startswith("ratelimit-")
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path == default_state_path(str(tmp_path / "x.db"))
    assert path != default_state_path(str(tmp_path / "y.db"))


def test_admit_takes_a_token_unless_locked_out(settings: Settings, store: Store) -> None:
    limiter = SharedRateLimiter(store, settings.rate_limit_state)
    try:
        quota = Quota(1)
        locks = (("lock:app", Quota(1 / 60, burst=2)), ("lock:addr", Quota(1 / 60, burst=5)))
        assert limiter.admit("q", quota, locks, lambda: 100.0) == Decision(True)
        refused = limiter.admit("q", quota, locks, lambda: 100.25)
        assert refused is not None
        assert not refused.allowed
        assert abs(refused.retry_after - 0.75) < 1e-6
        # Two failures exhaust the appkey's lock (burst 2): the next request is locked
        # out, whatever the query budget says, and takes no query token.
        for _ in range(2):
            assert limiter.acquire("lock:app", locks[0][1], 101.0).allowed
        assert limiter.admit("q", quota, locks, lambda: 101.0) is None
        assert limiter.admit("q", quota, locks, lambda: 102.0) is None
        # One failure ages out after 60 s: admitted again, and the query budget is
        # untouched by the locked-out requests.
        assert limiter.admit("q", quota, locks, lambda: 161.0) == Decision(True)
        assert not limiter.acquire("q", quota, 161.5).allowed
        # The other lock (per address) locks out just the same.
        for _ in range(5):
            assert limiter.acquire("lock:addr", locks[1][1], 200.0).allowed
        assert limiter.admit("q", quota, locks, lambda: 200.0) is None
    finally:
        limiter.close()
