"""The receipt sender: claims due receipts and POSTs them, signed, to their apps' URLs.

Isolation between customers: at most ``per_app`` receipts of one app are in flight (and
claimed) at once, out of ``concurrency`` in all, and every attempt has a hard timeout, so a
slow or dead callback URL only ever occupies its own app's slots.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from starlette.concurrency import run_in_threadpool

from .. import receipts
from ..callbacks import CallbackRefused, Resolver, resolve, system_resolver
from ..errors import DatabaseUnavailable, StorageError
from ..retry import RetryPolicy
from ..storage import Database, DueReceipt, Outbox
from . import metrics
from .health import Heartbeat, WorkerHealth
from .turns import Unreachable, rotated

log = logging.getLogger("voicecdr.sender")

MAX_RESPONSE_BYTES = 4096
CLIENT_IDLE = 60.0  # seconds before an app's idle connection pool is closed
DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class SenderConfig:
    timeout: float = 10.0
    policy: RetryPolicy = DEFAULT_POLICY
    allow_private: bool = False
    concurrency: int = 64
    per_app: int = 4
    poll_interval: float = 0.5

    @property
    def lease(self) -> float:
        # Long enough for a resolve, a full timeout and the bookkeeping after it; a
        # sender that died mid-attempt holds its receipts no longer than this.
        return 2 * self.timeout + 10.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt came to."""

    delivered: bool
    status: int | None
    error: str
    retry_after: float | None = None


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    # isdigit() alone is true of "²", which float() refuses (and a receiver sends this).
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class Sender:
    def __init__(
        self,
        db: Database,
        config: SenderConfig,
        *,
        resolver: Resolver = system_resolver,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._outbox = Outbox(db)
        self._config = config
        self._resolver = resolver
        self._clock = clock
        self._rng = rng or random.Random()
        self._transport = transport
        # One small connection pool per app: apps never share (or wait on) each other's
        # connections, and httpx's per-request pool scan stays short.
        self._clients: dict[int, httpx.AsyncClient] = {}
        self._last_used: dict[int, float] = {}
        self._in_flight: Counter[int] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        # On Citus receipts are claimed app by app, each claim routed to the app's node,
        # so that a node down holds back only its own apps' receipts (docs/scaling.md).
        self._per_app = db.citus
        self._apps: list[int] = []  # in the order of the next pass (per app)
        self.unreachable = Unreachable(log, "claim the receipts")

    def _client_for(self, app_id: int) -> httpx.AsyncClient:
        client = self._clients.get(app_id)
        if client is None:
            client = self._clients[app_id] = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self._config.timeout),
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment would bypass the checks
                limits=httpx.Limits(max_connections=self._config.per_app),
            )
        self._last_used[app_id] = time.monotonic()
        return client

    async def _close_idle(self, idle: float = CLIENT_IDLE) -> None:
        cutoff = time.monotonic() - idle
        for app_id in [a for a, t in self._last_used.items() if t < cutoff]:
            if not self._in_flight.get(app_id):
                del self._last_used[app_id]
                await self._clients.pop(app_id).aclose()

    async def aclose(self) -> None:
        await self._close_idle(idle=-1.0)

    async def run(
        self, stopping: asyncio.Event, *, grace: float = 10.0, heart: Heartbeat | None = None
    ) -> None:
        """Deliver until ``stopping`` is set; then give in-flight attempts ``grace``
        seconds (an attempt cut short is retried later under the same webhook-id).
        ``heart`` hears of every claim, good or failed."""
        heart = heart or WorkerHealth().heartbeat("sender")
        try:
            while not stopping.is_set():
                try:
                    claimed = await self.claim()
                except StorageError as exc:
                    log.exception("could not claim receipts")
                    heart.retrying(exc)
                    claimed = 0
                else:
                    heart.ok()
                if claimed == 0 or len(self._tasks) >= self._config.concurrency:
                    await self._idle(stopping)
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=grace)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _idle(self, stopping: asyncio.Event) -> None:
        """Wait for the poll interval, a stop, or enough finished deliveries to make a
        claim worth its query (a quarter of the slots, or all of them being free)."""
        deadline = time.monotonic() + self._config.poll_interval
        batch = max(1, self._config.concurrency // 4)
        while not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await _first(stopping.wait(), self._wake.wait(), timeout=left)
            self._wake.clear()
            free = self._config.concurrency - len(self._tasks)
            if free >= batch or not self._tasks:
                break
        await self._close_idle()

    async def claim(self) -> int:
        """Claim what is due and start delivering it; returns how many were claimed."""
        free = self._config.concurrency - len(self._tasks)
        if free <= 0:
            return 0
        busy = dict(self._in_flight)
        due = await run_in_threadpool(self._claim_due, free, busy)
        for receipt in due:
            self._in_flight[receipt.app_id] += 1
            task = asyncio.create_task(self._deliver(receipt))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, app_id=receipt.app_id))
        return len(due)

    def _claim_due(self, free: int, busy: dict[int, int]) -> list[DueReceipt]:
        now = self._clock()
        claim = functools.partial(
            self._outbox.claim_due,
            now=now,
            per_app=self._config.per_app,
            busy=busy,
            lease=self._config.lease,
        )
        if not self._per_app:
            return claim(limit=free)
        due: list[DueReceipt] = []
        self._apps = rotated(self._apps, self._outbox.app_ids())
        for app_id in self.unreachable.worth_trying(self._apps, lambda: self._outbox.apps_due(now)):
            if len(due) >= free:
                break
            if busy.get(app_id, 0) >= self._config.per_app:
                continue
            try:
                due += claim(limit=free - len(due), app_id=app_id)
            except DatabaseUnavailable as exc:
                self.unreachable.skipped(app_id, exc)
                continue
            self.unreachable.done(app_id)
        return due

    def _done(self, task: asyncio.Task[None], *, app_id: int) -> None:
        self._tasks.discard(task)
        self._in_flight[app_id] -= 1
        if self._in_flight[app_id] <= 0:
            del self._in_flight[app_id]
        self._wake.set()

    async def drain(self) -> None:
        """Deliver everything due now and wait for it (for `voicecdr` one-shot commands
        and tests)."""
        while await self.claim() or self._tasks:
            if self._tasks:
                await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)

    async def _deliver(self, due: DueReceipt) -> None:
        try:
            attempt = await self.attempt(due)
        except Exception as exc:  # a bug must fail the attempt, not leave it claimed
            log.exception("receipt attempt crashed", extra={"receipt": due.id})
            attempt = Attempt(False, None, f"sender error: {type(exc).__name__}: {exc}"[:300])
        now = self._clock()
        try:
            if attempt.delivered:
                await run_in_threadpool(
                    lambda: self._outbox.delivered(
                        due.id, status=attempt.status or 0, now=int(now), app_id=due.app_id
                    )
                )
                metrics.RECEIPT_ATTEMPTS.labels("delivered").inc()
                return
            delay = self._config.policy.next_delay(
                due.attempt, retry_after=attempt.retry_after, rng=self._rng
            )
            retry_at = None if delay is None else now + delay
            await run_in_threadpool(
                lambda: self._outbox.failed(
                    due.id,
                    status=attempt.status,
                    error=attempt.error,
                    retry_at=retry_at,
                    app_id=due.app_id,
                )
            )
        except StorageError:
            # The lease runs out and the receipt is claimed again: at least once.
            log.exception("could not record a receipt attempt", extra={"receipt": due.id})
            return
        metrics.RECEIPT_ATTEMPTS.labels("failed" if retry_at else "dead").inc()
        log.warning(
            "receipt attempt failed",
            extra={
                "receipt": due.id,
                "webhook_id": due.webhook_id,
                "attempt": due.attempt,
                "status": attempt.status,
                "error": attempt.error,
                "dead": retry_at is None,
            },
        )

    async def attempt(self, due: DueReceipt) -> Attempt:
        """One signed POST; never raises for anything the receiver or network does.

        ``timeout`` bounds the whole attempt (resolving, connecting, sending, reading the
        answer), not each step, so an attempt always ends well inside its lease and a
        receiver that trickles its answer cannot hold a slot longer.
        """
        if not due.callback_url:
            return Attempt(False, None, "the app has no callback_url")
        try:
            payload = due.payload if due.content is None else receipts.render(due.content)
        except ValueError as exc:  # a corrupt row (a timezone, a language): fail the attempt
            log.exception("could not make a receipt", extra={"receipt": due.id})
            return Attempt(False, None, f"could not make the receipt: {exc}")
        if payload is None:
            # Cannot happen while receipts are deleted with their CDRs (retention does).
            return Attempt(False, None, "the receipt's CDR is no longer stored")
        try:
            async with asyncio.timeout(self._config.timeout):
                return await self._post(due, due.callback_url, payload)
        except TimeoutError:
            return Attempt(False, None, f"no answer within {self._config.timeout:g}s")

    async def _post(self, due: DueReceipt, callback_url: str, payload: str) -> Attempt:
        try:
            target = await run_in_threadpool(
                resolve,
                callback_url,
                self._resolver,
                allow_private=self._config.allow_private,
            )
        except CallbackRefused as exc:
            return Attempt(False, None, f"callback URL refused: {exc}")
        headers = receipts.headers(due.signing_secret, due.webhook_id, int(self._clock()), payload)
        headers["host"] = httpx.URL(callback_url).netloc.decode("ascii")
        extensions = {"sni_hostname": target.host} if target.url.startswith("https") else {}
        try:
            client = self._client_for(due.app_id)
            request = client.build_request(
                "POST",
                target.url,
                content=payload.encode(),
                headers=headers,
                extensions=extensions,
            )
            response = await client.send(request, stream=True)
            try:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            return Attempt(False, None, f"no answer within {self._config.timeout:g}s")
        except httpx.HTTPError as exc:
            return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:300])
        if receipts.is_success(response.status_code, body):
            return Attempt(True, response.status_code, "")
        shown = body[:120].decode("utf-8", "replace").strip()
        reason = (
            f"HTTP {response.status_code}: body was {shown!r}, not 'success'"
            if 200 <= response.status_code < 300
            else f"HTTP {response.status_code}"
        )
        return Attempt(
            False,
            response.status_code,
            reason,
            retry_after_seconds(response.headers.get("retry-after"), self._clock()),
        )


async def _first(*waits: object, timeout: float) -> None:
    """Wait until the first of several awaitables finishes, or ``timeout``."""
    tasks = [asyncio.ensure_future(w) for w in waits]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
