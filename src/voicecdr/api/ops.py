"""Operational endpoints: liveness, readiness, metrics, OpenAPI and its docs page."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles

from ..config import Settings
from ..errors import StorageError
from ..storage import Database, require_current
from ..workers.health import WorkerHealth
from . import metrics
from .openapi import openapi_document
from .problems import problem

log = logging.getLogger("voicecdr.api.ops")

# Swagger UI is shipped in the package (scripts/vendor-swagger-ui), so /docs works offline.
SWAGGER_UI_DIR = Path(__file__).parent / "static" / "swagger-ui"
SWAGGER_UI_PATH = "/docs/swagger-ui"

_DOCS_HTML = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>voicecdr API</title>
<link rel="stylesheet" href="{SWAGGER_UI_PATH}/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="{SWAGGER_UI_PATH}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#ui", validatorUrl: null}});</script>
<noscript>The machine-readable API description is at <a href="/openapi.json">/openapi.json</a>.
</noscript></body></html>
"""


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def readyz_for(
    db: Database, health: WorkerHealth | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """Ready when the database answers with the current schema and none of this
    process's background workers (``health``) is failing."""

    def check() -> None:
        db.ping()
        require_current(db)

    async def readyz(request: Request) -> Response:
        try:
            await run_in_threadpool(check)
        except StorageError as exc:
            log.warning("not ready", extra={"reason": str(exc)})
            return problem(503, "Not ready", str(exc))
        failing = health.failing() if health is not None else {}
        if failing:
            detail = "; ".join(f"worker {name} is failing: {why}" for name, why in failing.items())
            log.warning("not ready", extra={"reason": detail})
            return problem(503, "Not ready", detail, workers=failing)
        return JSONResponse({"status": "ready"})

    return readyz


async def metrics_endpoint(request: Request) -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


def openapi_for(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    body = JSONResponse(openapi_document(settings)).body

    async def openapi_json(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return openapi_json


async def docs(request: Request) -> Response:
    return HTMLResponse(_DOCS_HTML)


def swagger_ui_assets() -> StaticFiles:
    """The Swagger UI files the docs page loads, with its license and notice."""
    return StaticFiles(directory=SWAGGER_UI_DIR)
