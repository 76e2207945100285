"""The analytics benchmark of issue 22: reports from the rollups beside the plain GROUP BY.

On the scale data set (``scalebench.dataset``: N CDRs over 30 days, the big tenant
``bench-01`` holding 40%, written by ``CdrWriter.store`` and rated by ``Rater.drain``, so the
rollups are filled as on a live system), for the big tenant:

- Q1: 30 days by day x country_code: 30 whole local days (ending with the data's last
  day), and the 30 days before the data's ``now`` (not aligned on hours or days: the
  report reads CDRs for the part-hours and part-days at its ends);
- Q2: 24 hours by hour: the last 24 whole hours, and the campaign day's 24 whole hours.

Each is answered by ``ReportReader.report`` (the product: rollups and CDR edges) and by
``ReportReader.scan`` (the plain GROUP BY over ``cdrs``), which must give the same JSON
before anything is timed; then both are timed in alternating rounds, each a closed loop for
``--seconds``. Targets: p50 <= 20 ms, and at least 20x the plain GROUP BY's rate. Every
round goes to ``bench/results/analytics.json``. See ``bench/README.md``, "Analytics".

    python bench/analytics.py --count 1000000 --databases sqlite,postgresql
    python bench/analytics.py --count 5000 --databases sqlite --seconds 0.2 --no-cache  # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from query_latency import _databases, _positive, say
from querybench.databases import DATABASES, Database, PostgresDatabase, each_database
from querybench.report import _table
from scalebench import dataset
from voicecdr import storage
from voicecdr.analytics import AnalyticsQuery, Calendar, Dimension, Report, to_json
from voicecdr.models import App
from voicecdr.timefmt import zone

RESULTS = Path(__file__).resolve().parent / "results" / "analytics.json"
CACHE = Path.home() / ".cache" / "voicecdr-bench"  # shared with scale.py
P50_MS = 20.0
MIN_RATIO = 20.0
HOUR = 3600


@dataclass(frozen=True, slots=True)
class Question:
    label: str
    query: AnalyticsQuery


@dataclass(slots=True)
class Timed:
    """One closed-loop run: each call's seconds, and the run's wall time."""

    samples: list[float]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.samples) / self.seconds


@dataclass(slots=True)
class Result:
    database: str
    question: Question
    groups: int
    calls: int  # CDRs the report counts (its total attempts)
    rounds: list[dict[str, Timed]] = field(default_factory=list)

    def pooled(self, source: str) -> list[float]:
        return sorted(s for r in self.rounds for s in r[source].samples)

    def rate(self, source: str) -> float:
        return statistics.median(r[source].rate for r in self.rounds)


def _ms(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, in ms, of sorted ``samples``."""
    return samples[min(len(samples) - 1, int(q * len(samples)))] * 1000


def questions(app: App, now: int, campaign_end: int) -> list[Question]:
    """The four windows, in the app's timezone (see the module docstring)."""
    calendar = Calendar(zone(app.timezone))
    today = datetime.fromtimestamp(now, calendar.tz).date()

    def midnight(days_ago: int) -> int:
        day = today - timedelta(days=days_ago)
        return calendar.midnight(day.year, day.month, day.day)

    def hour_at_or_after(epoch: int) -> int:
        start = calendar.start(Dimension.HOUR, epoch)
        return start if start == epoch else calendar.start(Dimension.HOUR, start + HOUR)

    by_day = (Dimension.DAY, Dimension.COUNTRY_CODE)
    loose = now - 30 * 86_400
    if calendar.start(Dimension.HOUR, loose) == loose:
        loose -= 7  # keep it off the hour, whatever the clock said
    last_hour = calendar.start(Dimension.HOUR, now)
    campaign = hour_at_or_after(campaign_end)
    return [
        Question("Q1 30 whole days by day x country",
                 AnalyticsQuery(midnight(29), midnight(-1), by_day)),
        Question("Q1 30 days not day-aligned by day x country", AnalyticsQuery(loose, now, by_day)),
        Question("Q2 last 24 whole hours by hour",
                 AnalyticsQuery(last_hour - 86_400, last_hour, (Dimension.HOUR,))),
        Question("Q2 campaign day's 24 hours by hour",
                 AnalyticsQuery(campaign - 86_400, campaign, (Dimension.HOUR,))),
    ]  # fmt: skip


def _loop(call: Callable[[], Report], seconds: float) -> Timed:
    """Calls ``call`` back to back for ``seconds`` (at least once)."""
    samples: list[float] = []
    began = time.perf_counter()
    while True:
        started = time.perf_counter()
        call()
        ended = time.perf_counter()
        samples.append(ended - started)
        if ended - began >= seconds:
            return Timed(samples, ended - began)


def measure(
    database: str,
    reader: storage.ReportReader,
    app: App,
    question: Question,
    args: argparse.Namespace,
) -> Result:
    sources: dict[str, Callable[[], Report]] = {
        "rollups": lambda: reader.report(app, question.query),
        "group by": lambda: reader.scan(app, question.query),
    }
    rolled, scanned = (call() for call in sources.values())
    if to_json(rolled) != to_json(scanned):
        raise SystemExit(
            f"[{database}] {question.label}: the rollups' report differs from the scan's"
        )
    result = Result(database, question, len(rolled.groups), rolled.total.attempts)
    order = list(sources)
    for n in range(args.rounds):
        # Alternating which goes first, so that neither always runs after the other.
        names = order if n % 2 == 0 else order[::-1]
        result.rounds.append({name: _loop(sources[name], args.seconds) for name in names})
    say(f"[{database}] {question.label}: rollups {result.rate('rollups'):,.1f}/s, "
        f"group by {result.rate('group by'):,.1f}/s")  # fmt: skip
    return result


def bench_database(
    name: str, spec: dataset.Spec, args: argparse.Namespace, work: Path, pg: Any
) -> tuple[dataset.Spec, dict[str, Any], list[Result]]:
    """Load (or take from the cache) the data set in ``name``, then time every question."""
    database: Database
    with contextlib.ExitStack() as stack:
        if name == "sqlite":
            cache = None if args.no_cache else args.cache_dir
            database, spec, times = stack.enter_context(dataset.sqlite(spec, cache, work, say))
        else:
            database = PostgresDatabase(pg.create_database("voicecdr_analytics"))
            say(f"[{name}] loading {spec.count:,} CDRs through CdrWriter.store ...")
            times = dataset.load(database, spec, say)
        say(f"[{name}] data set: {times}")
        db = storage.Database(database.url)
        stack.callback(db.close)
        app = storage.AppStore(db).get(spec.tenant)
        assert app is not None, spec.tenant
        reader = storage.ReportReader(db)
        results = [
            measure(name, reader, app, q, args) for q in questions(app, spec.now, spec.window.end)
        ]
    record = {"database": name, "version": database.version(), "load": asdict(times),
              "timezone": app.timezone}  # fmt: skip
    return spec, record, results


HEADERS = ["database", "query", "groups", "CDRs", "rollup p50 / p99 ms", "rollup reports/s",
           "GROUP BY p50 ms", "GROUP BY reports/s", "ratio", "p50 <= 20 ms", ">= 20x"]  # fmt: skip


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table_row(r: Result) -> list[str]:
    rolled, scanned = r.pooled("rollups"), r.pooled("group by")
    p50, ratio = _ms(rolled, 0.5), r.rate("rollups") / r.rate("group by")
    return [
        r.database, r.question.label, f"{r.groups:,}", f"{r.calls:,}",
        f"{p50:.2f} / {_ms(rolled, 0.99):.2f}", f"{r.rate('rollups'):,.1f}",
        f"{_ms(scanned, 0.5):.1f}", f"{r.rate('group by'):,.2f}", f"{ratio:,.1f}x",
        _verdict(p50 <= P50_MS), _verdict(ratio >= MIN_RATIO),
    ]  # fmt: skip


def result_json(r: Result) -> dict[str, Any]:
    q = r.question.query
    return {
        "database": r.database,
        "query": r.question.label,
        "from": q.start,
        "to": q.end,
        "group_by": [str(d) for d in q.group_by],
        "groups": r.groups,
        "cdrs": r.calls,
        "row": dict(zip(HEADERS, table_row(r), strict=True)),
        "rounds": [
            {
                name: {"rate": round(t.rate, 3), "ms": [round(s * 1000, 3) for s in t.samples]}
                for name, t in one.items()
            }
            for one in r.rounds
        ],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=_positive, default=1_000_000, help="CDRs in the data set")
    parser.add_argument("--seed", type=int, default=7, help="data set seed")
    parser.add_argument("--databases", type=_databases, default=list(DATABASES))
    parser.add_argument("--seconds", type=float, default=2.0, help="each timed loop")
    parser.add_argument(
        "--rounds", type=_positive, default=5, help="timed loops of each source, alternating"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=CACHE, help="where the SQLite set is kept"
    )
    parser.add_argument("--no-cache", action="store_true", help="build the SQLite set afresh")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON record")
    return parser.parse_args(argv)


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began, load_before = time.perf_counter(), _loadavg()
    spec = dataset.Spec(args.count, args.seed, int(time.time()))
    records: list[dict[str, Any]] = []
    results: list[Result] = []
    for name, work, pg in each_database(args.databases, "voicecdr-analytics-"):
        spec, record, found = bench_database(name, spec, args, work, pg)
        records.append(record)
        results += found
    seconds = time.perf_counter() - began
    rows = [table_row(r) for r in results]
    failed = sum(cell == "FAIL" for row in rows for cell in row)
    print("\n".join([
        f"{spec.count:,} CDRs, tenant {spec.tenant}, schema {storage.head_revision()}; "
        f"run took {seconds / 60:.1f} min, load average {load_before} -> {_loadavg()}",
        *(f"{r['database']} ({r['version']}, {r['timezone']}): "
          f"{dataset.LoadTimes(**r['load'])}" for r in records),
        "",
        *_table(HEADERS, rows, text=2),
        "",
        f"targets: {failed} FAIL. p50 / p99 over every call of {args.rounds} rounds of "
        f"{args.seconds:g} s per source; rates are medians of the rounds, sources alternating.",
    ]))  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    command = [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]
    args.output.write_bytes(orjson.dumps({
        "command": command,
        "count": spec.count,
        "seed": spec.seed,
        "now": spec.now,
        "schema": storage.head_revision(),
        "seconds": round(seconds, 1),
        "cpus": os.cpu_count(),
        "loadavg": {"before": load_before, "after": _loadavg()},
        "plan": {"seconds": args.seconds, "rounds": args.rounds},
        "databases": records,
        "results": [result_json(r) for r in results],
    }, option=orjson.OPT_INDENT_2))  # fmt: skip
    say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
