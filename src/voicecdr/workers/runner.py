"""Runs the rater, the receipt sender and partition upkeep together until told to stop,
each supervised: restarted after a crash, and reported to ``/readyz`` while failing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import httpx
from starlette.concurrency import run_in_threadpool

from ..callbacks import Resolver, system_resolver
from ..config import Settings
from ..errors import StorageError
from ..retry import RetryPolicy
from ..storage import Database, Outbox
from . import metrics
from .health import Heartbeat, WorkerHealth, supervise
from .rater import Rater
from .sender import Sender, SenderConfig

log = logging.getLogger("voicecdr.workers")

RATER_IDLE = 0.5  # seconds between looks for new CDRs: priced within about a second
GAUGE_INTERVAL = 5.0
MAINTENANCE_INTERVAL = 3600.0  # seconds between makings of the coming days' partitions


def sender_config(settings: Settings) -> SenderConfig:
    return SenderConfig(
        timeout=settings.receipt_timeout,
        policy=RetryPolicy(settings.receipt_retry_schedule),
        allow_private=settings.allow_private_callbacks,
        concurrency=settings.receipt_concurrency,
        per_app=settings.receipt_concurrency_per_app,
    )


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def rater_loop(
    rater: Rater, stopping: asyncio.Event, batch_size: int, heart: Heartbeat
) -> None:
    while not stopping.is_set():
        try:
            priced, unpriced = await run_in_threadpool(rater.run_once)
        except StorageError as exc:
            log.exception("rater batch failed; retrying shortly")
            heart.retrying(exc)
            await _pause(stopping, 2.0)
            continue
        heart.ok()
        metrics.CDRS_RATED.labels("final").inc(priced)
        metrics.CDRS_RATED.labels("unpriced").inc(unpriced)
        if priced + unpriced < batch_size:
            await _pause(stopping, RATER_IDLE)


async def gauge_loop(
    rater: Rater, outbox: Outbox, stopping: asyncio.Event, heart: Heartbeat
) -> None:
    while not stopping.is_set():
        try:
            metrics.RATING_LAG.set(await run_in_threadpool(rater.lag))
            for state, count in (await run_in_threadpool(outbox.counts)).items():
                metrics.RECEIPTS.labels(state).set(count)
        except StorageError as exc:
            log.warning("could not refresh worker gauges")
            heart.retrying(exc)
        else:
            heart.ok()
        await _pause(stopping, GAUGE_INTERVAL)


async def maintenance_loop(
    db: Database,
    days_ahead: int,
    stopping: asyncio.Event,
    clock: Callable[[], float],
    heart: Heartbeat,
) -> None:
    """PostgreSQL: keep today's and the next ``days_ahead`` days' partitions made, so
    inserts never wait to make one (every worker does it: it is a no-op once made)."""
    partitions = db.partitions
    if partitions is None:
        return
    while not stopping.is_set():
        try:
            made = await run_in_threadpool(partitions.ahead, int(clock()), days_ahead)
            if made:
                log.info("made CDR partitions", extra={"partitions": made})
        except StorageError as exc:
            log.warning("could not make the coming days' CDR partitions; retrying later")
            heart.retrying(exc)
        else:
            heart.ok()
        await _pause(stopping, MAINTENANCE_INTERVAL)


async def run_workers(
    db: Database,
    settings: Settings,
    stopping: asyncio.Event,
    *,
    resolver: Resolver = system_resolver,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    health: WorkerHealth | None = None,
) -> None:
    """The rater, the receipt sender, their gauges and partition upkeep, until
    ``stopping`` is set; ``health`` learns which of them are failing."""
    health = health or WorkerHealth()
    rater = Rater(db, batch_size=settings.rater_batch_size, clock=clock)
    sender = Sender(
        db, sender_config(settings), resolver=resolver, clock=clock, transport=transport
    )
    rating, sending, gauges, upkeep = (
        health.heartbeat(name) for name in ("rater", "sender", "gauges", "partitions")
    )
    outbox, days = Outbox(db), settings.partitions_ahead_days
    log.info("workers started")
    try:
        await asyncio.gather(
            supervise(
                rating,
                lambda: rater_loop(rater, stopping, settings.rater_batch_size, rating),
                stopping,
            ),
            supervise(sending, lambda: sender.run(stopping, heart=sending), stopping),
            supervise(gauges, lambda: gauge_loop(rater, outbox, stopping, gauges), stopping),
            supervise(
                upkeep, lambda: maintenance_loop(db, days, stopping, clock, upkeep), stopping
            ),
        )
    finally:
        await sender.aclose()
        log.info("workers stopped")
