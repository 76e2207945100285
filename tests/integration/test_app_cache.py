"""Apps are read at most once per ``app_cache_seconds``; changes show after that."""

from __future__ import annotations

from tests.support.data import make_app
from voicecdr.api.appcache import AppCache
from voicecdr.storage import AppStore, Database


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_change_shows_once_the_copy_is_older_than_the_ttl(db: Database) -> None:
    make_app(db, "app1")
    clock = Clock()
    cache = AppCache(AppStore(db), 5, clock)
    first = cache.get("app1")
    assert first is not None
    assert first.rate_limit != 3.0
    AppStore(db).update("app1", {"rate_limit": 3.0}, now=1)
    clock.now += 4.9
    cached = cache.get("app1")
    assert cached is not None
    assert cached.rate_limit == first.rate_limit
    clock.now += 0.2
    fresh = cache.get("app1")
    assert fresh is not None
    assert fresh.rate_limit == 3.0


def test_unknown_appkeys_are_remembered_too(db: Database) -> None:
    clock = Clock()
    cache = AppCache(AppStore(db), 5, clock)
    assert cache.get("later") is None
    make_app(db, "later")
    assert cache.get("later") is None  # within the TTL: still unknown here
    clock.now += 5
    assert cache.get("later") is not None


def test_zero_ttl_reads_every_time(db: Database) -> None:
    make_app(db, "app1")
    cache = AppCache(AppStore(db), 0, Clock())
    assert cache.get("app1") is not None
    AppStore(db).update("app1", {"rate_limit": 3.0}, now=1)
    app = cache.get("app1")
    assert app is not None
    assert app.rate_limit == 3.0


def test_the_cache_is_bounded(db: Database) -> None:
    make_app(db, "app1")
    clock = Clock()
    cache = AppCache(AppStore(db), 60, clock, max_entries=10)
    cache.get("app1")
    AppStore(db).update("app1", {"rate_limit": 3.0}, now=1)
    for n in range(9):
        cache.get(f"made-up-{n}")
    app = cache.get("app1")
    assert app is not None
    assert app.rate_limit != 3.0
    cache.get("made-up-9")  # the eleventh key: full, so emptied first
    app = cache.get("app1")
    assert app is not None
    assert app.rate_limit == 3.0
