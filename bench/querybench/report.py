"""The printed tables and the JSON record of one benchmark run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from voicecdr.timefmt import format_epoch, zone

from .databases import LoadTimes
from .dataset import TIMEZONE, Dataset
from .measure import CaseResult, Plan, Stats
from .workload import Target


@dataclass(frozen=True, slots=True)
class DatabaseRun:
    database: str
    version: str
    load: LoadTimes
    target: Target
    results: list[CaseResult]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, text: int) -> list[str]:
    """A markdown table: the first ``text`` columns left-aligned, the numbers right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if i < text else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w + 2) if i < text else "-" * (w + 1) + ":" for i, w in enumerate(widths)]
    return [line(headers), "|" + "|".join(rule) + "|", *(line(row) for row in rows)]


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _data_rows(runs: Sequence[DatabaseRun]) -> list[list[str]]:
    return [
        [
            run.database, run.version, f"{run.target.total_rows:,}",
            f"{run.target.tenant_rows:,}", f"{run.target.window_rows:,}",
            f"{run.load.schema_s:.1f}", f"{run.load.insert_s:.1f}",
            f"{run.target.total_rows / run.load.insert_s:,.0f}", f"{run.load.analyze_s:.1f}",
        ]
        for run in runs
    ]  # fmt: skip


def _latency_rows(runs: Sequence[DatabaseRun]) -> list[list[str]]:
    return [
        [
            run.database, result.case.label, str(result.api.n),
            _ms(result.api.median_ms), _ms(result.api.p99_ms),
            _ms(result.raw.median_ms), _ms(result.raw.p99_ms), f"{result.ratio:.1f}x",
        ]
        for run in runs
        for result in run.results
    ]  # fmt: skip


def render(dataset: Dataset, runs: Sequence[DatabaseRun], plan: Plan) -> str:
    tz = zone(TIMEZONE)
    window = (
        f"{format_epoch(dataset.window.start, tz)} .. {format_epoch(dataset.window.end, tz)} "
        f"({TIMEZONE})"
    )
    targets = {(run.target.appkey, run.target.voice_group) for run in runs}
    lines = [
        f"{len(dataset.cdrs):,} CDRs, {len(dataset.appkeys)} apps, generated and validated "
        f"in {dataset.seconds:.1f} s",
        f"queried: appkey/voiceType {sorted(targets)}, window {window}",
        "",
        *_table(
            ["database", "server", "total rows", "tenant rows", "window rows",
             "schema+apps s", "insert s", "rows/s", "analyze s"],
            _data_rows(runs),
            text=2,
        ),
        "",
        *_table(
            ["database", "query", "runs", "API median ms", "API p99 ms",
             "raw SQL median ms", "raw SQL p99 ms", "API/raw"],
            _latency_rows(runs),
            text=2,
        ),
        "",
        f"runs: timed pairs (at most {plan.runs}, {plan.budget_s:g} s budget per case) after "
        f"{plan.warmup} warm-up pairs; p99 is nearest-rank (the maximum under 100 runs); "
        "API/raw is the ratio of medians.",
    ]  # fmt: skip
    return "\n".join(lines)


def _stats(stats: Stats) -> dict[str, Any]:
    return {
        "n": stats.n,
        "median_ms": round(stats.median_ms, 3),
        "p99_ms": round(stats.p99_ms, 3),
        "samples_ms": [round(sample, 3) for sample in stats.samples_ms],
    }


def _result(result: CaseResult) -> dict[str, Any]:
    return {
        "query": result.case.label,
        "page": result.case.page,
        "page_size": result.case.page_size,
        "api": _stats(result.api),
        "raw_sql": _stats(result.raw),
        "api_over_raw": round(result.ratio, 3),
    }


def to_json(
    dataset: Dataset, runs: Sequence[DatabaseRun], plan: Plan, command: Sequence[str]
) -> dict[str, Any]:
    return {
        "command": list(command),
        "count": len(dataset.cdrs),
        "apps": len(dataset.appkeys),
        "generated_s": round(dataset.seconds, 2),
        "plan": asdict(plan),
        "window": {**asdict(dataset.window), "timezone": TIMEZONE},
        "databases": [
            {
                "database": run.database,
                "version": run.version,
                "load_s": asdict(run.load),
                "target": asdict(run.target),
                "results": [_result(result) for result in run.results],
            }
            for run in runs
        ],
    }
