"""A client that hangs up before its request body ends, against a real ``voicecdr serve``:
its doing, so no error or traceback in the log, and counted as ``client_disconnected``,
never ``internal``, on every endpoint that reads a body."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import Cli, Server
from voicecdr.api import QUERY_PATH

TOKEN = "disconnect-token-0123456789"
FREESWITCH = "fs:fs-password"


@pytest.fixture
def server(tmp_path: Path, sqlite_url: str) -> Iterator[Server]:
    cli = Cli(tmp_path, sqlite_url)
    cli.env["VOICECDR_INGEST_TOKEN"] = TOKEN
    cli.env["VOICECDR_FREESWITCH_CREDENTIALS"] = FREESWITCH
    server = Server(cli)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def hang_up_mid_body(port: int, path: str, content_type: str, extra: str = "") -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: 1000\r\n{extra}\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head + b"appkey=app1&secretkey=")
        time.sleep(0.2)  # the server is reading the body when the client goes


def samples(server: Server, name: str) -> dict[tuple[str, ...], float]:
    """``name``'s samples from /metrics, by their sorted label pairs."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line[len(name) + 1 :].rpartition("} ")
            found[tuple(sorted(labels.split(",")))] = float(value)
    return found


BASIC = base64.b64encode(FREESWITCH.encode()).decode()


@pytest.mark.parametrize(
    ("path", "content_type", "extra"),
    [
        (QUERY_PATH, "application/x-www-form-urlencoded", ""),
        (f"{QUERY_PATH}/", "application/x-www-form-urlencoded", ""),
        (QUERY_PATH, "multipart/form-data; boundary=xx", ""),
        ("/v1/cdrs", "application/json", f"Authorization: Bearer {TOKEN}\r\n"),
        ("/v1/ingest/freeswitch", "application/json", f"Authorization: Basic {BASIC}\r\n"),
    ],
)
def test_a_client_gone_mid_body_is_the_clients_doing(
    server: Server, path: str, content_type: str, extra: str
) -> None:
    route = path.rstrip("/")
    hang_up_mid_body(server.port, path, content_type, extra)
    wanted = ('outcome="client_disconnected"', f'route="{route}"')
    deadline = time.monotonic() + 5
    while (requests := samples(server, "voicecdr_http_requests_total")).get(wanted) != 1.0:
        assert time.monotonic() < deadline, requests
        time.sleep(0.1)
    assert {k: v for k, v in requests.items() if wanted[1] in k} == {wanted: 1.0}
    assert not [labels for labels in requests if 'outcome="internal"' in labels]
    ingested = samples(server, "voicecdr_ingest_records_total")
    assert all(value == 0 for value in ingested.values()), ingested
    records = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    assert "Traceback" not in server.logs()
    assert [r for r in records if r["level"] not in ("info", "debug")] == []
    access = [r for r in records if r["msg"] == "request" and r["path"] == route]
    assert [(r["status"], r["outcome"]) for r in access] == [(499, "client_disconnected")]
