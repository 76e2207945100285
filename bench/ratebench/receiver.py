"""A minimal receipt receiver: an ASGI app under uvicorn, in its own process on 127.0.0.1.

Every POST is read to the end and answered ``200 success`` (what NXCloud's customers must
answer); any GET returns how many POSTs it has answered, so a run can check that exactly
its receipts arrived. Started as a subprocess and stopped by its PID (querybench.server).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx

from querybench.server import HOST, _stop, _wait_ready, free_port

BENCH_DIR = Path(__file__).resolve().parents[1]
PATH = "/receipt"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_answered = 0


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    global _answered
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body", False))
    if scope["method"] == "POST":
        _answered += 1
        body = b"success"
    else:
        body = str(_answered).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def receiving(log_path: Path) -> Iterator[str]:
    """Run the receiver (one uvicorn process) on a free port; yields the callback URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "ratebench.receiver:app", "--app-dir", str(BENCH_DIR),
        "--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log",
        "--lifespan", "off", "--backlog", "1024",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        base_url = f"http://{HOST}:{port}"
        _wait_ready(process, base_url, log_path)
        yield base_url + PATH
    finally:
        _stop(process)


def answered(url: str) -> int:
    """How many POSTs the receiver at ``url`` has answered so far."""
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        return int(client.get(url).text)
