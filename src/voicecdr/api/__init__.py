"""The HTTP application, assembled explicitly by :func:`create_app` (never at import)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import console, gcpolicy, logs
from ..config import Settings
from ..storage import AppStore, CdrWriter, Database, PageReader, ReportReader, SharedRateLimiter
from ..workers.health import WorkerHealth
from ..workers.runner import run_workers
from . import metrics, ops
from .analytics import AnalyticsEndpoint, AnalyticsService
from .appauth import AppAuthenticator
from .ingest import IngestEndpoints
from .problems import status_problem
from .query import QueryEndpoint, QueryService

log = logging.getLogger("voicecdr.api")

QUERY_PATH = "/api/voiceSms/getVoiceCdr"


class ObserveMiddleware:
    """Access log and metrics for every request, and the last line of defence: an
    unexpected exception becomes the route's error shape, never a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _drop_trailing_slash(scope)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            # The client hung up before its body ended: its doing, and nobody to answer.
            # Logged as 499, the status proxies (nginx) give a request its client closed.
            status = 499
            scope.setdefault("state", {})["outcome"] = "client_disconnected"
        except Exception:
            log.exception("unhandled error", extra={"path": scope["path"]})
            if response_started:
                raise
            status = 500
            scope.setdefault("state", {})["outcome"] = "internal"
            await status_problem(500)(scope, receive, send)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_label(scope)
            state = scope.get("state", {})
            outcome = state.get("outcome") or f"{status // 100}xx"
            metrics.REQUESTS.labels(route, outcome).inc()
            metrics.LATENCY.labels(route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],  # never the query string: it may hold secrets
                    "status": status,
                    "outcome": outcome,
                    "ms": round(elapsed * 1000, 2),
                    "appkey": state.get("appkey"),
                },
            )


def _drop_trailing_slash(scope: Scope) -> None:
    """``/healthz/`` is served as ``/healthz``, the query path likewise: a client that adds
    a slash means the same endpoint. Starlette's answer, a 307 redirect, loses a POST with
    many HTTP clients, and its absolute ``http://`` URL is wrong behind a TLS proxy."""
    path: str = scope["path"]
    if path.endswith("/") and path != "/":
        scope["path"] = path.rstrip("/") or "/"


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = status_problem(exc.status_code, str(exc.detail))
    response.headers.update(exc.headers or {})
    return response


def create_app(
    settings: Settings,
    db: Database | None = None,
    clock: Callable[[], float] = time.time,
    *,
    workers: bool = False,
) -> Starlette:
    """Build the ASGI app. A database passed in stays open after shutdown (its owner closes
    it); one opened here from ``settings.database_url`` is closed on shutdown. ``clock``
    is the wall clock used for rate limits and the query window's age. With ``workers``
    the rater and the receipt sender run beside the API for the app's lifetime, and
    ``/readyz`` answers 503 while one of them is failing."""
    owned = db is None
    db = db if db is not None else Database(settings.database_url)
    apps, limiter = AppStore(db), SharedRateLimiter(db, settings.rate_limit_state)
    service = QueryService(PageReader(db), apps, limiter, settings, clock)
    query = QueryEndpoint(service, settings, db.dialect)
    ingest = IngestEndpoints(apps, CdrWriter(db), settings)
    auth = AppAuthenticator(apps, limiter, settings, clock)
    analytics = AnalyticsEndpoint(
        AnalyticsService(ReportReader(db), auth, settings, clock), settings
    )
    health = WorkerHealth()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stopping = asyncio.Event()
        background = (
            asyncio.create_task(run_workers(db, settings, stopping, clock=clock, health=health))
            if workers
            else None
        )
        try:
            yield
        finally:
            stopping.set()
            if background is not None:
                await background
            limiter.close()
            query.close()
            if owned:
                db.close()

    routes = [
        Route(QUERY_PATH, query),  # an ASGI app: every method, each answered in the envelope
        Route("/v1/cdrs", ingest.batch, methods=["POST"]),
        Route("/v1/ingest/freeswitch", ingest.freeswitch, methods=["POST"]),
        Route("/v1/analytics", analytics.get, methods=["GET"]),
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz_for(db, health), methods=["GET"]),
        Route("/metrics", ops.metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", ops.openapi_for(settings), methods=["GET"]),
        Route("/docs", ops.docs, methods=["GET"]),
        Mount(ops.SWAGGER_UI_PATH, ops.swagger_ui_assets()),
        *console.mount(db, settings, auth, clock),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(ObserveMiddleware)],
        exception_handlers={HTTPException: _http_exception},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # ObserveMiddleware serves /x/ as /x instead
    return app


def factory() -> Starlette:
    """Entry point for ``uvicorn --factory``: settings from the environment."""
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    app = create_app(settings, workers=settings.serve_workers)
    gcpolicy.freeze_startup()
    return app
