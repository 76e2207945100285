"""Servers under test as subprocesses on 127.0.0.1: started, awaited, and stopped by PID.

``serving`` runs ``voicecdr serve``; ``started`` runs any command that serves HTTP on the
port it is given and answers ``GET /readyz`` (``bench/baseline_app.py`` does).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
_CLI = "from voicecdr.cli import main; main()"


@dataclass(frozen=True, slots=True)
class Served:
    """A running server: where to reach it and the PID of its (top) process."""

    url: str
    port: int
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_command(database_url: str, port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable, "-c", _CLI, "--database-url", database_url,
        "serve", "--host", HOST, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


@contextlib.contextmanager
def started(
    command: Callable[[int], Sequence[str]],
    log_path: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[Served]:
    """Run ``command(port)`` on a free port until the block ends; waits for ``/readyz``.

    The output goes to ``log_path`` (a pipe nobody reads could fill and stall it);
    ``env`` is added to this process's environment.
    """
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command(port)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        base_url = f"http://{HOST}:{port}"
        _wait_ready(process, base_url, log_path)
        yield Served(base_url, port, process.pid)
    finally:
        _stop(process)


@contextlib.contextmanager
def serving(database_url: str, log_path: Path) -> Iterator[str]:
    """Run ``voicecdr serve`` (one worker) on a free port; yields its base URL."""
    with started(lambda port: serve_command(database_url, port), log_path) as served:
        yield served.url


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
    raise RuntimeError(f"{process.args!r} (pid {process.pid}) did not become ready:\n{tail}")


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
