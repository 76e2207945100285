"""Helpers for the client tests: CDRs spread over recent days, pricing them with the real
rater, and a transport wrapper that counts requests and runs a hook before each one (to
add records mid-export, or to cut the connection)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx

from voicecdr import demo
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.storage import AppStore, CdrWriter, Database, RatingStore
from voicecdr.timefmt import zone

SHANGHAI = zone("Asia/Shanghai")


def recent_records(
    appkey: str, count: int, *, days: float = 3, seed: int = 5, now: int | None = None
) -> list[dict[str, Any]]:
    return list(demo.generate([appkey], count, now=now or int(time.time()), days=days, seed=seed))


def load(db: Database, records: Sequence[dict[str, Any]]) -> None:
    summary = Ingestor(AppStore(db), CdrWriter(db)).ingest(
        Item(i, r) for i, r in enumerate(records)
    )
    assert summary.rejected == []


def count_by_group(records: Sequence[dict[str, Any]]) -> Counter[int]:
    """Records per query voiceType: 0 for group calls, 1 for the others."""
    return Counter(0 if r["service"] == "group_call" else 1 for r in records)


def window(days: float = 3) -> tuple[datetime, datetime]:
    """The last ``days`` (plus a minute) as naive wall times in Asia/Shanghai."""
    end = datetime.now(SHANGHAI).replace(tzinfo=None, microsecond=0) + timedelta(minutes=1)
    return end - timedelta(days=days, minutes=2), end


class Hooked(httpx.BaseTransport):
    """Forwards to ``inner``; calls ``before(n)`` before the n-th request (1-based) and
    remembers each request's form and each answer's error slug (None for success)."""

    def __init__(
        self, inner: httpx.BaseTransport, before: Callable[[int], None] | None = None
    ) -> None:
        self.inner = inner
        self.before = before
        self.requests = 0
        self.slugs: list[str | None] = []
        self.forms: list[dict[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        self.forms.append(dict(parse_qsl(request.read().decode())))
        if self.before is not None:
            self.before(self.requests)
        response = self.inner.handle_request(request)
        response.read()
        self.slugs.append(json.loads(response.content).get("error"))
        return response


def load_and_price(db: Database, records: Sequence[dict[str, Any]], plans: dict[str, str]) -> None:
    """:func:`load`, then each app's plan (``plans``: appkey to CSV text) and the real
    rater: what ``cdrs import``, ``rates import`` and ``rate`` store, in this process."""
    from voicecdr.rating import parse_plan_csv
    from voicecdr.workers.rater import Rater

    load(db, records)
    for appkey, text in plans.items():
        app = AppStore(db).get(appkey)
        assert app is not None, appkey
        plan = parse_plan_csv(text)
        RatingStore(db).import_plan(app.id, plan, source="plan.csv", now=int(time.time()))
    Rater(db).drain()


def price_everything(db: Database, appkey: str) -> None:
    """Price every CDR of ``appkey`` with the real rater and the demo's rate plan (several
    prices and cycles per country, basic prices for unconnected calls)."""
    from voicecdr.rating import parse_plan_csv
    from voicecdr.workers.rater import Rater

    app = AppStore(db).get(appkey)
    assert app is not None
    plan = parse_plan_csv(demo.DEMO_PLAN)
    RatingStore(db).import_plan(app.id, plan, source="test", now=int(time.time()))
    priced, unpriced = Rater(db).drain()
    assert priced > 0
    assert unpriced == 0
