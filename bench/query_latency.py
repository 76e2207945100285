"""Latency of the NXCloud query API against the raw SQL it runs, on SQLite and PostgreSQL.

What is measured: ``POST /api/voiceSms/getVoiceCdr`` through a real ``voicecdr serve``
(one worker, 127.0.0.1, sequential form POSTs on one keep-alive httpx connection), for the
biggest tenant's busiest voiceType over one 24 h window:

1. page 1 of page_size 100 (a client's first request; it also reports the exact total),
2. page 500 of page_size 100 (deep paging: OFFSET 49,900),
3. page 1 of page_size 1000 (the largest page the API allows: the most rows to read and
   render in one request; the total is computed by every request, so (1) already times it).

Beside each figure, measured in the same run on the same database, is its baseline: the
same COUNT(*) and page SELECT (``ORDER BY placed_at, id LIMIT .. OFFSET ..``) in the same
kind of snapshot, run with the raw driver (sqlite3 / psycopg) in this process. The ratio
API/raw is what the product adds on top of the database: HTTP, parsing, authentication,
the shared rate limiter, SQLAlchemy, row rendering, JSON and the access log.

Why: the query API is what NXCloud clients poll, paging through a day of records; its
latency should stay a small multiple of the database's own, on both supported databases,
at a realistic size (default 1,000,000 CDRs over 30 days for 20 apps, the biggest holding
40%). The data set is built with ``voicecdr.demo.generate`` (see ``querybench.dataset``),
stored with ``CdrWriter.store`` and analyzed; load times are reported too.

Run ``python bench/query_latency.py --help``; results also go to
``bench/results/query_latency.json``. See ``bench/README.md`` for reading the table.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from querybench.databases import DATABASES, Database, RawQueries, opened
from querybench.dataset import Dataset, build
from querybench.measure import ApiClient, Plan, run_case
from querybench.report import DatabaseRun, render, to_json
from querybench.server import serving
from querybench.workload import CASES

RESULTS = Path(__file__).resolve().parent / "results" / "query_latency.json"


def _databases(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(DATABASES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(DATABASES)}")
    return list(dict.fromkeys(names))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=_positive, default=1_000_000, help="CDRs to load")
    parser.add_argument("--runs", type=_positive, default=200, help="timed pairs per query")
    parser.add_argument("--warmup", type=int, default=10, help="untimed pairs per query first")
    parser.add_argument(
        "--budget", type=float, default=30.0, help="seconds per query per database, at most"
    )
    parser.add_argument("--databases", type=_databases, default=list(DATABASES))
    parser.add_argument("--seed", type=int, default=7, help="data set seed")
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_database(database: Database, dataset: Dataset, plan: Plan, workdir: Path) -> DatabaseRun:
    say(f"[{database.name}] schema, apps and {len(dataset.cdrs):,} CDRs ...")
    load = database.prepare(dataset)
    say(f"[{database.name}] loaded: {load}")
    try:
        with contextlib.closing(RawQueries(database)) as raw:
            target = raw.target(dataset)
            log = workdir / f"{database.name}-server.log"
            with (
                serving(database.url, log) as base_url,
                contextlib.closing(ApiClient(base_url)) as api,
            ):
                results = []
                for case in CASES:
                    say(f"[{database.name}] {case.label} ...")
                    results.append(run_case(case, target, api, raw, plan))
        return DatabaseRun(database.name, database.version(), load, target, results)
    finally:
        database.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(runs=args.runs, warmup=args.warmup, budget_s=args.budget)
    say(f"generating and validating {args.count:,} CDRs ...")
    dataset = build(args.count, now=int(time.time()), seed=args.seed)
    say(f"generated in {dataset.seconds:.1f} s")
    runs = []
    with tempfile.TemporaryDirectory(prefix="voicecdr-bench-") as tmp:
        for name in args.databases:
            with opened(name, Path(tmp)) as database:
                runs.append(bench_database(database, dataset, plan, Path(tmp)))
    print(render(dataset, runs, plan))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    command = [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]
    RESULTS.write_bytes(
        orjson.dumps(to_json(dataset, runs, plan, command), option=orjson.OPT_INDENT_2)
    )
    say(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
