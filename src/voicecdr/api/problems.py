"""The error shape of our own endpoints: RFC 9457 problem details.

The NXCloud query endpoint keeps NXCloud's envelope instead (see ``query.py``).
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import JSONResponse

# Retry-After (seconds) of every answer to a database outage: ingest, analytics, the query API.
OUTAGE_RETRY_AFTER = "5"


def problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status, media_type="application/problem+json")


def status_problem(status: int, detail: str | None = None) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    return problem(status, phrase, detail or phrase)
