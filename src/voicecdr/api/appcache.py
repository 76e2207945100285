"""Apps by appkey, read from the database at most once per few seconds per process.

Every query request names its app; reading it from the database each time is a round
trip on the hot path for data that changes a few times a year. A change made elsewhere
(``voicecdr apps update`` / ``rotate-secret`` on another host) reaches a running server
within ``ttl`` seconds. Unknown appkeys are remembered too, so a flood of made-up keys
does not become a flood of database reads; the cache is bounded, and emptied when full.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..models import App
from ..storage import AppStore

MAX_ENTRIES = 10_000


class AppCache:
    """``get(appkey)``: the app (or None), at most ``ttl`` seconds old. Thread-safe: the
    worst a race does is read the same app twice."""

    def __init__(
        self,
        store: AppStore,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._store = store
        self._max_entries = max_entries
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, App | None]] = {}

    def get(self, appkey: str) -> App | None:
        now = self._clock()
        entry = self._entries.get(appkey)
        if entry is not None and now < entry[0]:
            return entry[1]
        app = self._store.get(appkey)
        if self._ttl > 0:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[appkey] = (now + self._ttl, app)
        return app
