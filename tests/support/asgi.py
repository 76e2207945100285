"""Calling the app over bare ASGI, for requests an HTTP client library would not send."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient


def raw_post(
    client: TestClient, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes]:
    """POST ``body`` to the client's app with exactly these header bytes (an HTTP client
    library would re-encode or refuse some); the answer's status and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    client.portal.call(client.app, scope, receive, send)  # type: ignore[union-attr]
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent)
