"""``POST /api/voiceSms/getVoiceCdr``: NXCloud's voice record query, exactly.

The async endpoint only reads the body; everything else (auth, rate limit, validation,
the query, rendering) runs in :class:`QueryService` in one worker-thread hop, since each
of those steps is either blocking database I/O or CPU work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..config import Settings
from ..errors import DatabaseUnavailable, StorageError, TokenRefused
from ..models import App, VoiceGroup
from ..ratelimit import Decision
from ..rows import RowCache, RowRenderer
from ..storage import Admission, AppStore, Page, PageReader, PageRequest, SharedRateLimiter
from ..timefmt import WindowError, query_window, zone
from .appauth import AppAuthenticator, Denied
from .clientaddr import ClientAddress
from .params import BodyTimeout, ParamError, read_params
from .problems import OUTAGE_RETRY_AFTER

log = logging.getLogger("voicecdr.api.query")

MAX_MESSAGEID = 128
MAX_PAGE = 1_000_000_000  # keeps the row offset, (page - 1) * page_size, well in 64 bits
# Query threads per server process when the setting says 0, by database. SQLite: none, the
# event loop answers (its reads never wait on a network, and a thread only adds GIL
# hand-offs); PostgreSQL: 2, so the loop never waits on the network
# (docs/performance.md#query-threads-per-process).
DEFAULT_QUERY_THREADS = {"sqlite": 0, "postgresql": 2}


@dataclass(frozen=True, slots=True)
class Answer:
    """An API answer: the envelope, its error slug (None on success), extra headers."""

    body: dict[str, Any]
    slug: str | None = None
    headers: dict[str, str] | None = None
    appkey: str | None = None
    status: int = 200  # NXCloud answers every envelope with 200; only a wrong method is 405

    def response(self) -> Response:
        return Response(
            orjson.dumps(self.body),
            self.status,
            headers=self.headers,
            media_type="application/json",
        )


def failure(
    slug: str, message: str, headers: dict[str, str] | None = None, *, status: int = 200
) -> Answer:
    return Answer({"code": "0", "info": message, "error": slug}, slug, headers, status=status)


_AUTH_FAILED = failure("auth_failed", "appkey or secretkey is incorrect")
# A database outage: still the one slug SPEC allows for it, but a message and a
# Retry-After (seconds, as ingest's 503 gives) that tell clients it is worth retrying.
_UNAVAILABLE = failure(
    "internal", "the database is unavailable; retry later", {"Retry-After": OUTAGE_RETRY_AFTER}
)


def _locked_out(decision: Decision) -> Answer:
    """The answer to an address locked out for failed authentications: the same whether
    its appkey exists and its secret is right (no appkey on it, so metrics say neither)."""
    wait = decision.retry_after_header
    return failure(
        "auth_failed",
        f"locked out after too many failed attempts from this address; retry after {wait} seconds",
        {"Retry-After": wait},
    )


@dataclass(frozen=True, slots=True)
class _Asked:
    """A query request's validated parameters."""

    group: VoiceGroup
    tz: ZoneInfo
    start: int
    end: int
    page: int
    page_size: int
    messageid: str | None
    extended: bool


class _Invalid(Exception):
    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message)
        self.slug = slug


class QueryService:
    """Authenticates, limits, validates and answers one query; blocking, thread-safe."""

    def __init__(
        self,
        reader: PageReader,
        apps: AppStore,
        limiter: SharedRateLimiter,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pages = reader
        self._auth = AppAuthenticator(apps, limiter, settings, clock)
        self._limiter = limiter
        self._clock = clock
        self._max_span = timedelta(hours=settings.max_span_hours)
        self._max_age = timedelta(days=settings.max_age_days) if settings.max_age_days else None
        self._max_page_size = settings.max_page_size
        self._rows = RowCache(settings.row_cache_rows) if settings.row_cache_rows else None

    @property
    def row_cache(self) -> RowCache | None:
        """The rendered rows this service keeps (None when ``row_cache_rows`` is 0)."""
        return self._rows

    def answer(self, params: dict[str, str], client: str | None = None) -> Answer:
        """``client`` is the caller's address, for the per-address failure limit."""
        try:
            return self._answer(params, client or "unknown")
        except _Invalid as exc:
            return failure(exc.slug, str(exc))
        except DatabaseUnavailable as exc:
            log.error("query failed: database unavailable", extra={"reason": str(exc)})
            return _UNAVAILABLE
        except StorageError:
            log.exception("query failed in storage")
            return failure("internal", "internal error, please retry")

    def _answer(self, params: dict[str, str], client: str) -> Answer:
        appkey = _required(params, "appkey")
        secretkey = _required(params, "secretkey")
        now = self._clock()
        verdict = self._auth.authenticate(appkey, secretkey, client)
        if isinstance(verdict, Denied):
            return _AUTH_FAILED if verdict.lockout is None else _locked_out(verdict.lockout)
        app, admission = verdict.app, verdict.admission
        try:
            asked = self._asked(params, app, now)
        except _Invalid:
            # Every request spends a token, and a refusal is the answer if it is refused.
            refusal = self._admit(app, admission)
            if refusal is not None:
                return refusal
            raise
        return self._page(app, asked, admission)

    def _page(self, app: App, asked: _Asked, admission: Admission) -> Answer:
        """The answer to a valid query: its page read (taking its token), then rendered."""
        renderer = RowRenderer(asked.group, asked.tz, app.language, extended=asked.extended)
        # Kept rows serve the window's pages, not a messageid's few rows.
        cache = self._rows if asked.messageid is None else None
        # Sweeping or polling is one client's habit: planned per app, not per renderer.
        habit = (app.id, renderer.key)
        whole, keep = cache.plan(habit) if cache is not None else (True, False)
        request = PageRequest(
            app.id,
            asked.group,
            asked.start,
            asked.end,
            (asked.page - 1) * asked.page_size,
            asked.page_size,
            asked.messageid,
            token=admission,
            whole=whole,
        )
        key = renderer.key
        lookup = None if cache is None else (lambda stamps: cache.get_all(key, stamps))
        try:
            page = self._pages.read(request, lookup)
        except TokenRefused:
            return self._refusal(app, self._limiter.refused(admission))
        if cache is not None:
            cache.note(habit, misses=len(page.rows), rows=len(page.stamps))
        rows = _rendered(page, renderer, cache if keep else None)
        info = {"total": page.total, "page": asked.page, "pageSize": asked.page_size, "rows": rows}
        return Answer({"code": "1", "info": info}, appkey=app.appkey)

    def _admit(self, app: App, admission: Admission) -> Answer | None:
        """Takes ``admission``'s token by itself; the answer if it is refused."""
        decision = self._limiter.take(admission)
        return None if decision.allowed else self._refusal(app, decision)

    @staticmethod
    def _refusal(app: App, decision: Decision) -> Answer:
        """The answer to a request whose token was refused."""
        if decision.locked_out:
            return _locked_out(decision)
        answer = failure(
            "rate_limited",
            "appkey access rate limit",
            {"Retry-After": decision.retry_after_header},
        )
        return Answer(answer.body, answer.slug, answer.headers, app.appkey)

    def _asked(self, params: dict[str, str], app: App, now: float) -> _Asked:
        """The request's query, validated; raises :class:`_Invalid`."""
        voice_type = _required(params, "voiceType")
        if voice_type not in ("0", "1"):
            raise _Invalid("invalid_parameter", "voiceType must be 0 or 1")
        group = VoiceGroup(int(voice_type))
        tz = zone(app.timezone)
        try:
            window = query_window(
                _required(params, "start_time"),
                _required(params, "end_time"),
                tz,
                now=now,
                max_span=self._max_span,
                max_age=self._max_age,
            )
        except WindowError as exc:
            raise _Invalid(exc.kind, str(exc)) from None
        page = _number(params, "page", MAX_PAGE)
        page_size = _number(params, "page_size", self._max_page_size)
        messageid = params.get("messageid") or None
        if messageid is not None and len(messageid) > MAX_MESSAGEID:
            raise _Invalid(
                "invalid_parameter", f"messageid must be at most {MAX_MESSAGEID} characters"
            )
        extended = params.get("extended", "0")
        if extended not in ("0", "1", ""):
            raise _Invalid("invalid_parameter", "extended must be 0 or 1")
        return _Asked(
            group, tz, window.start, window.end, page, page_size, messageid, extended == "1"
        )


def _rendered(page: Page[Any], renderer: RowRenderer, keep: RowCache | None) -> list[Any]:
    """The page's rows as JSON values: those the cache knew, and the rest rendered, as JSON
    fragments kept in ``keep`` if given (else as dicts)."""
    if not page.rows:
        return page.known
    pairs = list(zip(page.stamps, page.known, strict=True))
    unknown = (page.rows[stamp[0]] for stamp, known in pairs if known is None)
    render = renderer.render_all if keep is None else renderer.fragments
    fresh: Iterator[Any] = iter(render(unknown))
    out = []
    for stamp, known in pairs:
        if known is None:
            known = next(fresh)
            if keep is not None:
                keep.put(renderer.key, stamp, known)
        out.append(known)
    return out


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if value == "":
        raise _Invalid("invalid_parameter", f"{name} is required")
    return value


def _number(params: dict[str, str], name: str, high: int) -> int:
    text = _required(params, name)
    # ASCII digits only (int() reads every script's), at most as many as MAX_PAGE has: the
    # OpenAPI pattern says the same, and int() stays cheap.
    if len(text) <= 10 and text.isascii() and text.isdigit() and 1 <= int(text) <= high:
        return int(text)
    raise _Invalid("invalid_parameter", f"{name} must be a whole number from 1 to {high}")


class QueryEndpoint:
    """The ASGI app of the query path: body reading, then the answer, on the event loop
    (SQLite) or after one thread hop (PostgreSQL; see ``DEFAULT_QUERY_THREADS``).

    The hop goes to a thread pool of the endpoint's own through the event loop's
    ``run_in_executor``, cheaper than Starlette's ``run_in_threadpool``
    (docs/performance.md#the-thread-hop).
    """

    def __init__(self, service: QueryService, settings: Settings, dialect: str) -> None:
        self._service = service
        self._client_address = ClientAddress(settings.trusted_proxies)
        self._max_body = settings.max_body_bytes
        self._body_timeout = settings.body_timeout
        self._thread_count = settings.query_threads or DEFAULT_QUERY_THREADS.get(dialect, 2)
        # Answering on the event loop is only for a database in this process (SQLite),
        # whose reads never wait on a network; a request then holds the loop for as long
        # as its query runs, which the bucket counts keep to about one page's rows.
        self._threads: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False)
            self._threads = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self._thread_count, thread_name_prefix="query")
        return self._threads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An ASGI app of its own, so Starlette routes every method here, past the wrappers
        of function endpoints."""
        response = await self.handle(Request(scope, receive, send))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Every method of the query path comes here, so that each of its answers, a wrong
        method's and an unexpected error's included, is NXCloud's envelope."""
        try:
            answer = await self._answer(request)
        except ClientDisconnect:
            raise  # nobody to answer; logged by the access log
        except Exception:
            log.exception("query failed unexpectedly")
            answer = failure("internal", "internal error, please retry")
        request.state.outcome = answer.slug or "ok"
        request.state.appkey = answer.appkey
        return answer.response()

    async def _answer(self, request: Request) -> Answer:
        if request.method != "POST":
            return failure(
                "invalid_parameter", "method not allowed: use POST", {"Allow": "POST"}, status=405
            )
        try:
            params = await read_params(request, self._max_body, self._body_timeout)
        except BodyTimeout as exc:
            # HTTP 200 like every envelope error (NXCloud clients read the body); the rest
            # of the body is never read, so the connection cannot carry another request.
            return failure("invalid_parameter", str(exc), {"Connection": "close"})
        except ParamError as exc:
            return failure("invalid_parameter", str(exc))
        client = self._client_address.of(request)
        if not self._thread_count:
            return self._service.answer(params, client)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), self._service.answer, params, client)
