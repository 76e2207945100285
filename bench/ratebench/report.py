"""The printed tables and the JSON record of one ``rating_receipts.py`` run."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from querybench.report import _table

from .delivery import Delivered, Scenario
from .rating import BATCH_SIZE, Timed


def _median(rates: Sequence[float]) -> float:
    return statistics.median(rates)


@dataclass
class RatingResult:
    database: str
    version: str
    receipts: bool  # the apps have a callback URL, so every CDR gets a receipt
    cdrs: int
    template_s: float
    product: list[Timed] = field(default_factory=list)
    raw: dict[str, list[Timed]] = field(default_factory=dict)

    @property
    def product_rate(self) -> float:
        return _median([t.rate for t in self.product])

    @property
    def baseline(self) -> tuple[str, float]:
        """The fastest raw method and its median rate."""
        rates = {method: _median([t.rate for t in runs]) for method, runs in self.raw.items()}
        method = max(rates, key=rates.__getitem__)
        return method, rates[method]


@dataclass
class DeliveryResult:
    database: str
    scenario: Scenario
    receipts: int
    product: list[Delivered] = field(default_factory=list)
    bare: list[Delivered] = field(default_factory=list)

    @property
    def product_rate(self) -> float:
        return _median([d.rate for d in self.product])

    @property
    def bare_rate(self) -> float:
        return _median([d.rate for d in self.bare])


def _rating_rows(results: Sequence[RatingResult]) -> list[list[str]]:
    rows = []
    for r in results:
        method, raw_rate = r.baseline
        rows.append(
            [
                r.database, "yes" if r.receipts else "no", f"{r.cdrs:,}", str(len(r.product)),
                f"{_median([t.seconds for t in r.product]):.2f}", f"{r.product_rate:,.0f}",
                method, f"{raw_rate:,.0f}", f"{raw_rate / r.product_rate:.1f}x",
            ]
        )  # fmt: skip
    return rows


def _delivery_rows(results: Sequence[DeliveryResult]) -> list[list[str]]:
    return [
        [
            r.database, r.scenario.label, f"{r.receipts:,}", str(len(r.product)),
            f"{r.product_rate:,.0f}", f"{r.bare_rate:,.0f}",
            f"{r.bare_rate / r.product_rate:.1f}x",
        ]
        for r in results
    ]  # fmt: skip


def render(
    rating: Sequence[RatingResult], delivery: Sequence[DeliveryResult], generated_s: float
) -> str:
    lines = [
        f"Rating: Rater(db).drain(), batch {BATCH_SIZE:,}, demo.DEMO_PLAN, 4 apps; data "
        f"generated and validated in {generated_s:.1f} s",
        "",
        *_table(
            ["database", "receipts", "CDRs", "runs", "product s", "product CDRs/s",
             "raw baseline", "raw CDRs/s", "raw/product"],
            _rating_rows(rating),
            text=3,
        ),
        "",
        "Receipt delivery to a uvicorn receiver on 127.0.0.1 (another process), concurrency 64",
        "",
        *_table(
            ["database", "scenario", "receipts", "runs", "Sender receipts/s",
             "bare httpx receipts/s", "bare/Sender"],
            _delivery_rows(delivery),
            text=2,
        ),
        "",
        "Rates are medians over runs, each run on a fresh copy of the same database. "
        "raw/product and bare/Sender: how many times faster the baseline is.",
    ]  # fmt: skip
    return "\n".join(lines)


def _timed(t: Timed) -> dict[str, Any]:
    return {"method": t.method, "cdrs": t.cdrs, "receipts": t.receipts,
            "seconds": round(t.seconds, 4), "cdrs_per_s": round(t.rate, 1)}  # fmt: skip


def _delivered(d: Delivered) -> dict[str, Any]:
    return {"method": d.method, "receipts": d.receipts, "seconds": round(d.seconds, 4),
            "receipts_per_s": round(d.rate, 1)}  # fmt: skip


def to_json(
    rating: Sequence[RatingResult],
    delivery: Sequence[DeliveryResult],
    command: Sequence[str],
    generated_s: float,
) -> dict[str, Any]:
    return {
        "command": list(command),
        "batch_size": BATCH_SIZE,
        "generated_s": round(generated_s, 2),
        "rating": [
            {
                "database": r.database,
                "version": r.version,
                "receipts": r.receipts,
                "cdrs": r.cdrs,
                "template_s": round(r.template_s, 2),
                "product_cdrs_per_s": round(r.product_rate, 1),
                "baseline": {"method": r.baseline[0], "cdrs_per_s": round(r.baseline[1], 1)},
                "product": [_timed(t) for t in r.product],
                "raw": {method: [_timed(t) for t in runs] for method, runs in r.raw.items()},
            }
            for r in rating
        ],
        "delivery": [
            {
                "database": r.database,
                "scenario": r.scenario.label,
                "apps": r.scenario.apps,
                "concurrency": r.scenario.concurrency,
                "per_app": r.scenario.per_app,
                "receipts": r.receipts,
                "sender_receipts_per_s": round(r.product_rate, 1),
                "bare_receipts_per_s": round(r.bare_rate, 1),
                "sender": [_delivered(d) for d in r.product],
                "bare": [_delivered(d) for d in r.bare],
            }
            for r in delivery
        ],
    }
