"""The rater's rate alone, for comparing two versions of the product: ``Rater.drain`` on a
copy of ``rating_receipts.py``'s template (4 apps, ``demo.DEMO_PLAN``), with and without
receipts, on SQLite and PostgreSQL; no raw baselines and no delivery, so a run is short.
One JSON line per figure, naming the ``voicecdr`` package that ran (``PYTHONPATH`` picks
another checkout's ``src``: see docs/performance.md, "Analytics (issue 22)"), with the
rate and the CPU time of this process per CDR (on PostgreSQL the server's is not in it).

    python bench/rating_product.py --count 100000
    PYTHONPATH=/tmp/before/src python bench/rating_product.py --count 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

import voicecdr
from query_latency import _databases, _positive
from querybench.databases import DATABASES
from ratebench import rating
from ratebench.databases import cluster, dataset
from rating_receipts import RATING_APPS

# Receipts are written by the rater in its transaction; none is sent, so no one listens.
CALLBACK_URL = "http://127.0.0.1:9/receipts"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=_positive, default=100_000, help="CDRs to rate")
    parser.add_argument("--databases", type=_databases, default=list(DATABASES))
    parser.add_argument("--seed", type=int, default=7, help="data set seed")
    args = parser.parse_args(argv)
    data = dataset(RATING_APPS, args.count, now=int(time.time()), seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="voicecdr-rating-") as tmp:
        for name in args.databases:
            with cluster(name, Path(tmp)) as where:
                for url in (CALLBACK_URL, None):
                    template = where.template("rate", data, callback_url=url)
                    try:
                        with where.copy(template) as db:
                            timed = rating.product(db)
                            expected = args.count if url else 0
                            rating.verify(db, timed.method, cdrs=args.count, receipts=expected)
                            assert timed.cpu_seconds is not None
                    finally:
                        where.drop(template)
                    line = {"package": voicecdr.__file__, "database": name,
                            "receipts": url is not None, "rate": round(timed.rate, 1),
                            "cpu_us_per_cdr": round(timed.cpu_seconds / timed.cdrs * 1e6, 2),
                            "loadavg": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
                    print(orjson.dumps(line).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
