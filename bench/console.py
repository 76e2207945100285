"""The console benchmark of issue 23: its pages' server time for the big tenant of bench/.

On the scale data set (``scalebench.dataset``, as ``analytics.py`` and ``scale.py`` use it:
N CDRs over 30 days, the big tenant ``bench-01`` holding 40%, with a campaign day), each
request goes to the app in-process (``create_app``, the ASGI app called directly, no
socket or HTTP client): its server time is from the call to the last byte sent. The big
tenant's customer is signed in; for the campaign's local day (midnight to midnight,
voiceType 1, 100 rows a page) it times

- the Overview page for that day;
- the Calls page: page 1, and a deep page (the last whole page);
- the baseline: the query API's page (``getVoiceCdr``, the same window, page size and
  pages), in the same run.

Each is asked ``--requests`` times, interleaved, after a warm-up; p50 and p99 are printed
beside the issue's target (p50 <= 100 ms) and the baseline. See ``bench/README.md``.

    python bench/console.py --count 1000000 --databases sqlite,postgresql
    python bench/console.py --count 5000 --databases sqlite --requests 5 --no-cache  # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.testclient import TestClient

from query_latency import _databases, _positive, say
from querybench.databases import DATABASES, Database, PostgresDatabase, each_database
from querybench.dataset import SECRETKEY
from querybench.report import _table
from scalebench import dataset
from voicecdr import storage
from voicecdr.api import create_app
from voicecdr.config import Settings
from voicecdr.timefmt import zone

RESULTS = Path(__file__).resolve().parent / "results" / "console.json"
CACHE = Path.home() / ".cache" / "voicecdr-bench"  # shared with scale.py and analytics.py
P50_MS = 100.0
PAGE_SIZE = 100
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True, slots=True)
class Ask:
    """One request: a label, its method, path and query string or form body."""

    label: str
    method: str
    path: str
    query: str = ""
    body: bytes = b""
    baseline: str | None = None  # the label of the request it is compared with


@contextlib.contextmanager
def loaded(
    name: str, spec: dataset.Spec, args: argparse.Namespace, work: Path, pg: Any
) -> Iterator[tuple[str, dataset.Spec, str]]:
    """The data set in ``name``: its URL, the spec it was built with, its load times."""
    database: Database
    with contextlib.ExitStack() as stack:
        if name == "sqlite":
            cache = None if args.no_cache else args.cache_dir
            database, spec, times = stack.enter_context(dataset.sqlite(spec, cache, work, say))
        else:
            database = PostgresDatabase(pg.create_database("voicecdr_console"))
            say(f"[{name}] loading {spec.count:,} CDRs through CdrWriter.store ...")
            times = dataset.load(database, spec, say)
        say(f"[{name}] data set: {times}")
        yield database.url, spec, database.version()


def asks(spec: dataset.Spec, tz_name: str, total: int | None) -> list[Ask]:
    """The requests for the local day holding the middle of the campaign window, midnight
    to midnight (the window a reader picks by date); the deep page is the last whole page
    of ``total`` rows (page 1 until the total is known)."""
    tz = zone(tz_name)
    start = datetime.fromtimestamp((spec.window.start + spec.window.end) // 2, tz).replace(
        hour=0, minute=0, second=0, tzinfo=None
    )
    end = start + timedelta(days=1)
    deep = max(1, (total or 0) // PAGE_SIZE)
    window = {"from": f"{start:%Y-%m-%dT%H:%M}", "to": f"{end:%Y-%m-%dT%H:%M}"}

    def calls(page: int, **filters: str) -> str:
        return urlencode({**window, "voice_type": "1", "size": PAGE_SIZE, "page": page,
                          **filters})  # fmt: skip

    def api(page: int) -> bytes:
        return urlencode({
            "appkey": spec.tenant, "secretkey": SECRETKEY, "voiceType": "1",
            "start_time": f"{start:%Y-%m-%d %H:%M:%S}",
            "end_time": f"{end - timedelta(seconds=1):%Y-%m-%d %H:%M:%S}",
            "page": page, "page_size": PAGE_SIZE,
        }).encode()  # fmt: skip

    api_path = "/api/voiceSms/getVoiceCdr"
    every = [
        Ask("query API page 1", "POST", api_path, body=api(1)),
        Ask(f"query API page {deep}", "POST", api_path, body=api(deep)),
        Ask("console overview", "GET", "/console/overview", urlencode(window),
            baseline="query API page 1"),
        Ask("console calls page 1", "GET", "/console/calls", calls(1),
            baseline="query API page 1"),
        Ask(f"console calls page {deep}", "GET", "/console/calls", calls(deep),
            baseline=f"query API page {deep}"),
        # A filter the bucket counts do not know: counted per bucket over the window.
        Ask("console calls connected page 1", "GET", "/console/calls",
            calls(1, connected="yes"), baseline="query API page 1"),
        Ask(f"console calls connected page {max(1, deep // 3)}", "GET", "/console/calls",
            calls(max(1, deep // 3), connected="yes"), baseline=f"query API page {deep}"),
    ]  # fmt: skip
    # A small data set has few pages: each page once.
    return list({ask.label: ask for ask in every}.values())


async def _served(app: Any, ask: Ask, cookie: str) -> tuple[float, int, bytes]:
    """The app's answer to ``ask``, called directly: seconds, status and body."""
    headers = [(b"host", b"bench"), (b"cookie", cookie.encode())]
    if ask.body:
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        headers.append((b"content-length", str(len(ask.body)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": ask.method, "scheme": "http", "path": ask.path, "raw_path": ask.path.encode(),
        "query_string": ask.query.encode(), "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("bench", 80),
    }  # fmt: skip
    sent: list[bytes] = []
    status = 0
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            await asyncio.sleep(3600)  # no disconnect while the answer is being sent
        received = True
        return {"type": "http.request", "body": ask.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            sent.append(message.get("body", b""))

    started = time.perf_counter()
    await app(scope, receive, send)
    return time.perf_counter() - started, status, b"".join(sent)


def measure(
    client: TestClient, app: Any, plan: list[Ask], cookie: str, requests: int
) -> dict[str, list[float]]:
    """Each ask ``requests`` times, interleaved, after one warm-up round; on the event
    loop the app's lifespan runs in."""

    async def run() -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {ask.label: [] for ask in plan}
        for n in range(requests + 1):
            for ask in plan:
                seconds, status, body = await _served(app, ask, cookie)
                if status != 200 or b'"code":"0"' in body:
                    raise SystemExit(f"{ask.label}: {status} {body[:300]!r}")
                if n:
                    samples[ask.label].append(seconds)
        return samples

    assert client.portal is not None
    result: dict[str, list[float]] = client.portal.call(run)
    return result


def signed_in(client: TestClient, appkey: str) -> str:
    """The customer's session cookie, signed in as the console's form does."""
    form = client.get("/console/signin")
    token = CSRF.search(form.text)
    assert token, form.text[:500]
    answer = client.post(
        "/console/signin",
        data={"csrf": token.group(1), "kind": "customer", "appkey": appkey,
              "secretkey": SECRETKEY},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303, answer.text[:500]
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def _pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_database(
    name: str, spec: dataset.Spec, args: argparse.Namespace, work: Path, pg: Any
) -> tuple[dataset.Spec, dict[str, Any]]:
    with loaded(name, spec, args, work, pg) as (url, spec, version):
        db = storage.Database(url)
        try:
            app_row = storage.AppStore(db).get(spec.tenant)
            assert app_row is not None, spec.tenant
            settings = Settings.from_env(database_url=url, app_cache_seconds=60, max_age_days=0)
            app = create_app(settings, db)
            with TestClient(app) as client:
                cookie = signed_in(client, spec.tenant)
                first = asks(spec, app_row.timezone, None)[0]
                total = orjson.loads(
                    client.post(
                        first.path,
                        content=first.body,
                        headers={"content-type": "application/x-www-form-urlencoded"},
                    ).content
                )
                rows = int(total["info"]["total"])  # fmt: skip
                plan = asks(spec, app_row.timezone, rows)
                samples = measure(client, app, plan, cookie, args.requests)
        finally:
            db.close()
    say(f"[{name}] {rows:,} rows in the window; timed {args.requests} requests each")
    record = {
        "database": name, "version": version, "timezone": app_row.timezone, "rows": rows,
        "results": {label: [round(s * 1000, 3) for s in got] for label, got in samples.items()},
        "baselines": {a.label: a.baseline for a in plan if a.baseline},
    }  # fmt: skip
    return spec, record


HEADERS = ["database", "page", "p50 ms", "p99 ms", "baseline", "baseline p50 ms",
           "p50 <= 100 ms"]  # fmt: skip


def table_rows(record: dict[str, Any]) -> list[list[str]]:
    results: dict[str, list[float]] = record["results"]
    out = []
    for label, ms in results.items():
        p50 = _pct(ms, 0.5)
        base = record["baselines"].get(label)
        verdict = "-" if base is None else ("PASS" if p50 <= P50_MS else "FAIL")
        out.append([
            record["database"], label, f"{p50:.2f}", f"{_pct(ms, 0.99):.2f}",
            base or "-", "-" if base is None else f"{_pct(results[base], 0.5):.2f}",
            verdict,
        ])  # fmt: skip
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=_positive, default=1_000_000, help="CDRs in the data set")
    parser.add_argument("--seed", type=int, default=7, help="data set seed")
    parser.add_argument("--databases", type=_databases, default=list(DATABASES))
    parser.add_argument("--requests", type=_positive, default=50, help="timed requests per page")
    parser.add_argument(
        "--cache-dir", type=Path, default=CACHE, help="where the SQLite set is kept"
    )
    parser.add_argument("--no-cache", action="store_true", help="build the SQLite set afresh")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON record")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    spec = dataset.Spec(args.count, args.seed, int(time.time()))
    records: list[dict[str, Any]] = []
    for name, work, pg in each_database(args.databases, "voicecdr-console-"):
        spec, record = bench_database(name, spec, args, work, pg)
        records.append(record)
    rows = [row for record in records for row in table_rows(record)]
    failed = sum(row[-1] == "FAIL" for row in rows)
    print("\n".join([
        f"{spec.count:,} CDRs, tenant {spec.tenant}, schema {storage.head_revision()}; "
        f"run took {(time.perf_counter() - began) / 60:.1f} min, load average "
        f"{[round(x, 2) for x in os.getloadavg()]}",
        *(f"{r['database']} ({r['version']}, {r['timezone']}): {r['rows']:,} rows in the "
          "campaign's local day" for r in records),
        "",
        *_table(HEADERS, rows, text=2),
        "",
        f"targets: {failed} FAIL. Server time of the ASGI app called in-process, p50 / p99 "
        f"over {args.requests} requests per page, pages interleaved.",
    ]))  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    command = [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]
    args.output.write_bytes(orjson.dumps({
        "command": command, "count": spec.count, "seed": spec.seed, "now": spec.now,
        "schema": storage.head_revision(), "cpus": os.cpu_count(),
        "requests": args.requests, "databases": records,
        "rows": [dict(zip(HEADERS, row, strict=True)) for row in rows],
    }, option=orjson.OPT_INDENT_2))  # fmt: skip
    say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
