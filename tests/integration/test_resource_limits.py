"""Every resource limit at its edge: the largest accepted value works, one more is refused
with the interface's error shape, and nothing is stored from a refused request.

Limits are set small through settings so the edges are cheap to reach; the real ASGI app
and a real SQLite store answer. The slow-client cut-off against a real server and socket
is in ``tests/acceptance/test_slow_client.py``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support import freeswitch as fs
from tests.support.data import canonical, make_app
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.api.params import MAX_FIELDS
from voicecdr.config import Settings
from voicecdr.storage import Database

TOKEN = "t0ken-for-tests-0123456789"
CRED = "freeswitch:s3cret-pass"
BEARER = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
BASIC = {"Authorization": "Basic " + base64.b64encode(CRED.encode()).decode()}
FORM = "application/x-www-form-urlencoded"
LIMITS: dict[str, Any] = {
    "max_age_days": 0,
    "max_page_size": 5,
    "max_body_bytes": 8192,
    "max_batch_records": 3,
    "max_batch_bytes": 4096,
    "body_timeout": 0.3,
}


@pytest.fixture
def limited(sqlite_url: str, tmp_path: Any) -> Iterator[tuple[Starlette, Database]]:
    db = Database(sqlite_url)
    make_app(db, "app1", secretkey="secret1")
    settings = Settings(
        database_url=sqlite_url,
        rate_limit_state=str(tmp_path / "ratelimit.sqlite"),
        ingest_token=TOKEN,
        freeswitch_credentials=CRED,
        **LIMITS,
    )
    yield create_app(settings, db), db
    db.close()


@pytest.fixture
def client(limited: tuple[Starlette, Database]) -> Iterator[TestClient]:
    with TestClient(limited[0], raise_server_exceptions=False) as client:
        yield client


def query_form(**overrides: str) -> dict[str, str]:
    return {
        "appkey": "app1",
        "secretkey": "secret1",
        "voiceType": "0",
        "start_time": "2019-09-09 09:00:00",
        "end_time": "2019-09-09 09:59:59",
        "page": "1",
        "page_size": "5",
        **overrides,
    }


def envelope(response: Any) -> dict[str, Any]:
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def stored(client: TestClient) -> int:
    answer = envelope(client.post(QUERY_PATH, data=query_form()))
    assert answer["code"] == "1", answer
    return int(answer["info"]["total"])


def test_page_size_up_to_the_maximum(client: TestClient) -> None:
    ok = envelope(client.post(QUERY_PATH, data=query_form(page_size="5")))
    assert ok["code"] == "1"
    assert ok["info"]["pageSize"] == 5
    for beyond in ("6", "1001", "999999999"):
        refused = envelope(client.post(QUERY_PATH, data=query_form(page_size=beyond)))
        assert refused == {
            "code": "0",
            "info": "page_size must be a whole number from 1 to 5",
            "error": "invalid_parameter",
        }


def test_query_body_size(client: TestClient) -> None:
    base = "&".join(f"{k}={v}" for k, v in query_form().items())
    pad = "&pad="
    at_limit = (base + pad + "x" * (8192 - len(base) - len(pad))).encode()
    assert len(at_limit) == 8192
    ok = envelope(client.post(QUERY_PATH, content=at_limit, headers={"content-type": FORM}))
    assert ok["code"] == "1", ok
    too_big = envelope(
        client.post(QUERY_PATH, content=at_limit + b"x", headers={"content-type": FORM})
    )
    assert too_big["error"] == "invalid_parameter"
    assert too_big["info"] == "request body must be at most 8192 bytes"


def test_query_form_field_count(client: TestClient) -> None:
    fields = query_form()
    extra = {f"f{i}": "1" for i in range(MAX_FIELDS - len(fields))}
    assert envelope(client.post(QUERY_PATH, data={**fields, **extra}))["code"] == "1"
    one_more = {**fields, **extra, "last": "1"}
    for kwargs in ({"data": one_more}, {"files": {k: (None, v) for k, v in one_more.items()}}):
        refused = envelope(client.post(QUERY_PATH, **kwargs))
        assert refused["error"] == "invalid_parameter"
        assert f"{MAX_FIELDS}" in refused["info"], refused


def test_batch_record_count_and_size(client: TestClient) -> None:
    three = [canonical(f"c{i}") for i in range(3)]
    ok = client.post("/v1/cdrs", content=orjson.dumps(three), headers=BEARER)
    assert ok.status_code == 200
    assert ok.json()["accepted"] == 3
    four = [canonical(f"d{i}") for i in range(4)]
    for body in (orjson.dumps(four), b"\n".join(orjson.dumps(r) for r in four)):
        refused = client.post("/v1/cdrs", content=body, headers=BEARER)
        assert refused.status_code == 413
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"] == "batch has 4 records; send at most 3 per request"
    record = orjson.dumps([canonical("e1")])
    padded = record[:-1] + b" " * (4096 - len(record)) + b"]"
    assert len(padded) == 4096
    assert client.post("/v1/cdrs", content=padded, headers=BEARER).status_code == 200
    too_big = client.post("/v1/cdrs", content=padded + b" ", headers=BEARER)
    assert too_big.status_code == 413
    assert too_big.json()["detail"] == "request body must be at most 4096 bytes"
    assert stored(client) == 4


def test_freeswitch_body_size(client: TestClient) -> None:
    body, content_type = fs.body(fs.cdr("u-1"), "json")
    headers = {**BASIC, "Content-Type": content_type}
    padded = body + b" " * (4096 - len(body))
    assert client.post("/v1/ingest/freeswitch", content=padded, headers=headers).status_code == 200
    too_big = client.post("/v1/ingest/freeswitch", content=padded + b" ", headers=headers)
    assert too_big.status_code == 413
    assert too_big.json()["detail"] == "request body must be at most 4096 bytes"


async def _trickle(app: Starlette, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Call ``app`` with a body whose first byte arrives and the rest never does."""
    sent: list[dict[str, Any]] = []
    first = [b"a"]

    async def receive() -> dict[str, Any]:
        if first:
            return {"type": "http.request", "body": first.pop(), "more_body": True}
        await asyncio.sleep(3600)
        raise AssertionError("the body deadline did not fire")

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    return sent


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (QUERY_PATH, {"content-type": FORM, "content-length": "100"}),
        ("/v1/cdrs", {**BEARER, "content-length": "100"}),
        ("/v1/ingest/freeswitch", {**BASIC, "content-type": "application/json"}),
    ],
)
def test_a_trickled_body_is_cut_off(
    limited: tuple[Starlette, Database], path: str, headers: dict[str, str]
) -> None:
    started = time.monotonic()
    start, body = asyncio.run(_trickle(limited[0], path, headers))
    assert 0.3 <= time.monotonic() - started < 2
    response_headers = dict(start["headers"])
    assert response_headers[b"connection"] == b"close"
    answer = orjson.loads(body["body"])
    if path == QUERY_PATH:
        assert start["status"] == 200
        assert answer == {
            "code": "0",
            "info": "request body not received within 0.3 s",
            "error": "invalid_parameter",
        }
    else:
        assert start["status"] == 408
        assert response_headers[b"content-type"] == b"application/problem+json"
        assert answer["detail"] == "request body not received within 0.3 s"
