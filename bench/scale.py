"""The scale harness of issue 6: every figure beside its baseline from the same run.

One command, one table, one JSON record (``bench/results/scale.json``):

(a) the NXCloud query API over HTTP under bounded load, ``voicecdr serve`` with 1 and 2
    workers against a minimal straightforward implementation of the same endpoint
    (``bench/baseline_app.py``, 1 worker) and the raw SQL's own rate: maximum rate (closed
    loop) and, for each server, p50/p99 latency at half its maximum rate (open loop,
    counted from the scheduled send time), for the big and a small tenant, page 1 and page
    500 of 100 with exact totals, on SQLite and PostgreSQL (``scalebench.query``);
(b) ingest: ``voicecdr cdrs import`` and ``POST /v1/cdrs`` against the raw bulk insert
    (``ingest_throughput.py``);
(c) rating throughput against the raw UPDATE (``rating_receipts.py``);
(d) memory: peak RSS of every ``serve`` worker after the load of (a), and of ``voicecdr
    export`` for 100,000 and 1,000,000 rows.

The data set (``scalebench.dataset``): 5,000,000 CDRs by default over 30 days for 50 apps,
the biggest holding 40%, written through ``CdrWriter.store`` and rated by the product's
rater; the SQLite file is cached between runs. See ``bench/README.md``, "Scale harness".

    python bench/scale.py                                       # full size (~30 min)
    python bench/scale.py --count 50000 --seconds 3 --latency-seconds 3   # a few minutes
    python bench/scale.py --databases sqlite --phases export    # export at 100,000 / 1,000,000
    python bench/scale.py --phases query --before-src /tmp/old/src   # query API, before/after
    python bench/scale.py --databases postgresql,citus --phases query,ingest,rating \
        --count 50000 --rounds 1     # Citus (coordinator + 2 workers) beside PostgreSQL
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from query_latency import _positive, say
from querybench.databases import (
    CITUS,
    DATABASES,
    CitusDatabase,
    Database,
    PostgresDatabase,
    each_database,
)
from scalebench import before, dataset, phases, query, report
from voicecdr.storage import head_revision

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
CACHE = Path.home() / ".cache" / "voicecdr-bench"


def _sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError("two or more row counts, e.g. 100000,1000000")
    return sizes


PHASES = ("query", "export", "ingest", "rating")


def _databases(text: str) -> list[str]:
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = sorted(set(names) - {*DATABASES, CITUS})
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join((*DATABASES, CITUS))}")
    return names


def _phases(text: str) -> list[str]:
    phases = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown or not phases:
        raise argparse.ArgumentTypeError(f"phases are among {','.join(PHASES)}; not {unknown}")
    return phases


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=_positive, default=5_000_000, help="CDRs in the data set")
    parser.add_argument("--seed", type=int, default=7, help="data set seed")
    parser.add_argument("--databases", type=_databases, default=list(DATABASES))
    parser.add_argument("--seconds", type=float, default=10.0, help="each maximum-rate run")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="each latency run")
    parser.add_argument("--raw-seconds", type=float, default=5.0, help="each raw-SQL rate run")
    parser.add_argument("--connections", type=_positive, default=4, help="closed-loop clients")
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=5,
        help="timed runs of each rate and latency (query, ingest, rating), product and "
        "baseline alternating; the median is shown",
    )
    parser.add_argument("--ingest-count", type=_positive, default=100_000, help="CDRs to ingest")
    parser.add_argument("--rating-count", type=_positive, default=100_000, help="CDRs to rate")
    parser.add_argument(
        "--export-rows", type=_sizes, default=[100_000, 1_000_000], help="rows per export"
    )
    parser.add_argument(
        "--phases",
        type=_phases,
        default=list(PHASES),
        help="which figures to take (e.g. 'export' alone: the data set and the exports)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=CACHE, help="where the SQLite set is kept"
    )
    parser.add_argument("--no-cache", action="store_true", help="build the SQLite set afresh")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON record")
    parser.add_argument(
        "--before-src",
        type=Path,
        metavar="DIR",
        help="the src directory of another checkout: its serve --workers 1 joins every query "
        "round beside serve w1, as 'before w1' (query phase only)",
    )
    return parser.parse_args(argv)


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bench_database(
    name: str, spec: dataset.Spec, args: argparse.Namespace, work: Path, pg: Any
) -> tuple[dataset.Spec, dict[str, Any], list[report.Row]]:
    """Load the data set into ``name``, then those of phases (a), (d: export, on the first
    database only), (b) and (c) that ``--phases`` names. Returns the spec used (a cached
    set keeps its ``now``)."""
    record: dict[str, Any] = {"database": name}
    rows: list[report.Row] = []
    database: Database
    with contextlib.ExitStack() as stack:
        if name == "sqlite":
            cache = None if args.no_cache else args.cache_dir
            database, spec, times = stack.enter_context(dataset.sqlite(spec, cache, work, say))
        else:
            kind = CitusDatabase if name == CITUS else PostgresDatabase
            database = kind(pg.create_database("voicecdr_scale"))
            say(f"[{name}] loading {spec.count:,} CDRs through CdrWriter.store ...")
            times = dataset.load(database, spec, say)
        say(f"[{name}] data set: {times}")
        record.update(version=database.version(), load=asdict(times))
        if "query" in args.phases:
            plan = query.QueryPlan(args.seconds, args.latency_seconds, args.raw_seconds,
                                   args.connections, args.rounds, args.before_src)  # fmt: skip
            phase = query.run(database, spec, work, plan, say)
            record["query"] = report.query_json(phase)
            rows += report.query_rows(phase)
        if "export" in args.phases and name == args.databases[0]:
            big = query.targets(database, spec)["big"]
            exports = phases.export(database, big, args.export_rows, work, say)
            record["export"] = [asdict(e) for e in exports]
            rows += report.export_rows(name, exports)
    if "ingest" in args.phases:
        rows += _ingest(name, args, work, pg, record)
    if "rating" in args.phases:
        rows += _rating(name, args, spec, work, pg, record)
    return spec, record, rows


def _ingest(
    name: str, args: argparse.Namespace, work: Path, pg: Any, record: dict[str, Any]
) -> list[report.Row]:
    say(f"[{name}] ingest of {args.ingest_count:,} CDRs ...")
    ingests = phases.ingest(name, args.ingest_count, args.seed, work, pg, args.rounds)
    record["ingest"] = [{**asdict(i), "rate": round(i.rate, 1)} for i in ingests]
    return report.ingest_rows(ingests)


def _rating(
    name: str,
    args: argparse.Namespace,
    spec: dataset.Spec,
    work: Path,
    pg: Any,
    record: dict[str, Any],
) -> list[report.Row]:
    say(f"[{name}] rating of {args.rating_count:,} CDRs ...")
    ratings = phases.rating(name, args.rating_count, args.seed, spec.now, work, pg, args.rounds)
    record["rating"] = [
        {"receipts": r.receipts, "cdrs": r.cdrs, "product_rate": round(r.product_rate, 1),
         "baseline": r.baseline[0], "baseline_rate": round(r.baseline[1], 1)}
        for r in ratings
    ]  # fmt: skip
    return report.rating_rows(ratings)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Checked first: a wrong directory should fail before the data set is built.
    before_module = before.check(args.before_src) if args.before_src else None
    began = time.perf_counter()
    load_before = _loadavg()
    spec = dataset.Spec(args.count, args.seed, int(time.time()))
    records: list[dict[str, Any]] = []
    rows: list[report.Row] = []
    for name, work, pg in each_database(args.databases, "voicecdr-scale-"):
        spec, record, found = bench_database(name, spec, args, work, pg)
        records.append(record)
        rows += found
    seconds = time.perf_counter() - began
    failed = sum(row.result == "FAIL" for row in rows)
    passed = sum(row.result == "PASS" for row in rows)
    about_before = [
        f"before w1: serve --workers 1 of {before_module}, beside serve w1 in every round "
        "(first every other round); in the 'w1 vs before w1' lines the baseline is that version"
    ] if before_module else []  # fmt: skip
    lines = [
        f"{spec.count:,} CDRs, {len(spec.appkeys)} apps, schema {head_revision()}; "
        f"queried window {spec.window.start}..{spec.window.end} (epoch s); "
        f"run took {seconds / 60:.1f} min, load average {load_before} -> {_loadavg()}",
        *(f"{r['database']} ({r['version']}): {dataset.LoadTimes(**r['load'])}" for r in records),
        *about_before,
        "",
        *report.render(rows),
        "",
        f"targets: {passed} PASS, {failed} FAIL. Rates and query p99s are medians of "
        f"{args.rounds} runs, product and baseline alternating (the JSON has every round): "
        "compare within a row.",
    ]
    print("\n".join(lines))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    command = [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]
    args.output.write_bytes(orjson.dumps({
        "command": command,
        "count": spec.count,
        "seed": spec.seed,
        "now": spec.now,
        "campaign_rows": spec.campaign,
        "window": asdict(spec.window),
        "schema": head_revision(),
        "seconds": round(seconds, 1),
        "cpus": os.cpu_count(),
        "loadavg": {"before": load_before, "after": _loadavg()},
        "plan": {k: getattr(args, k) for k in ("phases", "seconds", "latency_seconds",
                                                "raw_seconds", "connections", "rounds",
                                                "ingest_count", "rating_count",
                                                "export_rows")},
        **({"before": before_module} if before_module else {}),
        "table": report.row_json(rows),
        "databases": records,
    }, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))  # fmt: skip
    say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
