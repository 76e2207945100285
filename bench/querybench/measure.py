"""Timing: one query API request and its raw-SQL twin, alternated, R times or until the
time budget runs out, after a warm-up and a check that both sides return the same page."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from voicecdr.timefmt import format_epoch, zone

from .databases import RawQueries
from .dataset import SECRETKEY, TIMEZONE
from .workload import Case, PageResult, Target

QUERY_PATH = "/api/voiceSms/getVoiceCdr"
_SUCCESS = b'{"code":"1"'


@dataclass(frozen=True, slots=True)
class Plan:
    runs: int  # timed pairs per case, at most
    warmup: int  # untimed pairs per case first
    budget_s: float  # per case: stop early (after at least one pair) when this is spent


@dataclass(frozen=True, slots=True)
class Stats:
    samples_ms: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99_ms(self) -> float:
        """Nearest-rank 99th percentile: the maximum when there are under 100 samples."""
        ordered = sorted(self.samples_ms)
        return ordered[math.ceil(0.99 * len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    api: Stats
    raw: Stats

    @property
    def ratio(self) -> float:
        return self.api.median_ms / self.raw.median_ms


class ApiClient:
    """Sequential form POSTs over one keep-alive connection, as an NXCloud client sends."""

    def __init__(self, base_url: str) -> None:
        # trust_env=False: a proxy from the environment must not sit in the measured path.
        self._http = httpx.Client(base_url=base_url, timeout=120.0, trust_env=False)
        self._tz = zone(TIMEZONE)

    def close(self) -> None:
        self._http.close()

    def form(self, target: Target, case: Case) -> dict[str, str]:
        return {
            "appkey": target.appkey,
            "secretkey": SECRETKEY,
            "voiceType": str(target.voice_group),
            "start_time": format_epoch(target.window.start, self._tz),
            "end_time": format_epoch(target.window.end, self._tz),
            "page": str(case.page),
            "page_size": str(case.page_size),
        }

    def post(self, form: dict[str, str]) -> httpx.Response:
        response = self._http.post(QUERY_PATH, data=form)
        if response.status_code != 200 or not response.content.startswith(_SUCCESS):
            raise RuntimeError(f"query API failed: {response.status_code} {response.text[:300]}")
        return response

    def page(self, form: dict[str, str]) -> PageResult:
        info = orjson.loads(self.post(form).content)["info"]
        return PageResult(info["total"], [row["id"] for row in info["rows"]])


def _timed_ms(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def _sample(
    api: Callable[[], Any], raw: Callable[[], Any], plan: Plan
) -> tuple[list[float], list[float]]:
    for _ in range(plan.warmup):
        api()
        raw()
    api_ms: list[float] = []
    raw_ms: list[float] = []
    deadline = time.perf_counter() + plan.budget_s
    while len(api_ms) < plan.runs and (not api_ms or time.perf_counter() < deadline):
        api_ms.append(_timed_ms(api))
        raw_ms.append(_timed_ms(raw))
    return api_ms, raw_ms


def run_case(case: Case, target: Target, api: ApiClient, raw: RawQueries, plan: Plan) -> CaseResult:
    """Check that both sides agree on the page, then time them alternately."""
    form = api.form(target, case)
    from_api, from_sql = api.page(form), raw.page(target, case)
    if from_api != from_sql:
        raise RuntimeError(
            f"{case.label}: API and SQL disagree: total {from_api.total} vs {from_sql.total}, "
            f"first ids {from_api.ids[:3]} vs {from_sql.ids[:3]}"
        )
    api_ms, raw_ms = _sample(lambda: api.post(form), lambda: raw.page(target, case), plan)
    return CaseResult(case, Stats(tuple(api_ms)), Stats(tuple(raw_ms)))
