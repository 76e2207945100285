"""Our ingest endpoints: ``POST /v1/cdrs`` (batches) and ``POST /v1/ingest/freeswitch``.

Both read the body under a size limit, authenticate in constant time, and hand the
records to the same :class:`~voicecdr.ingest.core.Ingestor` the CLI uses, in a worker
thread (storage is blocking). Each request is stored in one transaction, so an answer
means exactly what it says: every record it counts as accepted is committed (and durable:
SQLite ``synchronous=FULL``, PostgreSQL ``synchronous_commit=on``), and nothing else is.
Errors are RFC 9457 problem details; a batch that could be read is answered with its
summary even when every record in it was rejected.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import Settings
from ..errors import DatabaseUnavailable, StorageError
from ..ingest import freeswitch
from ..ingest.core import BOM, Ingestor, Item, Summary
from ..ingest.timebounds import TimeLimits
from ..storage import AppStore, CdrWriter
from . import metrics
from .problems import OUTAGE_RETRY_AFTER, problem

log = logging.getLogger("voicecdr.api.ingest")

# What `cdrs sources` counts each endpoint's records under: one row an hour each, all apps
# together (the token is not per app, and a rejected record may name no valid app).
API_SOURCE = "api"
FREESWITCH_SOURCE = "freeswitch-http"

BATCH_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "",
)


class _Refused(Exception):
    """A request answered with a problem before any record was looked at."""

    def __init__(self, status: int, title: str, detail: str, headers: dict[str, str]) -> None:
        super().__init__(detail)
        self.response = problem(status, title, detail)
        self.response.headers.update(headers)


def _refuse(status: int, title: str, detail: str, **headers: str) -> _Refused:
    return _Refused(status, title, detail, headers)


@dataclass(frozen=True, slots=True)
class IngestEndpoints:
    """The two ingest routes over the apps and the CDR writer, with the operator's
    settings."""

    apps: AppStore
    writer: CdrWriter
    settings: Settings

    async def batch(self, request: Request) -> Response:
        """``POST /v1/cdrs``: a JSON array or NDJSON of canonical CDRs."""
        try:
            _check_bearer(request, self.settings.ingest_token)
            kind = freeswitch.media_type(request.headers.get("content-type", ""))
            if kind not in BATCH_TYPES:
                raise _refuse(
                    415,
                    "Unsupported Media Type",
                    f"content type {kind!r}: send application/json (an array) "
                    "or application/x-ndjson (one object per line)",
                )
            body = await _read_body(request, self.settings)
            items = _batch_items(body, self.settings.max_batch_records)
            summary = await self._ingest(items, API_SOURCE)
        except _Refused as refused:
            return refused.response
        _count("batch", summary)
        return JSONResponse(summary.to_dict())

    async def freeswitch(self, request: Request) -> Response:
        """``POST /v1/ingest/freeswitch``: one mod_json_cdr CDR, in any of its encodings."""
        query: bytes = request.scope.get("query_string", b"")
        uuid = None
        try:
            _check_basic(request, self.settings.freeswitch_credentials)
            body = await _read_body(request, self.settings)
            try:
                uuid = freeswitch.query_uuid(query)
                doc = freeswitch.decode_document(body, request.headers.get("content-type", ""))
            except freeswitch.UndecodableCdr as exc:
                status = 415 if "content type" in str(exc) else 400
                title = "Unsupported Media Type" if status == 415 else "Bad Request"
                raise _refuse(status, title, str(exc)) from None
            summary = await self._ingest([freeswitch.to_item(doc, uuid=uuid)], FREESWITCH_SOURCE)
        except _Refused as refused:
            log.warning(
                "FreeSWITCH CDR refused",
                extra={
                    "uuid": uuid,
                    "status": refused.response.status_code,
                    "reason": str(refused),
                },
            )
            metrics.INGESTED.labels("freeswitch", "rejected").inc()
            return refused.response
        _count("freeswitch", summary)
        if not summary.rejected:
            return JSONResponse(summary.to_dict())
        rejection = summary.rejected[0]
        conflict = any("conflict" in e for e in rejection.errors)
        reason = "; ".join(rejection.errors)
        log.warning(
            "FreeSWITCH CDR rejected",
            extra={"uuid": rejection.call_id or uuid, "reason": reason},
        )
        return problem(
            409 if conflict else 422,
            "Conflict" if conflict else "Unprocessable Content",
            reason,
            call_id=rejection.call_id,
            errors=rejection.errors,
        )

    async def _ingest(self, items: list[Item], source: str) -> Summary:
        # One transaction per request, its counts included: an error leaves nothing of it
        # behind.
        limits = TimeLimits.of(self.settings)
        ingestor = Ingestor(self.apps, self.writer, batch_size=max(1, len(items)), limits=limits)
        try:
            return await run_in_threadpool(ingestor.ingest, items, source=source)
        except StorageError as exc:
            log.error("ingest failed in storage", extra={"reason": str(exc)})
            # A named fault (down, read-only, full) is the operator's to see and the
            # client's to wait out; anything else stays vague to the client.
            cause = str(exc) if isinstance(exc, DatabaseUnavailable) else "the database failed"
            raise _refuse(
                503,
                "Service Unavailable",
                f"{cause}; nothing was stored, retry later",
                **{"Retry-After": OUTAGE_RETRY_AFTER},
            ) from exc


def _count(source: str, summary: Summary) -> None:
    metrics.INGESTED.labels(source, "accepted").inc(summary.accepted)
    metrics.INGESTED.labels(source, "duplicate").inc(summary.duplicates)
    metrics.INGESTED.labels(source, "rejected").inc(summary.rejected_total)


def _check_bearer(request: Request, token: SecretStr | None) -> None:
    if token is None:
        raise _refuse(
            503,
            "Service Unavailable",
            "HTTP ingest is not configured: the operator must set VOICECDR_INGEST_TOKEN",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise _refuse(
            401,
            "Unauthorized",
            "send the ingest token as Authorization: Bearer <token>",
            **{"WWW-Authenticate": 'Bearer realm="voicecdr"'},
        )


def _check_basic(request: Request, credentials: SecretStr | None) -> None:
    if credentials is None:
        raise _refuse(
            503,
            "Service Unavailable",
            "FreeSWITCH ingest is not configured: the operator must set "
            "VOICECDR_FREESWITCH_CREDENTIALS",
        )
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        given = b""
    expected = credentials.get_secret_value().encode()
    if scheme.lower() != "basic" or not hmac.compare_digest(given, expected):
        raise _refuse(
            401,
            "Unauthorized",
            "HTTP basic credentials missing or wrong: set cred=user:pass and "
            "auth-scheme=basic in json_cdr.conf.xml",
            **{"WWW-Authenticate": 'Basic realm="voicecdr"'},
        )


async def _read_body(request: Request, settings: Settings) -> bytes:
    timeout = settings.body_timeout
    try:
        # A client trickling its body would otherwise hold the connection indefinitely.
        async with asyncio.timeout(timeout):
            return await _read_limited(request, settings.max_batch_bytes)
    except TimeoutError:
        raise _refuse(
            408,
            "Request Timeout",
            f"request body not received within {timeout:g} s",
            # The unread rest of the body makes the connection unusable for another request.
            Connection="close",
        ) from None


async def _read_limited(request: Request, limit: int) -> bytes:
    too_large = _refuse(413, "Content Too Large", f"request body must be at most {limit} bytes")
    declared = request.headers.get("content-length", "")
    # ASCII digits only: str.isdigit() also takes "²", which int() then refuses.
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    # A client gone mid-body (ClientDisconnect) is left to ObserveMiddleware, which counts
    # it as the client's doing on every route; no record of it was read, none rejected.
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _batch_items(body: bytes, max_records: int) -> list[Item]:
    text = body.strip().removeprefix(BOM)
    if not text:
        raise _refuse(400, "Bad Request", "body is empty: send a JSON array or NDJSON")
    if text.startswith(b"["):
        try:
            records = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise _refuse(400, "Bad Request", f"body is not a valid JSON array ({exc})") from None
        _check_count(len(records), max_records)
        return [Item(i, raw) for i, raw in enumerate(records)]
    if text.startswith(b"{"):
        # One pretty-printed object is a batch of one; NDJSON fails this parse quickly.
        try:
            single = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            return [Item(0, single)]
    lines = [line for line in text.split(b"\n") if line.strip()]
    _check_count(len(lines), max_records)
    return list(_ndjson_items(lines))


def _ndjson_items(lines: list[bytes]) -> Iterator[Item]:
    for index, line in enumerate(lines):
        try:
            yield Item(index, orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            yield Item(index, None, error=f"record: not valid JSON ({exc})")


def _check_count(count: int, limit: int) -> None:
    if count > limit:
        raise _refuse(
            413,
            "Content Too Large",
            f"batch has {count} records; send at most {limit} per request",
        )
