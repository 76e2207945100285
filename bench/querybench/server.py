"""``voicecdr serve`` as a subprocess on 127.0.0.1: started, awaited, and stopped by PID."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
_CLI = "from voicecdr.cli import main; main()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(database_url: str, log_path: Path) -> Iterator[str]:
    """Run ``voicecdr serve`` (one worker) on a free port; yields its base URL.

    The server's output goes to ``log_path`` (a pipe nobody reads could fill and stall it).
    """
    port = free_port()
    command = [
        sys.executable, "-c", _CLI, "--database-url", database_url,
        "serve", "--host", HOST, "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        base_url = f"http://{HOST}:{port}"
        _wait_ready(process, base_url, log_path)
        yield base_url
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(base_url=base_url, timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            with contextlib.suppress(httpx.TransportError):
                if client.get("/readyz").status_code == 200:
                    return
            time.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-4000:]
    raise RuntimeError(f"voicecdr serve (pid {process.pid}) did not become ready:\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to this one PID, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
