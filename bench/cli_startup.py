"""Start-up cost of ``voicecdr`` database commands: median wall and user+sys CPU per run.

Each command runs as a process, as users and the acceptance tests run it, against a
small demo database (``voicecdr demo``): SQLite, and PostgreSQL when ``--postgres`` (a
throwaway server from tests/support). ``export`` queries a ``voicecdr serve`` on the
SQLite database. Run it on a quiet machine: CPU time is what to compare.

    python bench/cli_startup.py --runs 10 [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VOICECDR = str(Path(sys.executable).with_name("voicecdr"))
WINDOW = ("--from", "2000-01-01 00:00:00", "--to", "2100-01-01 00:00:00")
COMMANDS = {
    "apps list": ["apps", "list"],
    "rates show": ["rates", "show", "demo"],
    "cdrs list": ["cdrs", "list", "demo", *WINDOW, "--limit", "100"],
    "rate": ["rate"],
}


def timed(args: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall seconds and median user+sys CPU seconds of ``runs`` runs."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def prepared(url: str) -> dict[str, str]:
    """The environment of a command on the database at ``url``, which gets the demo data."""
    env = {**os.environ, "VOICECDR_DATABASE_URL": url}
    for step in (["db", "upgrade"], ["demo", "--count", "1000"]):
        subprocess.run([VOICECDR, *step], env=env, stdout=subprocess.DEVNULL, check=True)
    return env


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """A ``voicecdr serve`` on a free port; its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [VOICECDR, "serve", "--port", str(port), "--no-workers"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


def report(database: str, env: dict[str, str], runs: int) -> None:
    for name, args in COMMANDS.items():
        wall, cpu = timed([VOICECDR, *args], env, runs)
        print(f"| {database} | `{name}` | {wall:.3f} | {cpu:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too")
    opts = parser.parse_args()
    print("| database | command | wall s | user+sys CPU s |\n|:--|:--|--:|--:|")
    print(
        f"| | `python -c pass` | {timed([sys.executable, '-c', 'pass'], {}, opts.runs)[1]:.3f} | |"
    )
    directory = tempfile.mkdtemp(prefix="voicecdr-cli-bench-")
    try:
        env = prepared(f"sqlite:///{directory}/bench.db")
        report("SQLite", env, opts.runs)
        with serving(env) as base:
            export = [VOICECDR, "export", "--base-url", base, "--appkey", "demo"]
            export += ["--secretkey", "demo-secret", "--voice-type", "1", "--output", "-"]
            now = datetime.now(UTC).replace(microsecond=0)
            export += ["--from", (now - timedelta(hours=12)).isoformat(), "--to", now.isoformat()]
            wall, cpu = timed(export, env, opts.runs)
            print(f"| SQLite | `export` (last 12 h) | {wall:.3f} | {cpu:.3f} |", flush=True)
        if opts.postgres:
            sys.path.insert(0, str(ROOT))
            from tests.support.postgres import running

            with running() as server:
                report("PostgreSQL", prepared(server.create_database("bench")), opts.runs)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
