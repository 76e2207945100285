"""Back-off, Retry-After, pacing and timeouts against fake NXCloud endpoints (the one thing
we may fake): an httpx MockTransport with a fake clock, and a real slow HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from voicecdr.client import (
    AsyncClient,
    Client,
    ProtocolError,
    RateLimited,
    Retry,
    ServerError,
    TransportError,
)

START, END = "2026-11-20 00:00:00", "2026-11-20 23:59:59"


def ok(total: int = 1, rows: list[dict[str, Any]] | None = None) -> httpx.Response:
    row = {
        "id": 7,
        "result": "Successful connection",
        "cycle": 20,
        "time": "2026-11-20 09:00:00",
        "start_time": "2026-11-20 09:00:01",
        "end_time": "2026-11-20 09:00:20",
        "phone": "810022458",
        "basic_price": 0.005,
        "second": 19,
        "countryCode": "91",
        "messageid": 784522,
        "customer_price": 0.05,
        "show_phone": "085944247",
        "size": "1",
        "ivr_result": 1,
    }
    body = {
        "code": "1",
        "info": {"total": total, "page": 1, "pageSize": 1000, "rows": rows or [row]},
    }
    return httpx.Response(200, json=body)


def limited(retry_after: str = "3") -> httpx.Response:
    body = {"code": "0", "info": "appkey access rate limit", "error": "rate_limited"}
    return httpx.Response(200, json=body, headers={"Retry-After": retry_after})


class FakeTime:
    """A clock that only moves when the client sleeps; records every request's start."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.starts: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(fake: FakeTime, answers: list[Callable[[], httpx.Response]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        fake.starts.append(fake.now)
        return answers.pop(0)()

    return httpx.MockTransport(handler)


def make_client(fake: FakeTime, transport: httpx.BaseTransport, **options: Any) -> Client:
    return Client(
        "k",
        "s",
        transport=transport,
        clock=fake.clock,
        sleep=fake.sleep,
        jitter=lambda: 0.0,
        **options,
    )


def refused() -> httpx.Response:
    raise httpx.ConnectError("connection refused")


def test_the_default_endpoint_is_nxclouds_and_records_parse_nxclouds_types() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok()

    with Client("k", "s", transport=httpx.MockTransport(handler)) as client:
        page = client.query(0, START, END)
    assert str(seen[0].url) == "http://api2.nxcloud.com/api/voiceSms/getVoiceCdr"
    assert seen[0].headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(httpx.QueryParams(seen[0].content.decode()))
    assert form == {
        "appkey": "k",
        "secretkey": "s",
        "voiceType": "0",
        "start_time": START,
        "end_time": END,
        "page_size": "1000",
        "page": "1",
    }
    record = page.records[0]
    assert (record.messageid, record.size, record.ivr_result) == ("784522", 1, "1")  # type: ignore[attr-defined]
    assert str(record.customer_price) == "0.05"
    assert "s" not in repr(client).split("appkey")[1].replace("'k'", "")


def test_5xx_and_network_errors_back_off_exponentially_then_succeed() -> None:
    fake = FakeTime()
    transport = scripted(fake, [lambda: httpx.Response(503, text="busy"), refused, lambda: ok()])
    with make_client(fake, transport, rate=None, retry=Retry(attempts=3, backoff=1.0)) as client:
        assert client.query(0, START, END).total == 1
    assert fake.sleeps == [0.5, 1.0]  # equal jitter at 0: half of 1 s, then of 2 s


def test_transient_failures_give_up_after_the_bound() -> None:
    fake = FakeTime()
    answers = [lambda: httpx.Response(500)] * 3 + [lambda: ok()]
    with (
        make_client(fake, scripted(fake, answers), rate=None, retry=Retry(attempts=2)) as client,
        pytest.raises(ServerError, match="HTTP 500"),
    ):
        client.query(0, START, END)
    assert len(fake.starts) == 3


def test_internal_is_retried_but_a_non_envelope_is_not() -> None:
    fake = FakeTime()
    internal = {"code": "0", "info": "internal error, please retry", "error": "internal"}
    answers = [
        lambda: httpx.Response(200, json=internal),
        lambda: httpx.Response(200, text="<html>"),
    ]
    with (
        make_client(fake, scripted(fake, answers), rate=None) as client,
        pytest.raises(ProtocolError, match="not JSON"),
    ):
        client.query(0, START, END)
    assert len(fake.starts) == 2


def test_rate_limited_waits_for_retry_after() -> None:
    fake = FakeTime()
    transport = scripted(fake, [lambda: ok(), lambda: limited("3"), lambda: ok()])
    with make_client(fake, transport, rate=1.0) as client:
        client.query(0, START, END)
        client.query(0, START, END)
    # The second request waited for the pacer (1.05 s), the third for Retry-After (3 s).
    assert fake.starts[1] - fake.starts[0] == pytest.approx(1.05)
    assert fake.starts[2] - fake.starts[1] == pytest.approx(3.0)


def test_rate_limited_without_a_slug_or_header_and_http_429_are_understood() -> None:
    fake = FakeTime()
    bare = {"code": "0", "info": "appkey access rate limit"}
    answers = [
        lambda: httpx.Response(200, json=bare),
        lambda: httpx.Response(429, headers={"Retry-After": "2"}),
        lambda: limited("1"),
    ]
    with (
        make_client(
            fake, scripted(fake, answers), rate=None, retry=Retry(rate_limited_attempts=2)
        ) as client,
        pytest.raises(RateLimited),
    ):
        client.query(0, START, END)
    assert fake.sleeps == [1.0, 2.0]


def test_pacing_spaces_a_multi_page_export_at_the_rate() -> None:
    fake = FakeTime()
    rows = [dict(ok().json()["info"]["rows"][0], id=i) for i in range(1, 6)]

    def handler(request: httpx.Request) -> httpx.Response:
        fake.starts.append(fake.now)
        page = int(dict(httpx.QueryParams(request.content.decode()))["page"])
        return ok(total=5, rows=rows[(page - 1) * 2 : page * 2])

    with make_client(fake, httpx.MockTransport(handler), rate=2.0, page_size=2) as client:
        got = list(client.iter_records(0, "2026-11-18 00:00:00", "2026-11-19 00:00:00"))
    assert [r.id for r in got] == [1, 2, 3, 4, 5]
    gaps = [b - a for a, b in zip(fake.starts, fake.starts[1:], strict=False)]
    assert gaps == pytest.approx([0.55] * (len(fake.starts) - 1))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_async_client_retries_too() -> None:
    answers = [httpx.Response(502), ok()]
    fake = FakeTime()

    async def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    async def sleep(seconds: float) -> None:
        fake.sleep(seconds)

    async with AsyncClient(
        "k",
        "s",
        transport=httpx.MockTransport(handler),
        rate=None,
        clock=fake.clock,
        sleep=sleep,
        jitter=lambda: 1.0,
    ) as client:
        page = await client.query(0, START, END)
    assert page.total == 1
    assert fake.sleeps == [0.5]


class _Slow(BaseHTTPRequestHandler):
    """Answers the first request after 1 s, the others at once."""

    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).calls == 1:
            time.sleep(1.0)
        body = json.dumps(ok().json()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hanging up on the slow answer is the point of the test


@pytest.fixture
def slow_server() -> Iterator[str]:
    _Slow.calls = 0
    server = _QuietServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_timeout_over_a_real_socket_is_retried(slow_server: str) -> None:
    with Client(
        "k", "s", base_url=slow_server, rate=None, timeout=0.3, retry=Retry(backoff=0.05)
    ) as client:
        assert client.query(0, START, END).total == 1
    assert _Slow.calls == 2
    with Client("k", "s", base_url=slow_server, rate=None, timeout=0.3, retry=Retry(0)) as client:
        _Slow.calls = 0
        with pytest.raises(TransportError, match="Timeout"):
            client.query(0, START, END)
