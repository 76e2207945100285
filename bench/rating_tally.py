"""What the rollups cost the rater per CDR, beside the least any such tally can cost.

On the rating benchmark's data (``rating_receipts.py``'s 4 apps over 30 days, SQLite),
each batch of the rater's default size is claimed and priced as the rater does, untimed;
then, per CDR of every batch (medians over the batches):

- ``Rater.drain``: the whole rater, rollups included (a copy of the same data);
- ``priced_tally``: the rater's own tally of a priced batch (``storage.rating``), no write;
- ``floor``: the two keys of a CDR that the issue's two questions need priced (app and
  local hour, for cost by hour; app, local day, prefix, service, country code and
  connected, for cost by day and country), counted with ``collections.Counter``, no sums,
  no write: less than any rollup of them kept by the rater in Python can cost.

    python bench/rating_tally.py --count 200000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from query_latency import _positive
from ratebench.databases import cluster, dataset
from ratebench.rating import BATCH_SIZE
from rating_receipts import RATING_APPS
from voicecdr import storage
from voicecdr.analytics import QUARTER, Calendar, Dimension
from voicecdr.models import UnratedCdr
from voicecdr.timefmt import zone
from voicecdr.workers.rater import Rater, price_batch


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=_positive, default=200_000, help="CDRs to rate")
    parser.add_argument("--seed", type=int, default=7, help="data set seed")
    args = parser.parse_args(argv)
    now = int(time.time())
    data = dataset(RATING_APPS, args.count, now=now, seed=args.seed)
    tally_us: list[float] = []
    floor_us: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="voicecdr-tally-") as tmp,
        cluster("sqlite", Path(tmp)) as where,
    ):
        template = where.template("tally", data, callback_url=None)
        with where.copy(template) as copy:
            db = storage.Database(copy.url)
            try:
                started = time.perf_counter()
                rated, _ = Rater(db, batch_size=BATCH_SIZE).drain()
                drain_us = (time.perf_counter() - started) / rated * 1e6
            finally:
                db.close()
        db = storage.Database(template.url)
        try:
            plans, forms = Rater(db)._current()
            with db.reader.connect() as conn:
                sql = f"SELECT {storage.UNRATED_COLUMNS} FROM cdrs ORDER BY id"
                rows = cast("list[UnratedCdr]", [tuple(r) for r in conn.exec_driver_sql(sql)])
                found = conn.exec_driver_sql("SELECT id, timezone FROM apps").all()
                zones: dict[int, str] = dict(found)
        finally:
            db.close()
    calendars = {app: Calendar(zone(tz)) for app, tz in zones.items()}
    for first in range(0, len(rows), BATCH_SIZE):
        batch = rows[first : first + BATCH_SIZE]
        priced = price_batch(batch, plans, forms, now).priced
        started = time.perf_counter()
        storage.priced_tally(zones, batch, priced)
        tally_us.append((time.perf_counter() - started) / len(priced) * 1e6)
        by_id = {r[0]: r for r in batch}
        # Each quarter hour's local hour and day, found before the clock starts (the
        # rater keeps them too), so that the floor is only the keys and their counting.
        known: dict[tuple[int, int], tuple[int, int]] = {}
        for _, app, placed, *_ in batch:
            quarter = placed - placed % QUARTER
            calendar = calendars[app]
            known[app, quarter] = (
                calendar.start(Dimension.HOUR, quarter),
                calendar.start(Dimension.DAY, quarter),
            )
        started = time.perf_counter()
        hours, days = [], []
        for _, _, _, _, _, _, _, prefix, cdr_id, placed in priced:
            row = by_id[cdr_id]
            hour, day = known[row[1], placed - placed % QUARTER]
            hours.append((row[1], hour))
            days.append((row[1], day, prefix, row[3], row[5], row[7]))
        Counter(hours), Counter(days)
        floor_us.append((time.perf_counter() - started) / len(priced) * 1e6)
    print(f"{args.count:,} CDRs, batches of {BATCH_SIZE:,}, SQLite; µs per CDR:")
    print(f"  Rater.drain (all of it) {drain_us:6.2f}")
    print(f"  priced_tally (median)   {statistics.median(tally_us):6.2f}")
    print(f"  floor (median)          {statistics.median(floor_us):6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
