"""The real command line, run as a subprocess the way an operator runs it."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.data import make_app
from voicecdr.storage import Database


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    def __init__(self, cwd: Path, database_url: str) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECDR_")}
        self.env["VOICECDR_DATABASE_URL"] = database_url
        self.env["VOICECDR_RATE_LIMIT_STATE"] = str(cwd / "ratelimit.sqlite")

    def store_app(self, appkey: str = "app1", **options: Any) -> None:
        """An app stored in this process, as ``apps create`` stores it: setup for tests
        whose subject is another command (``apps create`` runs in its own tests)."""
        with closing(Database(self.env["VOICECDR_DATABASE_URL"])) as db:
            make_app(db, appkey, **options)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "voicecdr", *args]

    def __call__(self, *args: str, timeout: float = 120) -> Result:
        done = subprocess.run(
            self.command(*args),
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def on_terminal(self, *args: str, stream: str = "stdout", timeout: float = 60) -> Result:
        """Run with ``stream`` (stdout or stderr) on a pseudo-terminal, as on a user's
        screen, and the other piped; what the terminal showed has plain newlines."""
        controller, terminal = pty.openpty()
        piped = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: terminal}
        try:
            process = subprocess.Popen(self.command(*args), cwd=self.cwd, env=self.env, **piped)
            os.close(terminal)
            drawn = b""
            while True:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the terminal's other end is closed: all read
                    break
                if not chunk:
                    break
                drawn += chunk
            out, err = process.communicate(timeout=timeout)
        finally:
            os.close(controller)
        shown = drawn.decode().replace("\r\n", "\n")
        if stream == "stdout":
            return Result(process.returncode, shown, err.decode())
        return Result(process.returncode, out.decode(), shown)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Background:
    """A ``voicecdr`` process in the background, its output in :attr:`log`, stopped by
    its PID."""

    log: Path
    process: subprocess.Popen[bytes]

    def logs(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Server(Background):
    """``voicecdr serve`` in the background, stopped by its PID."""

    def __init__(self, cli: Cli, *args: str) -> None:
        self.port = free_port()
        self.log = cli.cwd / f"serve-{self.port}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                cli.command("serve", "--port", str(self.port), *args),
                cwd=cli.cwd,
                env=cli.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve not ready in {timeout}s:\n{self.logs()}")


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    return Cli(tmp_path, database_url)


@pytest.fixture
def sqlite_cli(tmp_path: Path, sqlite_url: str) -> Cli:
    """A CLI on SQLite alone, for tests of parsing, usage errors and output where the
    database plays no part (storage is covered on every database in tests/integration)."""
    return Cli(tmp_path, sqlite_url)


@pytest.fixture
def fresh_cli(tmp_path: Path) -> Cli:
    """A CLI on an SQLite file that does not exist yet."""
    return Cli(tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}")


@pytest.fixture
def serve(cli: Cli) -> Iterator[Any]:
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(cli, *args)
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()
