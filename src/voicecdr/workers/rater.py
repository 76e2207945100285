"""The rater: prices pending CDRs in batches, and re-rates periods after a plan change."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..models import App, CdrRow
from ..rating import Decision, Priced, RatePlan, charged, decide
from ..receipts import form_body, new_webhook_id
from ..storage.outbox import NewReceipt
from ..storage.rating import RatedRow, RatingStore
from ..storage.store import Store

log = logging.getLogger("voicecdr.rater")

BATCH_SIZE = 5000


class Rater:
    """Prices unrated CDRs with each app's newest plan; records a receipt for every CDR
    that becomes final when its app has a callback URL."""

    def __init__(
        self, store: Store, *, batch_size: int = BATCH_SIZE, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._ratings = RatingStore(store)
        self._batch_size = batch_size
        self._clock = clock
        self._plans: dict[int, RatePlan] = {}  # by plan id: plans never change once stored

    def _current(self) -> tuple[dict[int, App], dict[int, RatePlan]]:
        apps = {app.id: app for app in self._store.list_apps()}
        plans = {}
        for app_id, plan_id in self._ratings.current_plan_ids().items():
            if plan_id not in self._plans:
                self._plans[plan_id] = self._ratings.load_plan(plan_id)
            plans[app_id] = self._plans[plan_id]
        return apps, plans

    def run_once(self) -> tuple[int, int]:
        """One batch: returns (priced, left pending for want of a rate)."""
        apps, plans = self._current()

        def price(rows: list[tuple[int, CdrRow]]) -> tuple[list[Decision], list[NewReceipt]]:
            decisions: list[Decision] = []
            receipts: list[NewReceipt] = []
            for app_id, row in rows:
                decision = decide(plans.get(app_id), row)
                decisions.append(decision)
                if isinstance(decision, Priced):
                    receipt = receipt_for(apps[app_id], row, decision)
                    if receipt is not None:
                        receipts.append(receipt)
            return decisions, receipts

        return self._ratings.rate_batch(self._batch_size, price, now=int(self._clock()))

    def drain(self) -> tuple[int, int]:
        """Price everything pending now; returns the totals."""
        priced = unpriced = 0
        while True:
            done, left = self.run_once()
            priced, unpriced = priced + done, unpriced + left
            if done + left == 0:
                return priced, unpriced

    def lag(self) -> float:
        return self._ratings.lag(self._clock())


def receipt_for(app: App, row: CdrRow, decision: Priced) -> NewReceipt | None:
    if not app.callback_url:
        return None
    return NewReceipt(app.id, row.id, new_webhook_id(), form_body(app, row, decision.charge))


@dataclass
class RerateReport:
    records: int = 0
    changed: int = 0
    newly_final: int = 0
    newly_pending: int = 0
    cost_before_nanos: int = 0
    cost_after_nanos: int = 0
    receipts: int = 0
    dry_run: bool = True
    samples: list[dict[str, object]] = field(default_factory=list)


def rerate(
    store: Store,
    app: App,
    start: int,
    end: int,
    *,
    dry_run: bool,
    resend_receipts: bool = False,
    chunk: int = 2000,
    clock: Callable[[], float] = time.time,
) -> RerateReport:
    """Recompute an app's charges for CDRs placed in [start, end] with its newest plan.

    Only money or status changes count: a CDR whose charge comes out the same keeps its
    old plan version. A CDR that becomes final gets its receipt; one whose charge changed
    gets a new receipt only with ``resend_receipts``.
    """
    ratings = RatingStore(store)
    plan = ratings.current_plan(app.id)
    report = RerateReport(dry_run=dry_run)
    for batch in ratings.window(app.id, start, end, chunk=chunk):
        changes: list[tuple[RatedRow, Decision]] = []
        for rated in batch:
            report.records += 1
            before = charged(rated.row)
            decision = decide(plan, rated.row)
            after = decision.charge if isinstance(decision, Priced) else None
            report.cost_before_nanos += before.cost_nanos if before else 0
            report.cost_after_nanos += after.cost_nanos if after else 0
            if before != after:
                changes.append((rated, decision))
                if len(report.samples) < 20:
                    report.samples.append(
                        {
                            "id": rated.row.id,
                            "cost_before_nanos": before.cost_nanos if before else None,
                            "cost_after_nanos": after.cost_nanos if after else None,
                        }
                    )
        report.changed += len(changes)
        report.newly_final += sum(
            1 for r, d in changes if isinstance(d, Priced) and charged(r.row) is None
        )
        report.newly_pending += sum(1 for _, d in changes if not isinstance(d, Priced))
        if dry_run or not changes:
            continue

        def receipts(rated: RatedRow, decision: Priced) -> NewReceipt | None:
            if charged(rated.row) is not None and not resend_receipts:
                return None
            report.receipts += 1 if app.callback_url else 0
            return receipt_for(app, rated.row, decision)

        written = ratings.apply_rerate(changes, receipts, now=int(clock()))
        if written != len(changes):
            log.warning(
                "re-rate skipped CDRs changed meanwhile", extra={"skipped": len(changes) - written}
            )
    return report
