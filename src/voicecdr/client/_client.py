"""The sync :class:`Client` and async :class:`AsyncClient` of the query API.

Both share the pure parts (``_protocol``, ``_pacing``, ``_timeutil``) and differ only in
how they wait and send.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx

from .. import __version__
from ._exceptions import ClientError, TransportError
from ._models import Page, Record, VoiceType
from ._pacing import Pacer, Retry, RetryState
from ._protocol import SpanReader, query_params, read_page
from ._timeutil import iter_spans, spans, to_wall, zone

DEFAULT_BASE_URL = "http://api2.nxcloud.com"
QUERY_PATH = "/api/voiceSms/getVoiceCdr"
DEFAULT_TIMEZONE = "Asia/Shanghai"
MAX_PAGE_SIZE = 1000
MAX_SPAN = timedelta(hours=24)

TimeLike = datetime | str
Span = tuple[datetime, datetime]


class _Base:
    """Configuration shared by both clients."""

    def __init__(
        self,
        appkey: str,
        secretkey: str,
        *,
        base_url: str,
        path: str,
        timezone: str,
        rate: float | None,
        retry: Retry,
        page_size: int,
        max_span: timedelta,
        max_rechecks: int,
        jitter: Callable[[], float],
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.appkey = appkey
        self._secretkey = secretkey
        self.base_url = base_url
        self.path = path
        self.tz = zone(timezone)
        self.retry = retry
        self.page_size = page_size
        self.max_span = max_span
        self.max_rechecks = max_rechecks
        self._jitter = jitter
        self._pacer = Pacer(rate)
        self._headers = {"User-Agent": f"voicecdr-client/{__version__}"}

    def __repr__(self) -> str:  # never the secretkey
        return f"<{type(self).__name__} {self.base_url}{self.path} appkey={self.appkey!r}>"

    def split(self, start: TimeLike, end: TimeLike) -> list[Span]:
        """The spans, as naive wall-clock times in the app's timezone, that
        :meth:`iter_records` queries for the window ``[start, end]`` (both inclusive)."""
        return spans(to_wall(start, self.tz), to_wall(end, self.tz), self.tz, self.max_span)

    def iter_split(self, start: TimeLike, end: TimeLike) -> Iterator[Span]:
        """:meth:`split`, lazily: a window of centuries is millions of spans."""
        return iter_spans(to_wall(start, self.tz), to_wall(end, self.tz), self.tz, self.max_span)

    def _params(
        self,
        voice_type: VoiceType | int,
        start: TimeLike,
        end: TimeLike,
        page: int,
        page_size: int | None,
        messageid: str | None,
        extended: bool,
    ) -> tuple[VoiceType, dict[str, str]]:
        kind = VoiceType(voice_type)
        params = query_params(
            self.appkey,
            self._secretkey,
            kind,
            to_wall(start, self.tz),
            to_wall(end, self.tz),
            page=page,
            page_size=page_size or self.page_size,
            messageid=messageid,
            extended=extended,
        )
        return kind, params


def _transport_error(exc: httpx.TransportError) -> TransportError:
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    try:
        url = exc.request.url  # scheme, host and port only: never a query string
        what = f"cannot reach {url.scheme}://{url.netloc.decode('ascii')}: {what}"
    except RuntimeError:  # an exception raised without its request (tests' transports)
        pass
    error = TransportError(what)
    error.__cause__ = exc
    return error


class Client(_Base):
    """A synchronous client of ``POST /api/voiceSms/getVoiceCdr``.

    ``base_url`` defaults to NXCloud's own endpoint. ``timezone`` must be the app's (all
    API times are wall-clock times in it). ``rate`` is the app's query rate limit in
    requests per second (None: no pacing). ``transport`` lets tests and special setups
    replace the network (e.g. ``httpx.MockTransport`` or an ASGI transport). ``clock``
    and ``sleep`` are injectable for the same reason. Thread-safe; use as a context
    manager or call :meth:`close`.
    """

    def __init__(
        self,
        appkey: str,
        secretkey: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        path: str = QUERY_PATH,
        timezone: str = DEFAULT_TIMEZONE,
        rate: float | None = 1.0,
        retry: Retry | None = None,
        timeout: float | httpx.Timeout = 30.0,
        page_size: int = MAX_PAGE_SIZE,
        max_span: timedelta = MAX_SPAN,
        max_rechecks: int = 3,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(
            appkey,
            secretkey,
            base_url=base_url,
            path=path,
            timezone=timezone,
            rate=rate,
            retry=retry or Retry(),
            page_size=page_size,
            max_span=max_span,
            max_rechecks=max_rechecks,
            jitter=jitter,
        )
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._http = httpx.Client(
            base_url=base_url, transport=transport, timeout=timeout, headers=self._headers
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def query(
        self,
        voice_type: VoiceType | int,
        start: TimeLike,
        end: TimeLike,
        *,
        page: int = 1,
        page_size: int | None = None,
        messageid: str | None = None,
        extended: bool = False,
    ) -> Page:
        """One page of one window (at most the server's span), paced and retried."""
        kind, params = self._params(voice_type, start, end, page, page_size, messageid, extended)
        return self._send(kind, params)

    def iter_span(
        self,
        voice_type: VoiceType | int,
        start: TimeLike,
        end: TimeLike,
        *,
        messageid: str | None = None,
        extended: bool = False,
    ) -> Iterator[Record]:
        """Every record of one span (at most ``max_span`` long), each once."""
        reader = SpanReader(self.page_size, self.max_rechecks)
        while (page := reader.next_page()) is not None:
            yield from reader.feed(
                self.query(
                    voice_type, start, end, page=page, messageid=messageid, extended=extended
                )
            )

    def iter_records(
        self,
        voice_type: VoiceType | int,
        start: TimeLike,
        end: TimeLike,
        messageid: str | None = None,
        *,
        extended: bool = False,
    ) -> Iterator[Record]:
        """Every record placed in ``[start, end]`` (any length), in (time, id) order,
        each exactly once: the window is split into spans the server allows, each span
        is paged through, requests are paced to ``rate``, and failures retried."""
        for lo, hi in self.iter_split(start, end):
            yield from self.iter_span(voice_type, lo, hi, messageid=messageid, extended=extended)

    def _send(self, kind: VoiceType, params: dict[str, str]) -> Page:
        state = RetryState(self.retry, self._jitter)
        while True:
            with self._lock:
                while (delay := self._pacer.wait(self._clock())) > 0:
                    self._sleep(delay)
                self._pacer.started(self._clock())
            try:
                try:
                    # Streamed, not post(): httpx 0.28 ties every response to its stream
                    # in a reference cycle (encode/httpx#3733), so a response is freed only
                    # by the cyclic GC, and it lives long enough (its page is parsed
                    # meanwhile) to reach the oldest generation, which CPython collects
                    # rarely. post() keeps the body on the response: whole pages (~0.5 MB
                    # at 1,000 rows) piled up between those passes and an export's memory
                    # grew with its length. A streamed body is our own bytes, freed once
                    # its page is parsed; only a few small objects wait for the GC.
                    with self._http.stream("POST", self.path, data=params) as response:
                        body = b"".join(response.iter_bytes())
                except httpx.TransportError as exc:
                    raise _transport_error(exc) from exc
                finally:
                    with self._lock:
                        self._pacer.finished(self._clock())
                return read_page(response, body, kind, self.tz)
            except ClientError as error:
                delay = state.delay_after(error)
                with self._lock:
                    self._pacer.hold_off(self._clock(), delay)


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client`: the same arguments (with an
    ``httpx.AsyncBaseTransport``, e.g. ``httpx.ASGITransport(app=...)``, as transport)
    and the same methods, awaited; :meth:`iter_records` is an async iterator."""

    def __init__(
        self,
        appkey: str,
        secretkey: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        path: str = QUERY_PATH,
        timezone: str = DEFAULT_TIMEZONE,
        rate: float | None = 1.0,
        retry: Retry | None = None,
        timeout: float | httpx.Timeout = 30.0,
        page_size: int = MAX_PAGE_SIZE,
        max_span: timedelta = MAX_SPAN,
        max_rechecks: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(
            appkey,
            secretkey,
            base_url=base_url,
            path=path,
            timezone=timezone,
            rate=rate,
            retry=retry or Retry(),
            page_size=page_size,
            max_span=max_span,
            max_rechecks=max_rechecks,
            jitter=jitter,
        )
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(
            base_url=base_url, transport=transport, timeout=timeout, headers=self._headers
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def query(
        self,
        voice_type: VoiceType | int,
        start: TimeLike,
        end: TimeLike,
        *,
        page: int = 1,
        page_size: int | None = None,
        messageid: str | None = None,
        extended: bool = False,
    ) -> Page:
        """One page of one window (at most the server's span), paced and retried."""
        kind, params = self._params(voice_type, start, end, page, page_size, messageid, extended)
        return await self._send(kind, params)

    async def iter_span(
        self,
        voice_type: VoiceType | int,
        start: TimeLike,
        end: TimeLike,
        *,
        messageid: str | None = None,
        extended: bool = False,
    ) -> AsyncIterator[Record]:
        """Every record of one span (at most ``max_span`` long), each once."""
        reader = SpanReader(self.page_size, self.max_rechecks)
        while (page := reader.next_page()) is not None:
            answer = await self.query(
                voice_type, start, end, page=page, messageid=messageid, extended=extended
            )
            for record in reader.feed(answer):
                yield record

    async def iter_records(
        self,
        voice_type: VoiceType | int,
        start: TimeLike,
        end: TimeLike,
        messageid: str | None = None,
        *,
        extended: bool = False,
    ) -> AsyncIterator[Record]:
        """Every record placed in ``[start, end]``, each exactly once; see
        :meth:`Client.iter_records`."""
        for lo, hi in self.iter_split(start, end):
            async for record in self.iter_span(
                voice_type, lo, hi, messageid=messageid, extended=extended
            ):
                yield record

    async def _send(self, kind: VoiceType, params: dict[str, str]) -> Page:
        state = RetryState(self.retry, self._jitter)
        while True:
            async with self._lock:
                while (delay := self._pacer.wait(self._clock())) > 0:
                    await self._sleep(delay)
                self._pacer.started(self._clock())
            try:
                try:
                    # Streamed, not post(): see Client._send.
                    async with self._http.stream("POST", self.path, data=params) as response:
                        body = b"".join([chunk async for chunk in response.aiter_bytes()])
                except httpx.TransportError as exc:
                    raise _transport_error(exc) from exc
                finally:
                    async with self._lock:
                        self._pacer.finished(self._clock())
                return read_page(response, body, kind, self.tz)
            except ClientError as error:
                delay = state.delay_after(error)
                async with self._lock:
                    self._pacer.hold_off(self._clock(), delay)
