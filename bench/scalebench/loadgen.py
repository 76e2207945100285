"""A small HTTP/1.1 load generator: asyncio, raw keep-alive sockets, pre-built requests.

Two modes, both bounded in time and stopping by themselves:

- :func:`closed_loop`: ``connections`` clients, each sending the next request as soon as
  the previous answer is in, for ``seconds``: the maximum rate the server sustains.
- :func:`open_loop`: requests at a fixed ``rate``, whatever the answers do. Latency is
  counted from each request's *scheduled* send time, so a server that stalls is charged for
  every request that should have gone out meanwhile (no coordinated omission). A request
  waits for a free connection when all are busy; that wait counts too.

An answer counts as a success when its status is 200 and its body starts with
``expect`` (the NXCloud envelope's ``{"code":"1"``); anything else is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import math
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

with contextlib.suppress(ImportError):  # uvicorn[standard] brings it: less client CPU
    import uvloop

SUCCESS = b'{"code":"1"'
# Answers refused by the app's rate limit are counted apart (none expected: the bench's
# apps have the highest limit allowed).
REFUSAL = b'"error":"rate_limited"'
OK, REFUSED, ERROR = 0, 1, 2
GRACE_S = 30.0  # after the last scheduled request, answers still awaited this long


def form_request(host: str, port: int, path: str, form: dict[str, str]) -> bytes:
    body = urlencode(form).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass(frozen=True, slots=True)
class Throughput:
    requests: int  # answered with success
    refused: int  # answered rate_limited (not counted in the rate)
    errors: int
    seconds: float
    connections: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True, slots=True)
class Latency:
    rate: float  # offered, requests/second
    seconds: float
    latencies_ms: Sequence[float]  # of the requests answered with success
    refused: int
    errors: int
    missing: int  # not answered within the grace period

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile; nan when nothing was answered."""
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan

    @property
    def summary(self) -> dict[str, Any]:
        ms = self.latencies_ms
        return {
            "offered_rate": round(self.rate, 2),
            "seconds": self.seconds,
            "answered": len(ms),
            "refused": self.refused,
            "errors": self.errors,
            "missing": self.missing,
            "p50_ms": round(self.percentile(0.50), 3),
            "p90_ms": round(self.percentile(0.90), 3),
            "p99_ms": round(self.percentile(0.99), 3),
            "max_ms": round(max(ms), 3) if ms else None,
            "mean_ms": round(statistics.fmean(ms), 3) if ms else None,
        }


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> int:
        """Send one request and read its whole answer: OK, REFUSED or ERROR. Reconnects
        once when the server has closed the idle connection."""
        for attempt in (1, 2):
            try:
                if self._writer is None:
                    self._reader, self._writer = await asyncio.open_connection(
                        self._host, self._port
                    )
                assert self._reader is not None
                self._writer.write(request)
                head = await self._reader.readuntil(b"\r\n\r\n")
                length = _content_length(head)
                body = await self._reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 200") and body.startswith(SUCCESS):
                    return OK
                return REFUSED if REFUSAL in body[:100] else ERROR
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                self.close()
                if attempt == 2:
                    return ERROR
        return ERROR

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ConnectionError("answer without Content-Length")


def _run(coroutine: Any) -> Any:
    # The harness process holds every module it imported: a full pass of the cyclic GC
    # over them stalls the generator for tens of milliseconds, which would be counted as
    # the server's latency. What exists now is exempted for the run (gc.freeze).
    gc.collect()
    gc.freeze()
    try:
        if "uvloop" in globals():
            return uvloop.run(coroutine)
        return asyncio.run(coroutine)
    finally:
        gc.unfreeze()


# One request, or several to send in turn.
Requests = bytes | Sequence[bytes]


def _in_turn(request: Requests) -> Iterator[bytes]:
    return itertools.repeat(request) if isinstance(request, bytes) else itertools.cycle(request)


def closed_loop(
    host: str, port: int, request: Requests, *, connections: int, seconds: float
) -> Throughput:
    """``request`` is one request, or several sent in turn (by all clients together)."""
    return _run(_closed(host, port, request, connections, seconds))  # type: ignore[no-any-return]


async def _closed(
    host: str, port: int, request: Requests, connections: int, seconds: float
) -> Throughput:
    done = [0, 0, 0]  # by outcome: OK, REFUSED, ERROR
    started = time.perf_counter()
    deadline = started + seconds
    requests = _in_turn(request)

    async def client() -> None:
        conn = _Connection(host, port)
        try:
            while time.perf_counter() < deadline:
                done[await conn.exchange(next(requests))] += 1
        finally:
            conn.close()

    await asyncio.wait_for(
        asyncio.gather(*(client() for _ in range(connections))), seconds + GRACE_S
    )
    seconds = time.perf_counter() - started
    return Throughput(done[OK], done[REFUSED], done[ERROR], seconds, connections)


def open_loop(
    host: str, port: int, request: Requests, *, rate: float, seconds: float, connections: int = 64
) -> Latency:
    return _run(_open(host, port, request, rate, seconds, connections))  # type: ignore[no-any-return]


async def _open(
    host: str, port: int, request: Requests, rate: float, seconds: float, connections: int
) -> Latency:
    requests = _in_turn(request)
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(_Connection(host, port))
    latencies: list[float] = []
    failed = [0, 0, 0]  # by outcome; OK unused

    async def one(scheduled: float) -> None:
        conn = await idle.get()
        try:
            outcome = await conn.exchange(next(requests))
        finally:
            idle.put_nowait(conn)
        if outcome == OK:
            latencies.append((time.perf_counter() - scheduled) * 1000)
        else:
            failed[outcome] += 1

    count = max(1, int(rate * seconds))
    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(scheduled)))
    _, late = await asyncio.wait(tasks, timeout=GRACE_S)
    for task in late:
        task.cancel()
    while not idle.empty():
        idle.get_nowait().close()
    return Latency(rate, seconds, latencies, failed[REFUSED], failed[ERROR], len(late))
