"""Rendered rows kept between requests are exact.

Every change that can reach a row's rendering (rating, re-rating with another plan, the
app's timezone and language) shows in the very next answer, which is byte for byte what a
server without the cache answers, on both databases; so does a cache too small for a page.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson
import pytest

from tests.support.data import make_app
from voicecdr import apps
from voicecdr.api.query import QueryService
from voicecdr.config import Settings
from voicecdr.demo import generate
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.models import RESULT_TEXT, Language, VoiceGroup
from voicecdr.rating import parse_plan_csv
from voicecdr.rows import RowCache, RowRenderer
from voicecdr.storage import (
    AppStore,
    CdrWriter,
    Database,
    PageReader,
    RatingStore,
    SharedRateLimiter,
)
from voicecdr.timefmt import zone
from voicecdr.workers.rater import Rater, rerate

NOW = 1_795_752_000  # 2026-11-27 12:00 Asia/Shanghai
PLAN = "service,prefix,cycle,unit_price,basic_price\n*,,20,0.05,0.005\n"
OTHER_PLAN = "service,prefix,cycle,unit_price,basic_price\n*,,60,0.0123,0.00001\n"


@pytest.fixture
def services(settings: Settings, db: Database) -> Iterator[dict[str, QueryService]]:
    make_app(db, "big", secretkey="s")
    records = generate(["big"], 300, now=NOW, days=0.5, seed=5)
    Ingestor(AppStore(db), CdrWriter(db)).ingest(Item(i, r) for i, r in enumerate(records))
    limiter = SharedRateLimiter(db, settings.rate_limit_state)
    ticks = iter(range(10**9))

    def service(rows: int) -> QueryService:
        # Apps read on every request, so an app's change shows at once.
        changed = settings.model_copy(update={"row_cache_rows": rows, "app_cache_seconds": 0})
        return QueryService(
            PageReader(db), AppStore(db), limiter, changed, clock=lambda: NOW + next(ticks)
        )

    yield {"plain": service(0), "cached": service(20_000), "tiny": service(10)}
    limiter.close()


# The stored calls' half day, as wall times in each timezone the app has in the test.
WINDOWS = {
    "Asia/Shanghai": ("2026-11-27 00:00:00", "2026-11-27 12:00:00"),
    "America/New_York": ("2026-11-26 11:00:00", "2026-11-26 23:00:00"),
}


def _answers(service: QueryService, tz: str) -> list[bytes]:
    """Every page of both voice types, plain and extended, as the client gets them."""
    start, end = WINDOWS[tz]
    bodies = []
    for voice_type in ("0", "1"):
        for extended in ("0", "1"):
            for page in range(1, 9):
                answer = service.answer(
                    {
                        "appkey": "big",
                        "secretkey": "s",
                        "voiceType": voice_type,
                        "start_time": start,
                        "end_time": end,
                        "page": str(page),
                        "page_size": "40",
                        "extended": extended,
                    }
                )
                body = bytes(answer.response().body)
                assert body.startswith(b'{"code":"1"'), body
                bodies.append(body)
    return bodies


def test_cached_answers_equal_uncached_ones_through_every_change(
    db: Database, services: dict[str, QueryService]
) -> None:
    app = AppStore(db).get("big")
    assert app is not None
    ratings = RatingStore(db)

    def check(stage: str, tz: str = "Asia/Shanghai") -> list[bytes]:
        expected = _answers(services["plain"], tz)
        assert any(b'"rows":[{' in body for body in expected)
        for name in ("cached", "tiny"):
            # Twice: the second time the kept rows answer.
            assert _answers(services[name], tz) == expected, f"{name}, {stage}, first"
            assert _answers(services[name], tz) == expected, f"{name}, {stage}, again"
        return expected

    stages = [check("unrated")]
    ratings.import_plan(app.id, parse_plan_csv(PLAN), source="t", now=1)
    Rater(db).drain()
    stages.append(check("rated"))
    ratings.import_plan(app.id, parse_plan_csv(OTHER_PLAN), source="t", now=2)
    report = rerate(db, app, NOW - 86_400, NOW, dry_run=False)
    assert report.records > 0
    stages.append(check("re-rated"))
    apps.update_app(AppStore(db), "big", timezone="America/New_York")
    stages.append(check("new timezone", "America/New_York"))
    apps.update_app(AppStore(db), "big", language="zh")
    stages.append(check("new language", "America/New_York"))
    # Each change did change the answers: the cache had something to get wrong.
    assert all(a != b for a, b in itertools.pairwise(stages))
    cache = services["cached"].row_cache
    assert cache is not None
    assert len(cache) > 0
    rows = orjson.loads(stages[-1][0])["info"]["rows"]
    assert rows
    assert rows[0]["result"] in RESULT_TEXT[Language.ZH]


def _fragment(i: int) -> orjson.Fragment:
    return orjson.Fragment(str(i).encode())


def test_the_cache_keeps_at_most_its_size() -> None:
    cache = RowCache(4)
    fragments = [_fragment(i) for i in range(10)]
    for i, fragment in enumerate(fragments):
        cache.put("k", (i,), fragment)
        assert len(cache) <= 4
    assert cache.get_all("k", [(9,), (0,)]) == [fragments[9], None]  # 0: two generations ago
    assert cache.get_all("other key", [(9,)]) == [None]


def test_an_old_entry_used_again_is_kept() -> None:
    cache = RowCache(4)
    one, two = _fragment(1), _fragment(2)
    cache.put("k", ("a",), one)
    cache.put("k", ("b",), two)  # the young generation is full: it becomes the old one
    assert cache.get_all("k", [("a",)]) == [one]  # used again: back in the young one
    cache.put("k", ("c",), _fragment(3))  # full again: "a" and "c" are now the old ones
    cache.put("k", ("d",), _fragment(4))
    assert cache.get_all("k", [("b",), ("a",)]) == [None, one]


def test_a_key_sweeping_through_new_rows_reads_them_whole_and_keeps_some() -> None:
    cache = RowCache(100)
    assert cache.plan("k") == (False, True)  # nothing known: stamps first, keep
    cache.note("k", misses=100, rows=100)
    plans = []
    for _ in range(8):
        plans.append(cache.plan("k"))
        cache.note("k", misses=90, rows=100)
    # Whole rows at once, and one page in four kept, so the key can turn warm again.
    assert plans == [(True, False), (True, False), (True, False), (True, True)] * 2
    cache.note("k", misses=10, rows=100)
    assert cache.plan("k") == (False, True)
    cache.note("k", misses=0, rows=0)  # an empty page says nothing
    assert cache.plan("k") == (False, True)
    assert cache.plan("other") == (False, True)


def test_one_apps_sweep_leaves_another_apps_plan_alone(
    db: Database, services: dict[str, QueryService]
) -> None:
    other = make_app(db, "other", secretkey="s").app  # same timezone and language
    big = AppStore(db).get("big")
    assert big is not None
    service = services["cached"]
    _answers(service, "Asia/Shanghai")  # every page new: a sweep
    cache = service.row_cache
    assert cache is not None
    key = RowRenderer(VoiceGroup(1), zone("Asia/Shanghai"), big.language, extended=False).key
    assert cache.plan((big.id, key))[0]  # read whole from now on
    assert cache.plan((other.id, key)) == (False, True)
