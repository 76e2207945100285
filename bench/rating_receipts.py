"""Rating and receipt throughput against raw baselines, on SQLite and PostgreSQL.

What is measured, each figure beside its baseline taken in the same run:

1. **Rating** (CDRs/s): N CDRs (default 200,000) for 4 apps, ``demo.DEMO_PLAN`` imported
   for each with ``RatingStore.import_plan``, then ``Rater(db).drain()`` (the product
   path, batch size from the ``Settings`` default) is timed. Two cases: the apps have a
   ``callback_url``, so every CDR's receipt is written in the transaction that makes it
   final (the realistic case), and the apps have none (no receipts). The baseline writes
   the same outcome with the raw driver, every charge and receipt row computed before
   the clock starts: the same UPDATE (+ receipt INSERT) in transactions of the same size
   (see ``ratebench.rating``). Every run gets a fresh copy of one identically loaded
   database, and each is checked afterwards: all N CDRs final, N receipts (or none).
2. **Receipt delivery** (receipts/s): M receipts (default 5,000) delivered by the
   product's ``Sender.drain()`` to a minimal ASGI receiver (uvicorn, another process,
   127.0.0.1, answering ``200 success``), with concurrency 64: all receipts of one app
   with ``per_app`` 64, and spread over 16 apps with the default ``per_app`` 4. The
   baseline POSTs the same M bodies with a bare ``httpx.AsyncClient``, same concurrency,
   same receiver, no database (see ``ratebench.delivery``).

Why: the rater must keep up with ingest, and the sender with the rater, on both supported
databases; the ratios say how much of the cost is the product's own (SQLAlchemy, row
objects, pricing, receipt bodies, signatures, per-receipt bookkeeping) rather than the
database's or the network's.

Run ``python bench/rating_receipts.py --help``; results also go to
``bench/results/rating_receipts.json``. See ``bench/README.md`` for reading the tables.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from query_latency import _databases, _positive, say
from querybench.databases import DATABASES, Database
from querybench.dataset import Dataset
from ratebench import delivery, rating
from ratebench.databases import Cluster, cluster, dataset
from ratebench.receiver import receiving
from ratebench.report import DeliveryResult, RatingResult, render, to_json
from voicecdr import storage
from voicecdr.workers.rater import Rater

RESULTS = Path(__file__).resolve().parent / "results" / "rating_receipts.json"
RATING_APPS = tuple(f"rate-{n:02d}" for n in range(1, 5))
DELIVERY_APPS = tuple(f"send-{n:02d}" for n in range(1, 17))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=_positive, default=200_000, help="CDRs to rate")
    parser.add_argument("--receipts", type=_positive, default=5_000, help="receipts to send")
    parser.add_argument("--databases", type=_databases, default=list(DATABASES))
    parser.add_argument(
        "--repeat", type=_positive, default=1, help="timed runs of each figure (median shown)"
    )
    parser.add_argument("--seed", type=int, default=7, help="data set seed")
    return parser.parse_args(argv)


def _version(database: Database) -> str:
    return database.version()


def bench_rating(
    where: Cluster, data: Dataset, receipts_url: str | None, repeat: int
) -> RatingResult:
    case = "with receipts" if receipts_url else "no receipts"
    say(f"[{where.name}] rating, {case}: template with {len(data.cdrs):,} CDRs ...")
    started = time.perf_counter()
    template = where.template("rate", data, callback_url=receipts_url)
    n = len(data.cdrs)
    expected = n if receipts_url else 0
    result = RatingResult(
        where.name, _version(template), bool(receipts_url), n, time.perf_counter() - started
    )
    try:
        for run in range(1, repeat + 1):
            with where.copy(template) as db:
                timed = rating.product(db)
                rating.verify(db, timed.method, cdrs=n, receipts=expected)
            result.product.append(timed)
            say(f"[{where.name}] {case} run {run}: {timed.method} {timed.rate:,.0f} CDRs/s")
            for method in rating.raw_methods(where.name):
                with where.copy(template) as db:
                    work = rating.precompute(db, int(time.time()))
                    timed = method(db, work)
                    rating.verify(db, timed.method, cdrs=n, receipts=expected)
                result.raw.setdefault(timed.method, []).append(timed)
                say(f"[{where.name}] {case} run {run}: {timed.method} {timed.rate:,.0f} CDRs/s")
    finally:
        where.drop(template)
    return result


def _rate_all(db: storage.Database) -> None:
    Rater(db).drain()  # the receipts to deliver


def bench_delivery(
    where: Cluster, scenario: delivery.Scenario, data: Dataset, url: str, repeat: int
) -> DeliveryResult:
    say(f"[{where.name}] delivery, {scenario.label}: template ...")
    template = where.template("send", data, callback_url=url, setup=_rate_all)
    payloads = delivery.bodies(template)
    result = DeliveryResult(where.name, scenario, len(payloads))
    try:
        for run in range(1, repeat + 1):
            sent = delivery.bare(url, payloads, scenario.concurrency)
            result.bare.append(sent)
            with where.copy(template) as db:
                done = delivery.product(db, scenario, url, len(payloads))
            result.product.append(done)
            say(
                f"[{where.name}] {scenario.label} run {run}: bare {sent.rate:,.0f}/s, "
                f"Sender {done.rate:,.0f}/s"
            )
    finally:
        where.drop(template)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    now = int(time.time())
    say(f"generating and validating {args.count:,} + {args.receipts:,} CDRs ...")
    started = time.perf_counter()
    rating_data = dataset(RATING_APPS, args.count, now=now, seed=args.seed)
    delivery_data = {
        s.label: dataset(DELIVERY_APPS[: s.apps], args.receipts, now=now, seed=args.seed + 1)
        for s in delivery.SCENARIOS
    }
    generated_s = time.perf_counter() - started
    ratings: list[RatingResult] = []
    deliveries: list[DeliveryResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="voicecdr-bench-") as tmp,
        receiving(Path(tmp) / "receiver.log") as url,
    ):
        for name in args.databases:
            with cluster(name, Path(tmp)) as where:
                for receipts_url in (url, None):
                    ratings.append(bench_rating(where, rating_data, receipts_url, args.repeat))
                for scenario in delivery.SCENARIOS:
                    deliveries.append(
                        bench_delivery(
                            where, scenario, delivery_data[scenario.label], url, args.repeat
                        )
                    )
    print(render(ratings, deliveries, generated_s))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    command = [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]
    RESULTS.write_bytes(
        orjson.dumps(to_json(ratings, deliveries, command, generated_s), option=orjson.OPT_INDENT_2)
    )
    say(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
