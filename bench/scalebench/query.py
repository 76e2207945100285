"""Phase (a) and the serve half of (d): the query API under bounded load.

Three servers run at once on the same database: ``voicecdr serve --workers 1``, ``voicecdr
serve --workers 2`` and the baseline (``bench/baseline_app.py``, one worker). For each case
(big and small tenant x page 1 and page 500 of 100, all with the exact total), it first
checks that all three answer the same (same total, same rows), then, case by case and side
by side: the raw SQL's rate (``querybench.databases.RawQueries``, one connection in this
process), and the maximum rate of product (1 worker), baseline and product (2 workers) in a
closed loop, in that order ``rounds`` times; each rate is the median of its rounds, so a
neighbour's burst on a shared machine moves one round, not the figure. Then each product's
latency in an open loop at half its own maximum rate (and the baseline's at half its own,
for the 1-worker comparison). Last, the peak RSS of every
serving process, taken after all that load.

With ``QueryPlan.before_src`` (``scale.py --before-src``), a fourth server, the product of
another checkout with 1 worker (``scalebench.before``), is checked and measured like the
others, each time beside serve w1, so the two versions share every round's conditions.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson

from querybench.databases import Database, RawQueries
from querybench.dataset import SECRETKEY
from querybench.measure import QUERY_PATH, ApiClient
from querybench.server import HOST, Served, serve_command, started
from querybench.workload import Case, Target

from . import before, loadgen, procs
from .dataset import Spec

BASELINE_APP = Path(__file__).resolve().parents[1] / "baseline_app.py"
CASES = (Case("page 1 x100", 1, 100), Case("page 500 x100", 500, 100))
# The big tenant's pages 1 to 500 in turn, a request each: rows the server has not just
# served (54,000 of them, more than a process keeps rendered by default), so this is the
# query path without the benefit of kept rows.
SWEEP = Case("pages 1-500 in turn x100", 1, 100)
SWEEP_PAGES = 500
PRODUCTS = (1, 2)  # serve --workers
# The servers of one round, in turn, for even and odd rounds: "before" (when served) beside
# w1, each going first every other round so neither always follows the other.
MAX_RATE_TURNS = (("w1", "before", "baseline", "w2"), ("before", "w1", "baseline", "w2"))
LATENCY_TURNS = (("w1", "before", "w2", "baseline"), ("before", "w1", "w2", "baseline"))


@dataclass(frozen=True, slots=True)
class QueryPlan:
    seconds: float  # each closed-loop maximum-rate run
    latency_seconds: float  # each open-loop run
    raw_seconds: float  # each raw-SQL rate run
    connections: int  # closed loop
    rounds: int = 1  # runs of each (rates, raw SQL, latency), alternating; medians kept
    before_src: Path | None = None  # another checkout's src: its serve w1 runs as "before"


@dataclass
class CaseResult:
    tenant: str  # "big" or "small"
    case: Case
    target: Target
    raw_rate: float = 0.0
    product: dict[int, loadgen.Throughput] = field(default_factory=dict)  # by workers
    baseline: loadgen.Throughput | None = None
    latency: dict[int, loadgen.Latency] = field(default_factory=dict)
    baseline_latency: loadgen.Latency | None = None
    before: loadgen.Throughput | None = None  # the product from QueryPlan.before_src
    before_latency: loadgen.Latency | None = None
    sweep: bool = False  # pages 1 to SWEEP_PAGES in turn, not case.page over and over
    rounds: dict[str, list[float]] = field(default_factory=dict)  # every round's rate, by server

    @property
    def label(self) -> str:
        return f"{self.tenant} tenant {self.case.label}"


@dataclass
class QueryPhase:
    database: str
    cases: list[CaseResult]
    serve_rss_mb: dict[int, dict[int, float]]  # workers -> {pid: peak MB}
    baseline_rss_mb: float


def _target(database: Database, appkey: str, spec: Spec, group: int | None) -> Target:
    """The tenant's row counts, and its busiest voiceType unless ``group`` is given."""
    p = database.placeholder
    with contextlib.closing(database.connect()) as conn:
        app_id = conn.execute(f"SELECT id FROM apps WHERE appkey = {p}", (appkey,)).fetchone()[0]
        if group is None:
            group = conn.execute(
                f"SELECT voice_group FROM cdrs WHERE app_id = {p} "
                "GROUP BY voice_group ORDER BY count(*) DESC, 1 LIMIT 1",
                (app_id,),
            ).fetchone()[0]
        tenant_rows = conn.execute(
            f"SELECT count(*) FROM cdrs WHERE app_id = {p}", (app_id,)
        ).fetchone()[0]
        total_rows = conn.execute("SELECT count(*) FROM cdrs").fetchone()[0]
        window_rows = conn.execute(
            f"SELECT count(*) FROM cdrs WHERE app_id = {p} AND voice_group = {p} "
            f"AND placed_at >= {p} AND placed_at <= {p}",
            (app_id, group, spec.window.start, spec.window.end),
        ).fetchone()[0]
    return Target(app_id, appkey, int(group), spec.window, total_rows, tenant_rows, window_rows)


def targets(database: Database, spec: Spec) -> dict[str, Target]:
    big = _target(database, spec.tenant, spec, None)
    return {"big": big, "small": _target(database, spec.small_tenant, spec, big.voice_group)}


def server_env(database: Database, workdir: Path) -> dict[str, str]:
    # The SQLite rate-limit sidecar in the work directory, so nothing outlives the run.
    return {"VOICECDR_RATE_LIMIT_STATE": str(workdir / f"{database.name}-ratelimit.sqlite")}


@contextlib.contextmanager
def _servers(
    database: Database, spec: Spec, workdir: Path, before_src: Path | None
) -> Iterator[dict[str, Served]]:
    apps_file = workdir / "baseline-apps.json"
    apps_file.write_bytes(orjson.dumps(dict.fromkeys(spec.appkeys, SECRETKEY)))
    env = server_env(database, workdir)
    baseline = [sys.executable, str(BASELINE_APP), "--database-url", database.url]
    with contextlib.ExitStack() as stack:
        servers = {
            f"w{n}": stack.enter_context(
                started(
                    functools.partial(serve_command, database.url, workers=n),
                    workdir / f"{database.name}-serve-w{n}.log",
                    env,
                )
            )
            for n in PRODUCTS
        }
        servers["baseline"] = stack.enter_context(
            started(
                lambda port: [*baseline, "--apps", str(apps_file), "--port", str(port)],
                workdir / f"{database.name}-baseline.log",
            )
        )
        if before_src is not None:
            servers["before"] = stack.enter_context(
                started(
                    functools.partial(serve_command, database.url, workers=1),
                    workdir / f"{database.name}-serve-before.log",
                    {**env, **before.env(before_src)},
                )
            )
        yield servers


def _answer(client: ApiClient, form: dict[str, str]) -> Any:
    return orjson.loads(client.post(form).content)["info"]


def _verify(result: CaseResult, servers: dict[str, Served], raw: RawQueries) -> None:
    """Every server answers the same total and rows; ids and total match the raw SQL."""
    answers = {}
    for name, served in servers.items():
        with contextlib.closing(ApiClient(served.url)) as client:
            answers[name] = _answer(client, client.form(result.target, result.case))
    expected = raw.page(result.target, result.case)
    for name, info in answers.items():
        ids = [row["id"] for row in info["rows"]]
        if (info["total"], ids) != (expected.total, expected.ids):
            raise RuntimeError(
                f"{result.label}: {name} answered total {info['total']}, ids {ids[:3]}.., "
                f"raw SQL total {expected.total}, ids {expected.ids[:3]}.."
            )
        if info != answers["w1"]:
            raise RuntimeError(f"{result.label}: {name} and serve disagree on the rows")


def _raw_rate(raw: RawQueries, result: CaseResult, seconds: float) -> float:
    done = 0
    started_at = time.perf_counter()
    deadline = started_at + seconds
    while time.perf_counter() < deadline:
        raw.page(result.target, result.case)
        done += 1
    return done / (time.perf_counter() - started_at)


def _request(served: Served, result: CaseResult) -> loadgen.Requests:
    with contextlib.closing(ApiClient(served.url)) as client:
        form = client.form(result.target, result.case)
    if not result.sweep:
        return loadgen.form_request(HOST, served.port, QUERY_PATH, form)
    return [
        loadgen.form_request(HOST, served.port, QUERY_PATH, {**form, "page": str(page)})
        for page in range(1, SWEEP_PAGES + 1)
    ]


def _closed(served: Served, result: CaseResult, plan: QueryPlan) -> loadgen.Throughput:
    measured = loadgen.closed_loop(
        HOST,
        served.port,
        _request(served, result),
        connections=plan.connections,
        seconds=plan.seconds,
    )
    if measured.errors:
        raise RuntimeError(f"{result.label}: {measured.errors} failed requests at {served.url}")
    return measured


def _open(served: Served, result: CaseResult, rate: float, seconds: float) -> loadgen.Latency:
    return loadgen.open_loop(
        HOST, served.port, _request(served, result), rate=rate, seconds=seconds
    )


class _Rated(Protocol):
    @property
    def rate(self) -> float: ...


_R = TypeVar("_R", bound=_Rated)


def median_run(runs: Sequence[_R]) -> _R:
    """The run of median rate (the lower middle one for an even count)."""
    return sorted(runs, key=lambda run: run.rate)[(len(runs) - 1) // 2]


def median_p99(runs: Sequence[loadgen.Latency]) -> loadgen.Latency:
    """The run of median p99 (the lower middle one for an even count)."""
    return sorted(runs, key=lambda run: run.percentile(0.99))[(len(runs) - 1) // 2]


def _latencies(result: CaseResult, servers: dict[str, Served], plan: QueryPlan) -> None:
    """Open loops at half each server's own maximum rate: serve w1 (and before), w2 and the
    baseline in turn, ``plan.rounds`` times; the run of median p99 of each goes to
    ``result``, every round's p99 to its ``rounds`` (one stall of the shared machine, a few
    tens of milliseconds, is enough to decide one run's p99)."""
    assert result.baseline is not None
    maxima = {"w1": result.product[1], "w2": result.product[2], "baseline": result.baseline}
    if result.before is not None:
        maxima["before"] = result.before
    turns = [[name for name in turn if name in maxima] for turn in LATENCY_TURNS]
    runs: dict[str, list[loadgen.Latency]] = {name: [] for name in turns[0]}
    for i in range(plan.rounds):
        for name in turns[i % 2]:
            rate = maxima[name].rate / 2
            runs[name].append(_open(servers[name], result, rate, plan.latency_seconds))
    result.latency = {n: median_p99(runs[f"w{n}"]) for n in PRODUCTS}
    result.baseline_latency = median_p99(runs["baseline"])
    if "before" in runs:
        result.before_latency = median_p99(runs["before"])
    for name, measured in runs.items():
        result.rounds[f"{name} p99 ms"] = [run.percentile(0.99) for run in measured]


def _max_rates(
    result: CaseResult, servers: dict[str, Served], raw: RawQueries, plan: QueryPlan
) -> None:
    """Raw SQL, product (1 worker, and before), baseline, product (2 workers) in turn,
    ``plan.rounds`` times; the medians go to ``result``."""
    raws: list[float] = []
    turns = [[name for name in turn if name in servers] for turn in MAX_RATE_TURNS]
    runs: dict[str, list[loadgen.Throughput]] = {name: [] for name in turns[0]}
    for i in range(plan.rounds):
        raws.append(_raw_rate(raw, result, plan.raw_seconds))
        for name in turns[i % 2]:
            runs[name].append(_closed(servers[name], result, plan))
    result.raw_rate = statistics.median(raws)
    result.product = {workers: median_run(runs[f"w{workers}"]) for workers in PRODUCTS}
    result.baseline = median_run(runs["baseline"])
    if "before" in runs:
        result.before = median_run(runs["before"])
    result.rounds = {"raw": raws, **{n: [t.rate for t in ts] for n, ts in runs.items()}}


def run(
    database: Database, spec: Spec, workdir: Path, plan: QueryPlan, say: Callable[[str], None]
) -> QueryPhase:
    found = targets(database, spec)
    results = [CaseResult(tenant, case, found[tenant]) for tenant in found for case in CASES]
    results.append(CaseResult("big", SWEEP, found["big"], sweep=True))
    with (
        contextlib.closing(RawQueries(database)) as raw,
        _servers(database, spec, workdir, plan.before_src) as servers,
    ):
        for result in results:
            if not result.sweep:  # its pages are those of the cases around it
                _verify(result, servers, raw)
        say(f"[{database.name}] product and baseline agree on all {len(results)} cases")
        for result in results:
            _max_rates(result, servers, raw, plan)
            assert result.baseline is not None
            before_w1 = f"before w1 {result.before.rate:,.0f}/s, " if result.before else ""
            say(
                f"[{database.name}] {result.label}: raw SQL {result.raw_rate:,.0f}/s, "
                f"serve w1 {result.product[1].rate:,.0f}/s, {before_w1}baseline "
                f"{result.baseline.rate:,.0f}/s, serve w2 {result.product[2].rate:,.0f}/s"
            )
        for result in results:
            _latencies(result, servers, plan)
            rounds = ", ".join(
                f"{name} " + " / ".join(f"{p99:.1f}" for p99 in result.rounds[f"{name} p99 ms"])
                for name in ("w1", "before", "w2")
                if f"{name} p99 ms" in result.rounds
            )
            say(f"[{database.name}] {result.label}: p99 ms at half max rate by round: {rounds}")
        rss = {n: procs.serve_workers(servers[f"w{n}"].pid) for n in PRODUCTS}
        baseline_rss = procs.peak_rss_mb(servers["baseline"].pid)
    return QueryPhase(database.name, results, rss, baseline_rss)
