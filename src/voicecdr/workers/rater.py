"""The rater: prices pending CDRs in batches, and re-rates periods after a plan change."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..errors import DatabaseUnavailable
from ..gcpolicy import rare_collections
from ..models import App, Language, UnratedCdr
from ..money import MAX_NANOS
from ..rating import (
    NO_PLAN,
    Decision,
    Priced,
    RatePlan,
    decide,
    no_rate,
    size_and_cost,
    too_costly,
)
from ..receipts import new_webhook_id, new_webhook_ids
from ..storage import Database, NewReceipt, RatedBatch, RatedRow, RatingStore
from .turns import Unreachable, rotated

log = logging.getLogger("voicecdr.rater")

BATCH_SIZE = 5000

# What a receipt's body is rendered in: the app's timezone and language (as stored).
ReceiptForm = tuple[str, str]


class Rater:
    """Prices unrated CDRs with each app's newest plan; records a receipt for every CDR
    that becomes final when its app has a callback URL."""

    def __init__(
        self, db: Database, *, batch_size: int = BATCH_SIZE, clock: Callable[[], float] = time.time
    ) -> None:
        self._ratings = RatingStore(db)
        self._batch_size = batch_size
        self._clock = clock
        self._plans: dict[int, RatePlan] = {}  # by plan id: plans never change once stored
        # On Citus a batch is one app's, so that each is routed to the node holding the
        # app: a node down stops only its own apps (docs/scaling.md).
        self._per_app = db.citus
        self._apps: list[int] = []  # every app, in the order of the next pass (per app)
        self.unreachable = Unreachable(log, "rate the CDRs")

    def _current(self) -> tuple[dict[int, RatePlan], dict[int, ReceiptForm]]:
        """Each app's newest plan, and the receipt form (timezone, language) of each app
        with a callback URL."""
        plans: dict[int, RatePlan] = {}
        forms: dict[int, ReceiptForm] = {}
        apps = self._ratings.rater_apps()
        if self._per_app:
            self._apps = rotated(self._apps, [app[0] for app in apps])
        for app_id, plan_id, callback_url, timezone, language in apps:
            if plan_id is not None:
                plan = self._plans.get(plan_id)
                if plan is None:
                    plan = self._plans[plan_id] = self._ratings.load_plan(plan_id)
                plans[app_id] = plan
            if callback_url:
                forms[app_id] = (timezone, str(Language(language)))
        return plans, forms

    def run_once(self) -> tuple[int, int]:
        """One batch: returns (priced, left pending with a reason: no rate, or a cost too
        large to store)."""
        plans, forms = self._current()
        now = int(self._clock())

        def price(rows: list[UnratedCdr]) -> RatedBatch:
            return price_batch(rows, plans, forms, now)

        if not self._per_app:
            return self._ratings.rate_batch(self._batch_size, price)
        return self._each_app(price)

    def _each_app(self, price: Callable[[list[UnratedCdr]], RatedBatch]) -> tuple[int, int]:
        """A batch of every app in turn (a pass: fair, one busy app waits its turn like
        the others); an app whose node is unreachable is skipped for this pass, the fault
        logged once until the app is rated again."""
        priced = unpriced = 0
        for app_id in self.unreachable.worth_trying(self._apps, self._ratings.apps_waiting):
            try:
                done, left = self._ratings.rate_batch(self._batch_size, price, app_id=app_id)
            except DatabaseUnavailable as exc:
                self.unreachable.skipped(app_id, exc)
                continue
            self.unreachable.done(app_id)
            priced, unpriced = priced + done, unpriced + left
        return priced, unpriced

    def drain(self) -> tuple[int, int]:
        """Price everything pending now; returns the totals. On Citus, an app whose node
        is unreachable is skipped while the others are priced, then its fault raised."""
        priced = unpriced = 0
        with rare_collections():
            while True:
                done, left = self.run_once()
                priced, unpriced = priced + done, unpriced + left
                if done + left == 0:
                    break
        for fault in self.unreachable.faults.values():
            raise fault
        return priced, unpriced

    def lag(self) -> float:
        return self._ratings.lag(self._clock())


def price_batch(
    rows: list[UnratedCdr],
    plans: dict[int, RatePlan],
    forms: dict[int, ReceiptForm],
    now: int,
) -> RatedBatch:
    """What :func:`~voicecdr.rating.decide` and :func:`receipt_for` make of each CDR, as
    rows to store: one tight loop, since it runs for every CDR (tens of thousands a
    second) and per-CDR objects cost more than the pricing itself. A receipt row holds
    what its body is made of, not the body: the sender renders it (storage/outbox.py)."""
    batch = RatedBatch()
    priced, unpriced, receipts = batch.priced, batch.unpriced, batch.receipts
    # A stream of ordered ids per app, so that an app's ids say nothing of other apps'.
    webhook_ids: dict[int, Iterator[str]] = {}
    retry_at = float(now)
    most = MAX_NANOS
    # The last four columns are the rollups' (answered_at, hangup cause, disposition,
    # region): named, since a starred target builds a list per CDR.
    for cdr_id, app_id, placed, service, phone, country_code, second, connected, _, _, _, _ in rows:
        plan = plans.get(app_id)
        if plan is None:
            unpriced.append((NO_PLAN, cdr_id, placed))
            continue
        number = country_code + phone
        rate = plan.find(service, number)
        if rate is None:
            unpriced.append((no_rate(plan, service, number), cdr_id, placed))
            continue
        size, cost = size_and_cost(rate, connected=connected, second=second)
        if cost > most:
            unpriced.append((too_costly(plan, rate, service, second, cost), cdr_id, placed))
            continue
        cycle, unit, basic = rate.cycle, rate.unit_price_nanos, rate.basic_price_nanos
        priced.append((cycle, size, unit, basic, cost, plan.id, now, rate.prefix, cdr_id, placed))
        form = forms.get(app_id)
        if form is not None:
            ids = webhook_ids.get(app_id)
            if ids is None:
                ids = webhook_ids[app_id] = new_webhook_ids(now)
            timezone, language = form
            receipts.append(
                (
                    app_id,
                    cdr_id,
                    placed,
                    next(ids),
                    cycle,
                    size,
                    unit,
                    basic,
                    timezone,
                    language,
                    retry_at,
                    now,
                )
            )
    return batch


def receipt_for(app: App, cdr: UnratedCdr, decision: Priced) -> NewReceipt | None:
    if not app.callback_url:
        return None
    cdr_id, _, placed, *_ = cdr
    return NewReceipt(
        app.id,
        cdr_id,
        placed,
        new_webhook_id(),
        decision.charge,
        app.timezone,
        app.language,
    )


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
    db: Database,
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
    ratings = RatingStore(db)
    plan = ratings.current_plan(app.id)
    report = RerateReport(dry_run=dry_run)
    for batch in ratings.window(app.id, start, end, chunk=chunk):
        changes: list[tuple[RatedRow, Decision]] = []
        for rated in batch:
            report.records += 1
            before = rated.charged
            decision = decide(plan, rated.cdr)
            after = decision.charge if isinstance(decision, Priced) else None
            report.cost_before_nanos += before.cost_nanos if before else 0
            report.cost_after_nanos += after.cost_nanos if after else 0
            if before != after:
                changes.append((rated, decision))
                if len(report.samples) < 20:
                    report.samples.append(
                        {
                            "id": rated.cdr[0],
                            "cost_before_nanos": before.cost_nanos if before else None,
                            "cost_after_nanos": after.cost_nanos if after else None,
                        }
                    )
        report.changed += len(changes)
        report.newly_final += sum(
            1 for r, d in changes if isinstance(d, Priced) and r.charged is None
        )
        report.newly_pending += sum(1 for _, d in changes if not isinstance(d, Priced))

        def wants_receipt(rated: RatedRow, decision: Decision) -> bool:
            newly_final = rated.charged is None
            return (
                bool(app.callback_url)
                and isinstance(decision, Priced)
                and (newly_final or resend_receipts)
            )

        if dry_run:
            report.receipts += sum(1 for r, d in changes if wants_receipt(r, d))
            continue
        if not changes:
            continue

        def receipts(rated: RatedRow, decision: Priced) -> NewReceipt | None:
            if not wants_receipt(rated, decision):
                return None
            report.receipts += 1
            return receipt_for(app, rated.cdr, decision)

        written = ratings.apply_rerate(changes, receipts, now=int(clock()))
        if written != len(changes):
            log.warning(
                "re-rate skipped CDRs changed meanwhile", extra={"skipped": len(changes) - written}
            )
    return report
