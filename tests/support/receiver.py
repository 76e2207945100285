"""A real receipt receiver on 127.0.0.1: records every request, answers as scripted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at: float


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"success"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """``behave(request_number, received)`` decides each answer (default: success)."""

    def __init__(self, behave: Callable[[int, Received], Answer] | None = None) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self.behave = behave or (lambda n, r: Answer())
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    return  # the sender died mid-request: not a delivery, nothing to answer
                got = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body.decode(),
                    time.monotonic(),
                )
                with receiver._lock:
                    receiver.received.append(got)
                    n = len(receiver.received)
                answer = receiver.behave(n, got)
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting: exactly what some tests want

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def by_webhook_id(self) -> dict[str, list[Received]]:
        out: dict[str, list[Received]] = {}
        for r in list(self.received):
            out.setdefault(r.headers["webhook-id"], []).append(r)
        return out


@contextmanager
def receiving(behave: Callable[[int, Received], Answer] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(behave)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        thread.join(5)
