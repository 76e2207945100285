"""Bounded load: many apps querying and ingesting together against a real ``voicecdr serve``.

    python bench/load.py                      # 60 s, 20 apps, SQLite
    python bench/load.py --seconds 10 --apps 5

Everything stays on 127.0.0.1 and stops by itself after ``--seconds``. Each app runs one
querier (its own keys, a 24 h window, random pages) and one ingester (batches of
``--batch`` canonical CDRs over ``POST /v1/cdrs``). At the end it prints p50/p99 latency per
kind, the error count (any 5xx, transport error, or error envelope other than
``rate_limited``), and records lost: CDRs acknowledged as accepted that the database does
not hold (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.data import make_app

from querybench.server import serving
from voicecdr import demo
from voicecdr.storage import Database, upgrade
from voicecdr.timefmt import zone

TOKEN = "load-ingest-token-0123456789"
FMT = "%Y-%m-%d %H:%M:%S"
RATE = 10  # each app's query rate limit, requests per second


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"query": [], "ingest": []})
    errors: int = 0
    rate_limited: int = 0
    accepted: set[str] = field(default_factory=set)


async def querier(client: httpx.AsyncClient, appkey: str, stop: float, tally: Tally) -> None:
    rng = random.Random(appkey)
    while time.monotonic() < stop:
        now = datetime.now(zone("Asia/Shanghai")).replace(tzinfo=None, microsecond=0)
        form = {
            "appkey": appkey,
            "secretkey": f"secret-{appkey}",
            "voiceType": str(rng.randint(0, 1)),
            "start_time": (now - timedelta(hours=23)).strftime(FMT),
            "end_time": now.strftime(FMT),
            "page": str(rng.randint(1, 3)),
            "page_size": "100",
        }
        started = time.perf_counter()
        try:
            response = await client.post("/api/voiceSms/getVoiceCdr", data=form)
            body = response.json()
        except (httpx.HTTPError, ValueError):
            tally.errors += 1
            continue
        tally.latencies["query"].append(time.perf_counter() - started)
        if body.get("error") == "rate_limited":
            tally.rate_limited += 1
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        elif response.status_code >= 500 or body.get("code") != "1":
            tally.errors += 1
        await asyncio.sleep(1 / RATE)  # a well-behaved client paces itself


async def ingester(
    client: httpx.AsyncClient, appkey: str, stop: float, batch: int, tally: Tally
) -> None:
    seed = 0
    while time.monotonic() < stop:
        seed += 1
        records = list(demo.generate([appkey], batch, now=int(time.time()), days=0.5, seed=seed))
        for i, record in enumerate(records):
            record["call_id"] = f"{appkey}-{seed}-{i}"
        started = time.perf_counter()
        try:
            response = await client.post(
                "/v1/cdrs", json=records, headers={"Authorization": f"Bearer {TOKEN}"}
            )
        except httpx.HTTPError:
            tally.errors += 1
            continue
        tally.latencies["ingest"].append(time.perf_counter() - started)
        if response.status_code != 200:
            tally.errors += 1
            continue
        rejected = {r["index"] for r in response.json()["rejected"]}
        tally.accepted.update(r["call_id"] for i, r in enumerate(records) if i not in rejected)


def count_stored(db: Database, call_ids: set[str]) -> int:
    with db.reader.connect() as conn:
        held = {row[0] for row in conn.execute(sa.text("SELECT call_id FROM cdrs"))}
    return len(call_ids & held)


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def drive(base_url: str, appkeys: list[str], seconds: float, batch: int) -> Tally:
    tally = Tally()
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=len(appkeys) * 2)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=30, limits=limits, trust_env=False
    ) as client:
        await asyncio.gather(
            *(querier(client, key, stop, tally) for key in appkeys),
            *(ingester(client, key, stop, batch, tally) for key in appkeys),
        )
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="voicecdr-load-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'load.db'}"
        db = Database(url)
        upgrade(db)
        appkeys = [f"load{i:02d}" for i in range(args.apps)]
        for key in appkeys:
            make_app(db, key, secretkey=f"secret-{key}", rate_limit=RATE)
        os.environ["VOICECDR_INGEST_TOKEN"] = TOKEN
        os.environ["VOICECDR_RATE_LIMIT_STATE"] = str(Path(tmp) / "ratelimit.sqlite")
        with serving(url, Path(tmp) / "serve.log") as base_url:
            tally = asyncio.run(drive(base_url, appkeys, args.seconds, args.batch))
        stored = count_stored(db, tally.accepted)
        db.close()

    print(f"{args.apps} apps, {args.seconds:g} s, SQLite, one `voicecdr serve` process")
    for kind, values in tally.latencies.items():
        print(
            f"{kind:7} requests={len(values):6d}  p50={percentile(values, 50) * 1000:7.1f} ms"
            f"  p99={percentile(values, 99) * 1000:7.1f} ms"
        )
    print(f"rate_limited (expected, paced by Retry-After) = {tally.rate_limited}")
    print(f"errors = {tally.errors}")
    print(f"records acknowledged = {len(tally.accepted)}, stored = {stored}")
    print(f"records lost = {len(tally.accepted) - stored}")
    sys.exit(1 if tally.errors or stored != len(tally.accepted) else 0)


if __name__ == "__main__":
    main()
