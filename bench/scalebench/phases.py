"""Phases (b), (c) and the export half of (d), each calling into the existing benches.

- Ingest: ``ingest_throughput.run`` (``voicecdr cdrs import`` as a subprocess and ``POST
  /v1/cdrs`` against the raw bulk insert, each on a fresh database).
- Rating: ``rating_receipts.bench_rating`` (``Rater.drain()`` against the raw UPDATE and
  receipt INSERT, on clones of one template), with and without receipts.
- Export memory: ``voicecdr export`` (a subprocess) against ``voicecdr serve`` on the scale
  data set, for a window of ~``rows`` of the big tenant's rows; its peak RSS comes from
  wait4's rusage, and the CSV it writes must hold exactly the window's rows.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ingest_throughput
from querybench.databases import Database
from querybench.dataset import SECRETKEY, TIMEZONE
from querybench.server import serve_command, started
from querybench.workload import Target
from ratebench.databases import CitusCluster, Cluster, PostgresCluster, SqliteCluster, dataset
from ratebench.report import RatingResult
from rating_receipts import RATING_APPS, bench_rating
from voicecdr.timefmt import epoch_to_iso

from . import procs
from .query import server_env

# Any URL will do: the rater only writes receipts, nothing is sent in this phase.
RECEIPTS_URL = "http://127.0.0.1:9/receipts"


def ingest(
    kind: str, count: int, seed: int, workdir: Path, pg: Any, rounds: int = 1
) -> list[ingest_throughput.Result]:
    """Every round's results (raw, import and batch API in turn, each round)."""
    args = argparse.Namespace(count=count, batch=5_000, rounds=rounds, seed=seed)
    work = workdir / f"ingest-{kind}"
    work.mkdir(exist_ok=True)
    return ingest_throughput.run(kind, args, work, pg)


@contextlib.contextmanager
def _cluster(kind: str, workdir: Path, pg: Any) -> Iterator[Cluster]:
    if kind == "sqlite":
        work = workdir / "rating"
        work.mkdir(exist_ok=True)
        yield SqliteCluster(work)
    elif kind == "citus":
        yield CitusCluster(pg)
    else:
        yield PostgresCluster(pg)


def rating(
    kind: str, count: int, seed: int, now: int, workdir: Path, pg: Any, rounds: int = 1
) -> list[RatingResult]:
    """With and without receipts; each the median of ``rounds`` runs of product and raw."""
    data = dataset(RATING_APPS, count, now=now, seed=seed)
    with _cluster(kind, workdir, pg) as where:
        return [bench_rating(where, data, url, rounds) for url in (RECEIPTS_URL, None)]


@dataclass(frozen=True, slots=True)
class Export:
    rows: int  # records in the window, and in the file
    seconds: float
    peak_rss_mb: float


def _export_window(database: Database, target: Target, rows: int) -> tuple[int, int, int]:
    """The window holding the big tenant's last ``rows`` rows of its voiceType: (start,
    end, rows in it)."""
    p = database.placeholder
    where = f"app_id = {p} AND voice_group = {p}"
    key = (target.app_id, target.voice_group)
    with contextlib.closing(database.connect()) as conn:
        end = conn.execute(f"SELECT max(placed_at) FROM cdrs WHERE {where}", key).fetchone()[0]
        start = conn.execute(
            f"SELECT placed_at FROM cdrs WHERE {where} ORDER BY placed_at DESC LIMIT 1 OFFSET {p}",
            (*key, rows - 1),
        ).fetchone()
        if start is None:  # fewer rows than asked for: all of them
            start = conn.execute(f"SELECT min(placed_at) FROM cdrs WHERE {where}", key).fetchone()
        start = start[0]
        total = conn.execute(
            f"SELECT count(*) FROM cdrs WHERE {where} AND placed_at >= {p} AND placed_at <= {p}",
            (*key, start, end),
        ).fetchone()[0]
    return int(start), int(end), int(total)


def export(
    database: Database, target: Target, sizes: list[int], workdir: Path, say: Any
) -> list[Export]:
    """``voicecdr export`` of each size against one ``voicecdr serve`` (windows older than
    the API's 7-day reach are allowed there: ``VOICECDR_MAX_AGE_DAYS=0``)."""
    env = {**server_env(database, workdir), "VOICECDR_MAX_AGE_DAYS": "0"}
    results = []
    with started(
        lambda port: serve_command(database.url, port, 1), workdir / "export-serve.log", env
    ) as served:
        for size in sizes:
            start, end, rows = _export_window(database, target, size)
            out = workdir / f"export-{size}.csv"
            command = [
                sys.executable, "-m", "voicecdr", "export", "--base-url", served.url,
                "--appkey", target.appkey, "--voice-type", str(target.voice_group),
                "--from", epoch_to_iso(start), "--to", epoch_to_iso(end),
                "--timezone", TIMEZONE, "--rate", "10000", "--format", "csv",
                "-o", str(out), "--overwrite",
            ]  # fmt: skip
            say(f"[{database.name}] voicecdr export of {rows:,} rows ...")
            began = time.perf_counter()
            with (workdir / f"export-{size}.log").open("wb") as log:
                code, peak = procs.run_measured(
                    command,
                    workdir / "export-rss.txt",
                    env={**_clean_env(), "VOICECDR_SECRETKEY": SECRETKEY},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            seconds = time.perf_counter() - began
            with out.open("rb") as written:
                lines = sum(1 for _ in written) - 1  # the header
            out.unlink()
            if code != 0 or lines != rows:
                raise RuntimeError(
                    f"voicecdr export exited {code} with {lines:,} of {rows:,} rows; "
                    f"see {workdir / f'export-{size}.log'}"
                )
            results.append(Export(rows, seconds, peak))
    return results


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VOICECDR_")}
