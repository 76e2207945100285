"""Start-up cost of ``voicecdr`` database commands: median wall and user+sys CPU per run.

Each command runs as a process, as users and the acceptance tests run it, against a
small demo database (``voicecdr demo``): SQLite, and PostgreSQL when ``--postgres`` (a
throwaway server from tests/support). ``export`` queries a ``voicecdr serve`` on the
SQLite database. With ``--before-src``, the code in that src directory takes turns with
this checkout's. Run it on a quiet machine: CPU time is what to compare.

    python bench/cli_startup.py --runs 10 [--postgres] [--before-src DIR]
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
Figures = list[tuple[float, float]]  # per environment: median wall and CPU seconds


def timed(args: list[str], envs: list[dict[str, str]], runs: int) -> Figures:
    """Per environment, the median wall seconds and median user+sys CPU seconds of ``runs``
    runs; the environments take turns, so a busy moment weighs on each alike."""
    walls: list[list[float]] = [[] for _ in envs]
    cpus: list[list[float]] = [[] for _ in envs]
    for _ in range(runs):
        for i, env in enumerate(envs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(args, env=env, capture_output=True, check=True)
            walls[i].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[i].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(walls, cpus, strict=True)]


def cells(figures: Figures) -> str:
    return " | ".join(f"{wall:.3f} | {cpu:.3f}" for wall, cpu in figures)


def prepared(url: str, before_src: str | None) -> list[dict[str, str]]:
    """The environments of a command on the database at ``url`` (which gets the demo
    data): with ``before_src``, the code there first, then this checkout's."""
    env = {**os.environ, "VOICECDR_DATABASE_URL": url}
    for step in (["db", "upgrade"], ["demo", "--count", "1000"]):
        subprocess.run([VOICECDR, *step], env=env, stdout=subprocess.DEVNULL, check=True)
    return [env] if before_src is None else [{**env, "PYTHONPATH": before_src}, env]


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


def report(database: str, envs: list[dict[str, str]], runs: int) -> None:
    for name, args in COMMANDS.items():
        print(f"| {database} | `{name}` | {cells(timed([VOICECDR, *args], envs, runs))} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too")
    parser.add_argument("--before-src", help="also the code in this src directory, in turns")
    opts = parser.parse_args()
    head = "wall s | user+sys CPU s"
    if opts.before_src:
        head = f"before: {head} | after: {head}"
    print(f"| database | command | {head} |\n|:--|:--|{'--:|' * (head.count('|') + 1)}")
    print(
        f"| | `python -c pass` | {cells(timed([sys.executable, '-c', 'pass'], [{}], opts.runs))} |"
    )
    directory = tempfile.mkdtemp(prefix="voicecdr-cli-bench-")
    try:
        envs = prepared(f"sqlite:///{directory}/bench.db", opts.before_src)
        report("SQLite", envs, opts.runs)
        with serving(envs[-1]) as base:
            now = datetime.now(UTC).replace(microsecond=0)
            export = [VOICECDR, "export", "--base-url", base, "--appkey", "demo"]
            export += ["--secretkey", "demo-secret", "--voice-type", "1", "--output", "-"]
            export += ["--from", (now - timedelta(hours=12)).isoformat(), "--to", now.isoformat()]
            print(f"| SQLite | `export` (last 12 h) | {cells(timed(export, envs, opts.runs))} |")
        if opts.postgres:
            sys.path.insert(0, str(ROOT))
            from tests.support.postgres import running

            with running() as server:
                url = server.create_database("bench")
                report("PostgreSQL", prepared(url, opts.before_src), opts.runs)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
