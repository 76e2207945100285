"""The scale data set, written through the product's own write path, and its cache.

Shape (``querybench.dataset``'s, at 50 apps): N CDRs over 30 days, the biggest tenant
(``bench-01``) holding 40%, the others on a 1/rank curve. The biggest tenant also has a
*campaign* on the day ending two days before ``now``, sized so that the queried 24 h window
holds about ``WINDOW_ROWS`` rows of its busiest voiceType when N allows (page 500 of 100
needs 50,000): ~0.7% of the rows at 5,000,000, at most ``CAMPAIGN_SHARE``.

Loading goes through ``CdrWriter.store`` in batches of ``BATCH`` (so every derived
structure the product maintains is filled the way ingest fills it), then every app gets
``demo.DEMO_PLAN`` and ``Rater(db).drain()`` prices every CDR, as on a live system (and
so the server's own rater has nothing to do while it is measured). Then ANALYZE.

Generation is the slow part (~40 µs a CDR in ``demo.generate`` + ``validate``), so it runs
one day at a time in worker processes while this process stores the days already made;
days arrive in time order and each is sorted, so ids follow time as from a live switch.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson

from querybench.databases import Database, SqliteDatabase
from querybench.dataset import (
    CAMPAIGN_END_AGO,
    CAMPAIGN_SHARE,
    DAYS,
    TENANT_SHARE,
    WINDOW_SECONDS,
    appkeys,
    spread_weights,
)
from voicecdr import demo, storage
from voicecdr.ingest.canonical import validate
from voicecdr.ingest.timebounds import ANY_TIME
from voicecdr.models import Cdr
from voicecdr.rating import parse_plan_csv
from voicecdr.timefmt import Window
from voicecdr.workers.rater import Rater

APPS = 50
BATCH = 5_000
WINDOW_ROWS = 54_000
GENERATORS = 2  # worker processes making days
AHEAD = 3  # days made but not yet stored, at most (bounds memory)
CACHE_MAX_AGE_S = 3 * 86_400  # older, and the window leaves the API's 7-day reach
_VOICE_TYPE_1 = sum(w for s, w in demo.SERVICES if s != "group_call") / sum(
    w for _, w in demo.SERVICES
)


@dataclass(frozen=True, slots=True)
class Spec:
    """What to generate: deterministic for (count, seed, now)."""

    count: int
    seed: int
    now: int

    @property
    def appkeys(self) -> tuple[str, ...]:
        return appkeys(APPS)

    @property
    def tenant(self) -> str:
        return self.appkeys[0]

    @property
    def small_tenant(self) -> str:
        return self.appkeys[-1]

    @property
    def campaign(self) -> int:
        """Campaign rows: enough for ~WINDOW_ROWS of voiceType 1 in the window."""
        daily = TENANT_SHARE * self.count / DAYS
        wanted = WINDOW_ROWS / _VOICE_TYPE_1 - daily
        return int(max(0.0, min(self.count * CAMPAIGN_SHARE, wanted)))

    @property
    def window(self) -> Window:
        end = self.now - CAMPAIGN_END_AGO
        return Window(end - WINDOW_SECONDS, end)


@dataclass(frozen=True, slots=True)
class LoadTimes:
    store_s: float  # generation (in parallel) and CdrWriter.store
    waited_s: float  # of which this process waited for generation
    rate_s: float  # Rater.drain
    analyze_s: float
    cached: bool = False

    def __str__(self) -> str:
        if self.cached:
            return "from cache"
        return (
            f"store {self.store_s:.0f} s (waiting for the generator {self.waited_s:.0f} s), "
            f"rate {self.rate_s:.0f} s, analyze {self.analyze_s:.0f} s"
        )


def _day(spec: Spec, day: int) -> list[Cdr]:
    """Day ``day`` (0 = oldest) of the 30-day spread, plus the campaign on its day."""
    keys = spec.appkeys
    spread = spec.count - spec.campaign
    per_day, extra = divmod(spread, DAYS)
    count = per_day + (extra if day == DAYS - 1 else 0)
    day_end = spec.now - (DAYS - 1 - day) * 86_400
    weights = spread_weights(len(keys), campaign_share=spec.campaign / spec.count)
    records = list(
        demo.generate(keys, count, now=day_end, days=1, seed=spec.seed * 100 + day, weights=weights)
    )
    if day_end == spec.now - CAMPAIGN_END_AGO:
        records += demo.generate(
            keys[:1], spec.campaign, now=day_end, days=1, seed=spec.seed * 100 + 99
        )
    return sorted((validate(r, ANY_TIME) for r in records), key=attrgetter("time"))


def days(spec: Spec) -> Iterator[tuple[list[Cdr], float]]:
    """The days in time order, each with the seconds spent waiting for it."""
    with ProcessPoolExecutor(GENERATORS) as pool:
        pending: deque[Future[list[Cdr]]] = deque()
        for day in range(DAYS):
            pending.append(pool.submit(_day, spec, day))
            if len(pending) > AHEAD:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())


def _result(future: Future[list[Cdr]]) -> tuple[list[Cdr], float]:
    started = time.perf_counter()
    cdrs = future.result()
    return cdrs, time.perf_counter() - started


def load(database: Database, spec: Spec, say: Any) -> LoadTimes:
    """Schema, apps, every CDR through ``CdrWriter.store``, plans, rating, ANALYZE."""
    app_ids = database._schema_and_apps(spec)  # type: ignore[arg-type]
    db = storage.Database(database.url)
    try:
        writer = storage.CdrWriter(db)
        started = time.perf_counter()
        waited = 0.0
        stored = 0
        for cdrs, wait in days(spec):
            waited += wait
            for i in range(0, len(cdrs), BATCH):
                batch = [(app_ids[cdr.appkey], cdr) for cdr in cdrs[i : i + BATCH]]
                writer.store(batch, now=spec.now)
            stored += len(cdrs)
            say(f"[{database.name}] stored {stored:,} of {spec.count:,} CDRs")
        stored_s = time.perf_counter() - started
        rates = parse_plan_csv(demo.DEMO_PLAN)
        ratings = storage.RatingStore(db)
        for app_id in app_ids.values():
            ratings.import_plan(app_id, rates, source="demo.DEMO_PLAN", now=spec.now)
        say(f"[{database.name}] rating {stored:,} CDRs ...")
        rated = time.perf_counter()
        Rater(db).drain()
        rate_s = time.perf_counter() - rated
    finally:
        db.close()
    analyzed = time.perf_counter()
    database._analyze()
    return LoadTimes(stored_s, waited, rate_s, time.perf_counter() - analyzed)


@contextlib.contextmanager
def sqlite(
    spec: Spec, cache_dir: Path | None, workdir: Path, say: Any
) -> Iterator[tuple[SqliteDatabase, Spec, LoadTimes]]:
    """The SQLite data set: from the cache when a fresh enough one matches, else built
    (and cached). Yields the database, the spec it was built with (a cached one keeps its
    own ``now``) and its load times."""
    if cache_dir is None:
        database = SqliteDatabase(workdir / "scale.db")
        yield database, spec, load(database, spec, say)
        return
    name = f"scale-{spec.count}-{spec.seed}-{storage.head_revision()}"
    path, meta_path = cache_dir / f"{name}.db", cache_dir / f"{name}.json"
    if path.exists() and meta_path.exists():
        meta = orjson.loads(meta_path.read_bytes())
        if time.time() - meta["now"] < CACHE_MAX_AGE_S:
            say(f"[sqlite] using the cached data set {path}")
            cached = Spec(spec.count, spec.seed, meta["now"])
            yield SqliteDatabase(path), cached, LoadTimes(**{**meta["load"], "cached": True})
            return
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = SqliteDatabase(cache_dir / f"{name}.partial")
    _remove(partial.path)
    times = load(partial, spec, say)
    _remove(path)
    shutil.move(partial.path, path)
    _remove(partial.path)
    meta_path.write_bytes(orjson.dumps({"now": spec.now, "load": asdict(times)}))
    yield SqliteDatabase(path), spec, times


def _remove(path: Path) -> None:
    for end in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{end}").unlink(missing_ok=True)
