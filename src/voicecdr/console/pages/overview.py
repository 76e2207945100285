"""The overview: today against yesterday, and for a chosen window calls per hour, ASR
and cost by country, and hangup causes. Every figure comes from the report
``GET /v1/analytics`` answers (``ReportReader`` and ``analytics.figures``), asked
in-process with the same parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...analytics import AnalyticsError, Calendar, parse_query, to_json
from ...models import App
from ...timefmt import zone
from ..web import Console, page

LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> reads and writes


@dataclass(frozen=True, slots=True)
class Overview:
    """The page's figures: ``/v1/analytics`` bodies (``to_json``) for each part."""

    today: dict[str, Any]
    yesterday: dict[str, Any]
    hourly: dict[str, Any]
    countries: dict[str, Any]
    causes: dict[str, Any]


def routes(console: Console) -> list[BaseRoute]:
    async def overview(request: Request) -> Response:
        view = await console.view(request)
        tz = zone(view.app.timezone)
        now = datetime.fromtimestamp(console.clock(), tz)
        midnight = datetime.fromtimestamp(Calendar(tz).midnight(now.year, now.month, now.day), tz)
        start = request.query_params.get("from") or midnight.strftime(LOCAL_MINUTE)
        end = request.query_params.get("to") or (midnight + timedelta(days=1)).strftime(
            LOCAL_MINUTE
        )
        try:
            figures_ = await run_in_threadpool(
                _overview, console, view.app, now, midnight, start, end
            )
            error = None
        except AnalyticsError as exc:
            figures_, error = None, str(exc)
        return console.render(
            request,
            "overview.html",
            {
                "overview": figures_,
                "window": {"from": start, "to": end},
                "error": error,
                "zone_name": view.app.timezone,
                "now": now.strftime("%Y-%m-%d %H:%M"),
            },
            view=view,
            status=200 if error is None else 400,
        )

    return [
        Route("/overview", page(console)(overview), methods=["GET"]),
    ]


def window_params(start: str, end: str, group_by: str = "") -> dict[str, str]:
    """The ``/v1/analytics`` parameters of one part of the page."""
    params = {"from": start, "to": end}
    if group_by:
        params["group_by"] = group_by
    return params


def _overview(
    console: Console, app: App, now: datetime, midnight: datetime, start: str, end: str
) -> Overview:
    tz = zone(app.timezone)
    yesterday = midnight - timedelta(days=1)
    same_time = yesterday + (now - midnight)

    def report(params: dict[str, str]) -> dict[str, Any]:
        return to_json(console.reports.report(app, parse_query(params, tz)))

    return Overview(
        today=report(window_params(_iso(midnight), _iso(now))),
        yesterday=report(window_params(_iso(yesterday), _iso(same_time))),
        hourly=report(window_params(start, end, "hour")),
        countries=report(window_params(start, end, "country_code")),
        causes=report(window_params(start, end, "hangup_cause")),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
