"""Receipt delivery throughput: the product's ``Sender.drain()`` against a bare httpx loop.

The product run delivers M pending receipts from a fresh database clone: it claims them
(a conditional UPDATE per claim), signs each (Standard Webhooks HMAC), resolves and checks
the callback URL, POSTs through httpx, reads the answer and records the delivery (one
write transaction per receipt). The baseline POSTs the same M bodies with a bare
``httpx.AsyncClient`` and the same concurrency to the same receiver: no database, no
signature, no URL check. Both run in this process on the default asyncio loop, as
``voicecdr work`` does; the receiver is another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from querybench.databases import Database
from voicecdr import receipts, storage
from voicecdr.models import Language, ReceiptContent, ReceiptStatus
from voicecdr.workers.sender import Sender, SenderConfig

from .receiver import answered

TIME_LIMIT_S = 600.0  # any one timed delivery run, at most


@dataclass(frozen=True, slots=True)
class Scenario:
    label: str
    apps: int  # receipts are spread evenly over this many apps
    per_app: int
    concurrency: int = 64

    def config(self) -> SenderConfig:
        return SenderConfig(allow_private=True, concurrency=self.concurrency, per_app=self.per_app)


SCENARIOS = (
    Scenario("1 app, per_app 64", apps=1, per_app=64),
    Scenario("16 apps, per_app 4 (default)", apps=16, per_app=4),
)


@dataclass(frozen=True, slots=True)
class Delivered:
    method: str
    receipts: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.receipts / self.seconds


def bodies(database: Database) -> list[bytes]:
    """The receipts' bodies, rendered as the sender renders them (untimed)."""
    with contextlib.closing(database.connect()) as conn:
        rows = conn.execute(
            "SELECT c.placed_at, c.service, c.phone, c.country_code, c.messageid, "
            "c.answered_at, c.ended_at, c.billsec, c.connected, c.hangup_cause, "
            "c.hangup_disposition, c.ivr_result, c.record_url, r.cycle, r.size, "
            "r.unit_price_nanos, r.basic_price_nanos, r.timezone, r.language "
            "FROM receipts r JOIN cdrs c ON c.id = r.cdr_id AND c.placed_at = r.cdr_placed_at "
            "ORDER BY r.id"
        ).fetchall()
    return [
        receipts.render(
            ReceiptContent(
                tuple(row[:13]), row[13], row[14], row[15], row[16], row[17], Language(row[18])
            )
        ).encode()
        for row in rows
    ]


def _delivered(database: Database) -> int:
    with contextlib.closing(database.connect()) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM receipts WHERE status = {int(ReceiptStatus.DELIVERED)}"
        ).fetchone()
    return int(row[0])


def _check(url: str, before: int, expected: int, what: str) -> None:
    arrived = answered(url) - before
    if arrived != expected:
        raise RuntimeError(f"{what}: the receiver answered {arrived} POSTs, expected {expected}")


async def _product(database: Database, scenario: Scenario) -> float:
    db = storage.Database(database.url)
    sender = Sender(db, scenario.config())
    try:
        started = time.perf_counter()
        await asyncio.wait_for(sender.drain(), TIME_LIMIT_S)
        return time.perf_counter() - started
    finally:
        await sender.aclose()
        db.close()


def product(database: Database, scenario: Scenario, url: str, expected: int) -> Delivered:
    before = answered(url)
    seconds = asyncio.run(_product(database, scenario))
    _check(url, before, expected, "Sender.drain")
    done = _delivered(database)
    if done != expected:
        raise RuntimeError(f"Sender.drain: {done} receipts delivered, expected {expected}")
    return Delivered("Sender.drain", done, seconds)


async def _bare(url: str, payloads: list[bytes], concurrency: int) -> tuple[float, int]:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    failures = 0
    work: Iterator[bytes] = iter(payloads)
    async with httpx.AsyncClient(
        timeout=10.0, trust_env=False, limits=httpx.Limits(max_connections=concurrency)
    ) as client:

        async def worker() -> None:
            nonlocal failures
            for body in work:  # shared: each body is taken by exactly one worker
                response = await client.post(url, content=body, headers=headers)
                if not receipts.is_success(response.status_code, response.content):
                    failures += 1

        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(concurrency))), TIME_LIMIT_S
        )
        return time.perf_counter() - started, failures


def bare(url: str, payloads: list[bytes], concurrency: int) -> Delivered:
    before = answered(url)
    seconds, failures = asyncio.run(_bare(url, payloads, concurrency))
    if failures:
        raise RuntimeError(f"bare httpx: {failures} POSTs were not answered 'success'")
    _check(url, before, len(payloads), "bare httpx")
    return Delivered("bare httpx", len(payloads), seconds)
