"""Ingest throughput: the batch API and the CLI import against a raw bulk insert.

What is measured, on SQLite and on PostgreSQL, each on a fresh database holding one app:

1. **raw**: the same rows the product stores (``CdrWriter``'s own column values), written
   with the bare driver in one transaction: SQLite ``executemany`` (WAL,
   ``synchronous=FULL``, as the product opens it), PostgreSQL ``COPY``. No parsing, no
   validation: the database's own speed, the baseline.
2. **CLI import**: ``voicecdr cdrs import FILE.jsonl`` as a subprocess, wall clock from
   start to exit (interpreter start-up included).
3. **batch API**: ``POST /v1/cdrs`` to a real ``voicecdr serve`` on 127.0.0.1, JSON
   arrays of ``--batch`` records sent one after another on one keep-alive connection.

Each figure is beside the raw rate from the same run on the same database, as a ratio.
The CPU column is the CPU time of the process doing the work: this process for the raw
insert, the ``cdrs import`` process (and its workers), the ``serve`` process for the API
(not the client). On SQLite that includes the database's own work; on PostgreSQL the
server's CPU is in none of them. On a machine shared with other work, wall-clock rates
move with the load while CPU per row stays put: compare both.
The data is ``voicecdr.demo.generate`` (realistic CDRs, validated by the product); the
PostgreSQL server is a throwaway one from ``tests/support/postgres.py`` (``fsync=off``,
so both the product and the baseline are measured without disk flush cost there).

    python bench/ingest_throughput.py                    # 200,000 CDRs, both databases
    python bench/ingest_throughput.py --count 20000 --databases sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.postgres import PostgresServer  # noqa: E402

from voicecdr import apps, demo  # noqa: E402
from voicecdr.ingest.canonical import validate  # noqa: E402
from voicecdr.ingest.importer import workers_for  # noqa: E402
from voicecdr.ingest.timebounds import ANY_TIME  # noqa: E402
from voicecdr.storage import (  # noqa: E402
    INSERT_COLUMN_LIST,
    AppStore,
    Database,
    cdr_tuple,
    days_of,
    upgrade,
)

APPKEY = "bench"
TOKEN = "bench-token-0123456789abcdef"


@dataclass
class Result:
    database: str
    path: str
    seconds: float
    rows: int
    cpu: float  # CPU seconds of the process doing the work (see the module docstring)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fresh_database(kind: str, work: Path, pg: PostgresServer | None, name: str) -> str:
    if kind == "sqlite":
        url = f"sqlite:///{work / (name + '.db')}"
    else:
        assert pg is not None
        url = pg.create_database(name)
    db = Database(url)
    try:
        upgrade(db)
        apps.create_app(AppStore(db), name="Bench", appkey=APPKEY, default_timezone="UTC")
    finally:
        db.close()
    return url


def raw_insert(kind: str, url: str, records: list[dict[str, object]]) -> tuple[float, float]:
    rows = [cdr_tuple(1, validate(r, ANY_TIME), int(time.time())) for r in records]
    if kind == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        marks = ", ".join("?" * len(rows[0]))
        started, cpu = time.perf_counter(), time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO cdrs ({INSERT_COLUMN_LIST}) VALUES ({marks})", rows)
        conn.execute("COMMIT")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        conn.close()
        return elapsed, cpu
    db = Database(url)
    try:  # a partitioned cdrs takes rows only for days that have a partition
        if db.partitions is not None:
            db.partitions.ensure(days_of(row[9] for row in rows))
    finally:
        db.close()
    with psycopg.connect(url) as pg:
        started, cpu = time.perf_counter(), time.process_time()
        with (
            pg.cursor() as cursor,
            cursor.copy(f"COPY cdrs ({INSERT_COLUMN_LIST}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        pg.commit()
        return time.perf_counter() - started, time.process_time() - cpu


def environment(url: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECDR_")}
    env.update(
        VOICECDR_DATABASE_URL=url,
        VOICECDR_INGEST_TOKEN=TOKEN,
        VOICECDR_RATE_LIMIT_STATE=str(work / "ratelimit.sqlite"),
        VOICECDR_LOG_LEVEL="WARNING",
    )
    return env


def cli_import(
    url: str, work: Path, jsonl: Path, count: int, workers: str | None
) -> tuple[float, float]:
    extra = ["--workers", workers] if workers is not None else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "voicecdr", "cdrs", "import", str(jsonl), "--json", *extra],
        env=environment(url, work),
        cwd=work,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    summary = orjson.loads(done.stdout) if done.stdout else {}
    if done.returncode != 0 or summary.get("accepted") != count:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return elapsed, cpu


@contextlib.contextmanager
def serving(url: str, work: Path) -> Iterator[tuple[str, int]]:
    with contextlib.closing(__import__("socket").socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "voicecdr", "serve", "--port", str(port)],
        env=environment(url, work),
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise SystemExit("voicecdr serve did not become ready")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_api(
    url: str, work: Path, records: list[dict[str, object]], batch: int
) -> tuple[float, float]:
    bodies = [orjson.dumps(records[i : i + batch]) for i in range(0, len(records), batch)]
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    accepted = 0
    with serving(url, work) as (base, pid), httpx.Client(base_url=base, timeout=120) as client:
        started, cpu = time.perf_counter(), process_cpu(pid)
        for body in bodies:
            answer = client.post("/v1/cdrs", content=body, headers=headers)
            answer.raise_for_status()
            accepted += answer.json()["accepted"]
        elapsed, cpu = time.perf_counter() - started, process_cpu(pid) - cpu
    if accepted != len(records):
        raise SystemExit(f"batch API accepted {accepted} of {len(records)}")
    return elapsed, cpu


def run(kind: str, args: argparse.Namespace, work: Path, pg: PostgresServer | None) -> list[Result]:
    records = list(demo.generate([APPKEY], args.count, now=int(time.time()), seed=args.seed))
    jsonl = work / "cdrs.jsonl"
    jsonl.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    auto = workers_for(jsonl, "jsonl")  # what a plain `cdrs import` uses on this machine
    results = []
    for round_ in range(args.rounds):
        tag = f"{kind}_{round_}_{os.getpid()}"
        log(f"{kind}: raw bulk insert ({round_ + 1}/{args.rounds})")
        raw = raw_insert(kind, fresh_database(kind, work, pg, f"raw_{tag}"), records)
        log(f"{kind}: voicecdr cdrs import --workers 0")
        url = fresh_database(kind, work, pg, f"cli0_{tag}")
        serial = cli_import(url, work, jsonl, args.count, "0")
        log(f"{kind}: POST /v1/cdrs")
        api = batch_api(fresh_database(kind, work, pg, f"api_{tag}"), work, records, args.batch)
        results += [
            Result(kind, "raw bulk insert", raw[0], args.count, raw[1]),
            Result(kind, "voicecdr cdrs import --workers 0", serial[0], args.count, serial[1]),
            Result(kind, f"POST /v1/cdrs ({args.batch}/request)", api[0], args.count, api[1]),
        ]
        if auto:
            log(f"{kind}: voicecdr cdrs import (default: {auto} workers)")
            url = fresh_database(kind, work, pg, f"cli_{tag}")
            elapsed, cpu = cli_import(url, work, jsonl, args.count, None)
            label = f"voicecdr cdrs import ({auto} workers)"
            results.append(Result(kind, label, elapsed, args.count, cpu))
    return results


def render(results: list[Result]) -> str:
    lines = [
        "| database | path | rows | seconds | rows/s | vs raw | CPU s | CPU µs/row |",
        "|:--|:--|--:|--:|--:|--:|--:|--:|",
    ]
    raw_rate: dict[str, float] = {}
    for r in results:
        if r.path == "raw bulk insert":
            raw_rate[r.database] = r.rate
        ratio = r.rate / raw_rate[r.database]
        lines.append(
            f"| {r.database} | {r.path} | {r.rows:,} | {r.seconds:.2f} | {r.rate:,.0f} | "
            f"{ratio:.2f} | {r.cpu:.2f} | {r.cpu / r.rows * 1e6:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000, help="CDRs per run")
    parser.add_argument("--batch", type=int, default=5_000, help="records per API request")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=1, help="repeat each measurement")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="voicecdr-ingest-bench-") as tmp:
        work = Path(tmp)
        if "sqlite" in kinds:
            results += run("sqlite", args, work, None)
        if "postgresql" in kinds:
            pg = PostgresServer()
            try:
                pg.start()
                results += run("postgresql", args, work, pg)
            finally:
                pg.stop()
    print(render(results))


if __name__ == "__main__":
    main()
