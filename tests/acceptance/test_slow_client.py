"""A client that trickles its request body is cut off by a real ``voicecdr serve``, and the
server keeps answering everyone else meanwhile."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import Cli, Server
from voicecdr.api import QUERY_PATH

TOKEN = "slow-client-token-0123456789"
BODY_TIMEOUT = 2
FORM = {
    "appkey": "app1",
    "secretkey": "secret1",
    "voiceType": "0",
    "start_time": "2019-09-09 09:00:00",
    "end_time": "2019-09-09 09:59:59",
    "page": "1",
    "page_size": "10",
}


@pytest.fixture
def server(tmp_path: Path, sqlite_url: str) -> Iterator[Server]:
    cli = Cli(tmp_path, sqlite_url)
    made = cli(
        "apps",
        "create",
        "--name",
        "A",
        "--appkey",
        "app1",
        "--secretkey",
        "secret1",
        "--rate-limit",
        "1000",
    )
    assert made.code == 0, made.err
    cli.env["VOICECDR_INGEST_TOKEN"] = TOKEN
    cli.env["VOICECDR_BODY_TIMEOUT"] = str(BODY_TIMEOUT)
    cli.env["VOICECDR_MAX_AGE_DAYS"] = "0"
    server = Server(cli)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def trickle(port: int, head: bytes, seconds: float) -> tuple[bytes, float, bool]:
    """Send ``head``, then one body byte a second; return (answer, seconds to answer,
    whether the server closed the connection after answering)."""
    stop = threading.Event()
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        sock.sendall(head)
        started = time.monotonic()

        def drip() -> None:
            while not stop.wait(1):
                with contextlib.suppress(OSError):
                    sock.sendall(b"a")

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        answer = b""
        closed = False
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                    break
                answer += chunk
                if _complete(answer):
                    elapsed = time.monotonic() - started
                    # The answer is complete; the server must now hang up on us (a reset
                    # when our next drip reached the closed socket first).
                    try:
                        closed = sock.recv(1) == b""
                    except ConnectionResetError:
                        closed = True
                    break
        finally:
            stop.set()
            dripper.join()
        return answer, elapsed, closed


def _complete(answer: bytes) -> bool:
    headers, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in headers.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def head(path: str, content_type: str, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: 1000\r\n{extra}\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("path", "content_type", "extra", "status", "text"),
    [
        (
            QUERY_PATH,
            "application/x-www-form-urlencoded",
            "",
            b"HTTP/1.1 200",
            b'"error":"invalid_parameter"',
        ),
        (
            "/v1/cdrs",
            "application/json",
            f"Authorization: Bearer {TOKEN}\r\n",
            b"HTTP/1.1 408",
            b'"title":"Request Timeout"',
        ),
    ],
)
def test_trickled_body_is_cut_off_while_others_are_served(
    server: Server, path: str, content_type: str, extra: str, status: bytes, text: bytes
) -> None:
    others: list[float] = []
    failures: list[str] = []
    done = threading.Event()

    def meanwhile() -> None:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            while not done.is_set():
                started = time.monotonic()
                answer = client.post(QUERY_PATH, data=FORM)
                ready = client.get("/readyz")
                others.append(time.monotonic() - started)
                if answer.json()["code"] != "1" or ready.status_code != 200:
                    failures.append(f"{answer.text} {ready.status_code}")
                time.sleep(0.1)

    other = threading.Thread(target=meanwhile)
    other.start()
    try:
        answer, elapsed, closed = trickle(server.port, head(path, content_type, extra), 10)
    finally:
        done.set()
        other.join()
    assert answer.startswith(status), answer
    assert text in answer
    assert b"request body not received within 2 s" in answer
    assert BODY_TIMEOUT <= elapsed < BODY_TIMEOUT + 2
    assert closed
    assert failures == []
    assert len(others) >= 5  # served all along, not after the slow client went away
    assert max(others) < 1.0, others
    print(
        f"\nslow client on {path}: answered after {elapsed:.2f} s; meanwhile "
        f"{len(others)} query+readyz pairs, slowest {max(others) * 1000:.0f} ms"
    )
