"""Rate plan: the app's plan versions (the newest is current, as the rater prices with
it), one version's rates, and "what would this call cost": the call's fields checked by
ingest's rules (``canonical.priced_fields``), then priced by the rater's own
``rating.decide`` under the current plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ... import money
from ...ingest.canonical import RecordErrors, priced_fields
from ...models import Service
from ...rating import Priced, Rate, RatePlan, decide
from ...storage import PlanInfo, RatingStore
from ..web import Console, Refused, View, page

# The voice types' names in the catalog.
SERVICE_WORDS = {
    Service.GROUP_CALL: "service.group_call",
    Service.VERIFICATION: "service.verification",
    Service.NOTIFICATION: "service.notification",
}


@dataclass(frozen=True, slots=True)
class Quote:
    """The cost check's answer: the rate row that applies and the charge, or why none."""

    number: str
    second: int
    connected: bool
    rate: dict[str, str] | None = None
    size: int = 0
    cost: str = ""
    problem: str = ""  # a catalog key: no plan, no rate, too costly
    version: int = 0


def routes(console: Console) -> list[BaseRoute]:
    ratings = RatingStore(console.db)

    async def rates(request: Request) -> Response:
        view = await console.view(request)
        params = request.query_params
        asked = params.get("version")
        versions, plan = await run_in_threadpool(_plan, ratings, view, asked)
        check = {k: params.get(k, "") for k in ("service", "number", "country_code", "second")}
        # Unticked boxes are not sent: before any check, the box starts ticked.
        check["connected"] = "1" if params.get("connected") or not params.get("check") else ""
        quote, errors = None, []
        if params.get("check"):
            try:
                fields = priced_fields(
                    check["service"], check["number"], check["country_code"], check["second"]
                )
            except RecordErrors as exc:
                errors = exc.errors
            else:
                current = await run_in_threadpool(ratings.current_plan, view.app.id)
                quote = _quote(current, view, *fields, connected=bool(check["connected"]))
        return console.render(
            request,
            "rates.html",
            {
                "versions": [_version(console, view, p) for p in versions],
                "current": versions[-1].version if versions else None,
                "plan": plan,
                "rows": [_row(r) for r in plan.rates] if plan else [],
                "services": [(s.wire_name, SERVICE_WORDS[s]) for s in Service],
                "check": check,
                "quote": quote,
                "errors": errors,
            },
            view=view,
            status=400 if errors else 200,
        )

    return [Route("/rates", page(console)(rates), methods=["GET"])]


def _plan(
    ratings: RatingStore, view: View, asked: str | None
) -> tuple[list[PlanInfo], RatePlan | None]:
    versions = ratings.plans(view.app.id)
    if not versions:
        return versions, None
    by_version = {p.version: p for p in versions}
    chosen = versions[-1]
    if asked is not None:
        if not (asked.isascii() and asked.isdigit()) or int(asked) not in by_version:
            raise Refused(404, "rates.no_version", version=asked[:20])
        chosen = by_version[int(asked)]
    return versions, ratings.load_plan(chosen.id)


def _quote(
    plan: RatePlan | None,
    view: View,
    service: Service,
    phone: str,
    country_code: str,
    second: int,
    *,
    connected: bool,
) -> Quote:
    number = country_code + phone
    asked = Quote(f"+{number}", second, connected)
    if plan is None:
        return replace(asked, problem="rates.no_plan")
    # The stored CDR the rater would read: id, app, time, service, phone, country code,
    # second, connected, then what only the rollups read.
    cdr = (0, view.app.id, int(time.time()), int(service), phone, country_code, second)
    decision = decide(plan, (*cdr, int(connected), None, "", "", None))
    rate = plan.find(service, number)  # the row decide priced with (or none)
    shown = None if rate is None else _row(rate)
    if not isinstance(decision, Priced):
        problem = "rates.no_rate" if rate is None else "rates.too_costly"
        return replace(asked, rate=shown, problem=problem, version=plan.version)
    cost = money.text(decision.charge.cost_nanos)
    return replace(asked, rate=shown, size=decision.charge.size, cost=cost, version=plan.version)


def _row(rate: Rate) -> dict[str, str]:
    """A rate as ``voicecdr rates show`` prints it."""
    return {
        "service": "*" if rate.service is None else rate.service.wire_name,
        "prefix": rate.prefix,
        "cycle": str(rate.cycle),
        "unit_price": money.text(rate.unit_price_nanos),
        "basic_price": money.text(rate.basic_price_nanos),
    }


def _version(console: Console, view: View, p: PlanInfo) -> dict[str, object]:
    return {
        "version": p.version,
        "source": p.source,
        "rates": p.rate_count,
        "created": console.local_time(p.created_at, view.app),
    }
