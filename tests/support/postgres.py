"""A throwaway PostgreSQL server for tests and benchmarks.

Starts Debian's PostgreSQL binaries in a temporary directory, listening on 127.0.0.1 at a
free port. ``initdb`` and ``pg_ctl`` refuse to run as root, so as root they run as the
``postgres`` user (created by Debian's packages). Durability settings that only matter for
power loss (fsync) are off: tests kill processes, not machines. A process runs
``initdb`` once and gives each server a copy of that data directory (copying it is
cheaper than another ``initdb``).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg


class PostgresUnavailable(RuntimeError):
    pass


def _bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for candidate in reversed(candidates):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found: install Debian's postgresql package "
        "(scripts/test does this for you)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres() -> bool:
    return os.geteuid() == 0


def _run(bindir: Path, *args: str, log: Path | None = None) -> None:
    cmd = [str(bindir / args[0]), *args[1:]]
    if _as_postgres():
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        logged = log.read_text() if log and log.exists() else ""
        raise PostgresUnavailable(
            f"{' '.join(args[:2])} failed: {result.stderr or result.stdout}\n{logged}"
        )


def _private_directory(prefix: str) -> Path:
    """A new temporary directory that only the server's user can enter."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if _as_postgres():
        shutil.chown(root, "postgres", "postgres")
    os.chmod(root, 0o700)
    return root


_initdb_lock = threading.Lock()  # a cluster's nodes start at once: one initdb for them all


def _initialized(bindir: Path) -> Path:
    with _initdb_lock:
        return _initialize(bindir)


@functools.cache
def _initialize(bindir: Path) -> Path:
    """A data directory made by ``initdb`` and never started, made once per process and
    removed when it exits: each server starts from a copy."""
    root = _private_directory("voicecdr-initdb-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    data = root / "data"
    _run(bindir, "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--no-sync", "--locale=C")  # fmt: skip
    return data


class PostgresServer:
    def __init__(self, options: str = "", prefix: str = "voicecdr-pg-") -> None:
        """``options``: more ``-c name=value`` server settings (Citus's nodes add theirs)."""
        self.bindir = _bindir()
        self.options = options
        self.root = _private_directory(prefix)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()

    def _run(self, *args: str) -> None:
        _run(self.bindir, *args, log=self.log)

    def start(self) -> None:
        # cp -a keeps the owner (postgres) and the modes the server insists on.
        subprocess.run(["cp", "-a", str(_initialized(self.bindir)), str(self.data)], check=True)
        self.resume()

    def halt(self) -> None:
        """Stop the server (fast: open sessions are cut) and keep its data directory, as
        an outage would; :meth:`resume` starts it again on the same port and data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=200 "
            f"-c shared_buffers=256MB {self.options}"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(PostgresUnavailable):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str, template: str | None = None) -> str:
        clause = f" TEMPLATE {template}" if template else ""
        self.execute(f'CREATE DATABASE "{name}"{clause}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
