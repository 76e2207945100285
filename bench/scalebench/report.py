"""The one table of ``bench/scale.py`` (every figure beside its baseline, the ratio, the
issue's target and PASS/FAIL) and its JSON record."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ingest_throughput import Result as Ingest
from querybench.report import _table
from ratebench.report import RatingResult

from .phases import Export
from .query import CaseResult, QueryPhase, median_run

MAX_RSS_MB = 200.0
P99_MS = 20.0
FLAT_RATIO = 1.2  # export memory "does not grow": 10x the rows, at most 1.2x the memory


@dataclass(frozen=True, slots=True)
class Row:
    database: str
    figure: str
    product: str
    baseline: str
    ratio: str
    raw: str = ""
    target: str = ""
    result: str = ""  # PASS, FAIL or empty (no target)

    def cells(self) -> list[str]:
        return [self.database, self.figure, self.product, self.baseline, self.ratio, self.raw,
                self.target, self.result]  # fmt: skip


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _x(value: float) -> str:
    return f"{value:.2f}x" if math.isfinite(value) else "-"


def query_rows(phase: QueryPhase) -> list[Row]:
    db = phase.database
    rows: list[Row] = []
    page1 = {(r.tenant, w): r.product[w].rate for r in phase.cases for w in r.product
             if r.case.page == 1 and not r.sweep}  # fmt: skip
    for r in phase.cases:
        assert r.baseline is not None
        assert r.baseline_latency is not None
        for workers, measured in r.product.items():
            ratio = measured.rate / r.baseline.rate
            target = result = ""
            if r.sweep:
                pass  # no target: what the kept rows do not help with
            elif r.tenant == "big" and r.case.page == 1 and workers == 1:
                target, result = ">= 5x baseline", _verdict(ratio >= 5)
            elif r.tenant == "big" and r.case.page > 1:
                deep = measured.rate / page1[(r.tenant, workers)]
                target, result = f">= 0.70x page 1: {deep:.2f}x", _verdict(deep >= 0.70)
            rows.append(Row(db, f"{r.label}, serve w{workers}: req/s", _rate(measured.rate),
                            _rate(r.baseline.rate), _x(ratio), _rate(r.raw_rate), target,
                            result))  # fmt: skip
        for workers, latency in r.latency.items():
            p99 = latency.percentile(0.99)
            base = r.baseline_latency if workers == 1 else None
            rows.append(Row(
                db,
                f"{r.label}, serve w{workers}: p50 / p99 ms at half max "
                f"({latency.rate:,.0f}/s)",
                f"{latency.percentile(0.5):.1f} / {p99:.1f}",
                f"{base.percentile(0.5):.1f} / {base.percentile(0.99):.1f}" if base else "",
                _x(p99 / base.percentile(0.99)) if base else "",
                "",
                f"p99 <= {P99_MS:g} ms",
                _verdict(p99 <= P99_MS and not latency.errors and not latency.missing),
            ))  # fmt: skip
        rows += _before_rows(db, r)
    for workers, peaks in phase.serve_rss_mb.items():
        worst = max(peaks.values())
        rows.append(Row(db, f"serve w{workers}: peak RSS MB per worker (of {len(peaks)})",
                        f"{worst:.0f}", f"{phase.baseline_rss_mb:.0f}",
                        _x(worst / phase.baseline_rss_mb), "", f"< {MAX_RSS_MB:g} MB",
                        _verdict(worst < MAX_RSS_MB)))  # fmt: skip
    return rows


def _before_rows(db: str, r: CaseResult) -> list[Row]:
    """This checkout's serve w1 (product) beside the product from ``--before-src`` (baseline),
    rate and latency; none without it."""
    if r.before is None or r.before_latency is None:
        return []
    now, then = r.product[1], r.before
    p50, p99 = (r.latency[1].percentile(q) for q in (0.5, 0.99))
    was50, was99 = (r.before_latency.percentile(q) for q in (0.5, 0.99))
    return [
        Row(db, f"{r.label}, serve w1 vs before w1: req/s", _rate(now.rate),
            f"{_rate(then.rate)} (before w1)", _x(now.rate / then.rate), _rate(r.raw_rate)),
        Row(db, f"{r.label}, serve w1 vs before w1: p50 / p99 ms at half max "
                f"({r.latency[1].rate:,.0f}/s, before {r.before_latency.rate:,.0f}/s)",
            f"{p50:.1f} / {p99:.1f}", f"{was50:.1f} / {was99:.1f} (before w1)", _x(p99 / was99)),
    ]  # fmt: skip


def _median_runs(results: Sequence[Ingest]) -> list[Ingest]:
    """For each path, in order, its run of median rate."""
    by_path: dict[str, list[Ingest]] = {}
    for r in results:
        by_path.setdefault(r.path, []).append(r)
    return [median_run(runs) for runs in by_path.values()]


def ingest_rows(every_round: Sequence[Ingest]) -> list[Row]:
    results = _median_runs(every_round)
    raw = next(r for r in results if r.path == "raw bulk insert")
    imports = [r for r in results if r.path.startswith("voicecdr cdrs import")]
    # The plain command (default workers) is the one the target is about, when it ran.
    cli = next((r for r in imports if "--workers 0" not in r.path), imports[0])
    rows = []
    for r in results:
        if r is raw:
            continue
        ratio = r.rate / raw.rate
        target, result = (">= 0.50x raw", _verdict(ratio >= 0.5)) if r is cli else ("", "")
        rows.append(Row(r.database, f"ingest {r.path}: rows/s", _rate(r.rate),
                        f"{_rate(raw.rate)} (raw bulk insert)", _x(ratio), "", target,
                        result))  # fmt: skip
    return rows


def rating_rows(results: Sequence[RatingResult]) -> list[Row]:
    rows = []
    for r in results:
        method, raw = r.baseline
        product = r.product_rate
        target = result = ""
        if r.database == "sqlite":
            target, result = ">= 50,000/s", _verdict(product >= 50_000)
        case = "with receipts" if r.receipts else "no receipts"
        rows.append(Row(r.database, f"rating {case}: CDRs/s", _rate(product),
                        f"{_rate(raw)} ({method})", _x(product / raw), "", target,
                        result))  # fmt: skip
    return rows


def export_rows(database: str, exports: Sequence[Export]) -> list[Row]:
    rows = []
    first = exports[0]
    for e in exports:
        later = e is not first
        ratio = e.peak_rss_mb / first.peak_rss_mb
        rows.append(Row(
            database,
            f"voicecdr export {e.rows:,} rows ({e.rows / e.seconds:,.0f} rows/s): peak RSS MB",
            f"{e.peak_rss_mb:.0f}",
            f"{first.peak_rss_mb:.0f} ({first.rows:,} rows)" if later else "",
            _x(ratio) if later else "",
            "",
            f"<= {FLAT_RATIO:g}x for {e.rows / first.rows:.0f}x rows" if later else "",
            _verdict(ratio <= FLAT_RATIO) if later else "",
        ))  # fmt: skip
    return rows


HEADERS = ["database", "figure", "product", "baseline", "product/baseline", "raw SQL/s",
           "target", "result"]  # fmt: skip


def render(rows: Sequence[Row]) -> list[str]:
    return _table(HEADERS, [row.cells() for row in rows], text=2)


def row_json(rows: Sequence[Row]) -> list[dict[str, str]]:
    return [asdict(row) for row in rows]


def _before_json(r: CaseResult) -> dict[str, Any]:
    if r.before is None or r.before_latency is None:
        return {}  # the record is as it was without --before-src
    return {"before": {**asdict(r.before), "rate": round(r.before.rate, 2)},
            "before_latency": r.before_latency.summary}  # fmt: skip


def query_json(phase: QueryPhase) -> dict[str, Any]:
    return {
        "database": phase.database,
        "cases": [
            {
                "tenant": r.tenant,
                "case": asdict(r.case),
                "target": asdict(r.target),
                "raw_sql_rate": round(r.raw_rate, 2),
                "rounds": {name: [round(x, 2) for x in rates] for name, rates in r.rounds.items()},
                "product": {
                    w: {**asdict(t), "rate": round(t.rate, 2)} for w, t in r.product.items()
                },
                "baseline": {**asdict(r.baseline), "rate": round(r.baseline.rate, 2)}
                if r.baseline
                else None,
                "latency": {w: lat.summary for w, lat in r.latency.items()},
                "baseline_latency": r.baseline_latency.summary if r.baseline_latency else None,
                **_before_json(r),
            }
            for r in phase.cases
        ],
        "serve_peak_rss_mb": {
            w: {str(pid): round(mb, 1) for pid, mb in peaks.items()}
            for w, peaks in phase.serve_rss_mb.items()
        },
        "baseline_peak_rss_mb": round(phase.baseline_rss_mb, 1),
    }
