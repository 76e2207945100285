"""Property: for any page size, the pages concatenate to the whole ordered result."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.data import make_app
from voicecdr.api.query import QueryService
from voicecdr.config import Settings
from voicecdr.demo import generate
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.storage import AppStore, CdrWriter, Database, PageReader, SharedRateLimiter

NOW = 1_795_752_000  # 2026-11-27 12:00 Asia/Shanghai
COUNT = 400


@pytest.fixture
def service(settings: Settings, db: Database) -> Iterator[QueryService]:
    make_app(db, "big", secretkey="s")
    make_app(db, "small", secretkey="s")
    # Many calls share a second, so the id tie-break is exercised too.
    records = generate(["big", "small"], COUNT, now=NOW, days=0.5, seed=3, weights=[4, 1])
    Ingestor(AppStore(db), CdrWriter(db)).ingest(Item(i, r) for i, r in enumerate(records))
    limiter = SharedRateLimiter(db, settings.rate_limit_state)
    ticks = iter(range(10**9))
    yield QueryService(
        PageReader(db), AppStore(db), limiter, settings, clock=lambda: NOW + next(ticks)
    )
    limiter.close()


def query(service: QueryService, page: int, page_size: int, voice_type: str) -> dict[str, object]:
    answer = service.answer(
        {
            "appkey": "big",
            "secretkey": "s",
            "voiceType": voice_type,
            "start_time": "2026-11-27 00:00:00",
            "end_time": "2026-11-27 12:00:00",
            "page": str(page),
            "page_size": str(page_size),
        }
    )
    body = orjson.loads(answer.response().body)  # as the client reads it
    assert body["code"] == "1", body
    info: dict[str, object] = body["info"]
    return info


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(page_size=st.integers(1, 120), voice_type=st.sampled_from(["0", "1"]))
def test_pages_concatenate_to_the_full_result(
    service: QueryService, page_size: int, voice_type: str
) -> None:
    full = query(service, 1, 1000, voice_type)
    expected = full["rows"]
    assert isinstance(expected, list)
    assert 40 < len(expected) < 1000
    keys = [(r["time"], r["id"]) for r in expected]
    assert keys == sorted(keys)
    collected: list[object] = []
    page = 1
    while True:
        info = query(service, page, page_size, voice_type)
        assert info["total"] == full["total"]
        rows = info["rows"]
        assert isinstance(rows, list)
        if not rows:
            break
        collected.extend(rows)
        page += 1
    assert collected == expected
    assert page - 1 == -(-len(expected) // page_size)
