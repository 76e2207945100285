"""The benchmark's data set: ~20 NXCloud-like tenants over 30 days, one of them big and busy.

Everything comes from :func:`voicecdr.demo.generate` and is validated by the product's own
:func:`voicecdr.ingest.canonical.validate`, so the rows are exactly what ingest would store.

A 30-day spread alone cannot fill a 24 h window deep enough for page 500: at 1,000,000
rows the biggest tenant's busiest voiceType has only ~8,000 rows a day. So the biggest
tenant also runs one *campaign day* (``CAMPAIGN_SHARE`` of all rows in one 24 h window),
the realistic shape of a customer whose daily query is deep. Its total share stays at
``TENANT_SHARE``; the other tenants follow a 1/rank (Zipf) curve.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

from voicecdr import demo
from voicecdr.ingest.canonical import validate
from voicecdr.ingest.timebounds import ANY_TIME
from voicecdr.models import Cdr
from voicecdr.timefmt import Window

APP_COUNT = 20
DAYS = 30
TENANT_SHARE = 0.40  # the biggest tenant's share of all rows
CAMPAIGN_SHARE = 0.10  # of all rows: the biggest tenant's campaign inside one 24 h window
CAMPAIGN_END_AGO = 2 * 86_400  # well inside the API's default 7-day reach
WINDOW_SECONDS = 86_400  # the API's default largest span
TIMEZONE = "Asia/Shanghai"
SECRETKEY = "bench-secret-not-for-production"


@dataclass(frozen=True, slots=True)
class Dataset:
    """Validated CDRs in placement order, and the 24 h window the benchmark queries."""

    now: int
    appkeys: tuple[str, ...]
    cdrs: list[Cdr]
    window: Window
    seconds: float  # generating and validating

    @property
    def tenant(self) -> str:
        """The appkey built to be the biggest tenant (the benchmark re-checks it in SQL)."""
        return self.appkeys[0]


def appkeys(count: int = APP_COUNT) -> tuple[str, ...]:
    return tuple(f"bench-{rank:02d}" for rank in range(1, count + 1))


def spread_weights(
    apps: int, *, total: int = 1_000_000, campaign_share: float = CAMPAIGN_SHARE
) -> list[int]:
    """Integer weights (summing to about ``total``) for the 30-day spread: with its
    campaign (``campaign_share`` of all rows), the first app holds ``TENANT_SHARE`` of all
    rows; the others share the rest by 1/rank."""
    first = (TENANT_SHARE - campaign_share) / (1 - campaign_share)
    rest = [1 / rank for rank in range(2, apps + 1)]
    scale = (1 - first) / sum(rest)
    return [round(share * total) for share in (first, *(weight * scale for weight in rest))]


def build(count: int, *, now: int, seed: int) -> Dataset:
    """``count`` CDRs ending at ``now``, sorted by placement time.

    Sorting gives ids in time order, as a switch delivering CDRs when calls end would.
    """
    started = time.perf_counter()
    keys = appkeys()
    campaign = round(count * CAMPAIGN_SHARE)
    campaign_end = now - CAMPAIGN_END_AGO
    spread = demo.generate(
        keys, count - campaign, now=now, days=DAYS, seed=seed, weights=spread_weights(len(keys))
    )
    burst = demo.generate(keys[:1], campaign, now=campaign_end, days=1, seed=seed + 1)
    cdrs = _validated(chain(spread, burst))
    window = Window(campaign_end - WINDOW_SECONDS, campaign_end)
    return Dataset(now, keys, cdrs, window, time.perf_counter() - started)


def _validated(records: Iterable[dict[str, Any]]) -> list[Cdr]:
    return sorted((validate(record, ANY_TIME) for record in records), key=attrgetter("time"))
