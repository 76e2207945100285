"""What the clients leave behind them page after page: no answer's body may wait for the
cyclic garbage collector, or a long export holds pages it finished with long ago.

httpx 0.28 ties each response to its stream in a reference cycle (encode/httpx#3733), so
a response outlives its page until a cyclic collection. The endpoint here is a
MockTransport answering with a stream, as the network transport does (a response built
with ``json=`` would arrive already read)."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from voicecdr.client import AsyncClient, Client
from voicecdr.client._models import GROUP_CALL_FIELDS

START, END = "2026-11-20 00:00:00", "2026-11-20 23:59:59"
PAGES, PAGE_SIZE = 5, 50


def row(record_id: int) -> dict[str, Any]:
    """A group-call row in NXCloud's field order; only the id changes."""
    connected = ("Successful connection", 20, *["2026-11-20 09:00:00"] * 3, "810022458")
    prices = (0.005, 19, "91", "784522", 0.05, "085944247", 1, "1")
    return dict(zip(GROUP_CALL_FIELDS, (record_id, *connected, *prices), strict=True))


def streamed_pages(request: httpx.Request) -> httpx.Response:
    page = int(dict(httpx.QueryParams(request.content.decode()))["page"])
    first = (page - 1) * PAGE_SIZE + 1
    rows = [row(i) for i in range(first, min(first + PAGE_SIZE, PAGES * PAGE_SIZE + 1))]
    info = {"total": PAGES * PAGE_SIZE, "page": page, "pageSize": PAGE_SIZE, "rows": rows}
    body = json.dumps({"code": "1", "info": info}).encode()
    return httpx.Response(200, stream=httpx.ByteStream(body))


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def bodies_left() -> int:
    """Responses only the cyclic collector can free that still hold their body."""
    left = 0
    for thing in gc.get_objects():
        if isinstance(thing, httpx.Response):
            try:
                thing.content  # noqa: B018 - raises when the body was never kept
            except httpx.ResponseNotRead:
                continue
            left += 1
    return left


@pytest.mark.usefixtures("no_cyclic_gc")
def test_the_sync_client_keeps_no_page_body_for_the_garbage_collector() -> None:
    transport = httpx.MockTransport(streamed_pages)
    with Client("k", "s", transport=transport, rate=None, page_size=PAGE_SIZE) as client:
        got = [r.id for r in client.iter_records(0, START, END)]
        assert got == list(range(1, PAGES * PAGE_SIZE + 1))
        assert bodies_left() == 0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.usefixtures("no_cyclic_gc")
async def test_the_async_client_keeps_no_page_body_for_the_garbage_collector() -> None:
    transport = httpx.MockTransport(streamed_pages)
    async with AsyncClient("k", "s", transport=transport, rate=None, page_size=PAGE_SIZE) as c:
        got = [r.id async for r in c.iter_records(0, START, END)]
        assert got == list(range(1, PAGES * PAGE_SIZE + 1))
        assert bodies_left() == 0
