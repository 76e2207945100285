"""Calls: the search (a GET form, so the URL keeps it), its pages with the exact total,
its CSV download (streamed), and one call's page (every field, the price breakdown,
the receipt's delivery record). Only the view's app is ever read: another app's call
id is a 404, as a missing one is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ... import money
from ...models import App, Service, VoiceGroup
from ...rows import EXTENDED_FIELDS, GROUP_CALL_FIELDS, VERIFICATION_FIELDS, RowRenderer
from ...storage import ROW_FIELDS, CallSearch, Found, Search, read_call, window_rows
from ...timefmt import zone
from ..searchform import Form, read_form
from ..web import SECURITY_HEADERS, Console, Refused, View, page

CSV_CHUNK = 1000  # rows rendered and sent at a time: the download's memory
PAGE_LINKS = 2  # page links either side of the current one
MAX_ID = 2**63 - 1  # ids are BIGINT
_COL = {name: i for i, name in enumerate(ROW_FIELDS)}


def csv_fields(group: VoiceGroup) -> tuple[str, ...]:
    """The download's columns: ``voicecdr export --extended``'s, for the voice type."""
    base = GROUP_CALL_FIELDS if group is VoiceGroup.GROUP_CALL else VERIFICATION_FIELDS
    return base + EXTENDED_FIELDS


def routes(console: Console) -> list[BaseRoute]:
    search_pages = CallSearch(console.db)

    def form_of(request: Request, view: View) -> Form:
        return read_form(
            request.query_params,
            view.app.id,
            zone(view.app.timezone),
            console.clock(),
            console.settings.max_span_hours,
        )

    async def calls(request: Request) -> Response:
        view = await console.view(request)
        form = form_of(request, view)
        found = None
        if form.search is not None:
            found = await run_in_threadpool(
                search_pages.page, form.search, (form.page - 1) * form.size, form.size
            )
        return _render_list(console, request, view, form, found)

    async def download(request: Request) -> Response:
        view = await console.view(request)
        form = form_of(request, view)
        if form.search is None:
            return _render_list(console, request, view, form, None)
        headers = {
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{csv_name(view.app, form.search)}"',
        }
        return StreamingResponse(
            csv_chunks(console, view.app, form.search),
            media_type="text/csv; charset=utf-8",
            headers=headers,
        )

    async def call(request: Request) -> Response:
        view = await console.view(request)
        cdr_id: int = request.path_params["cdr_id"]
        found = None
        if cdr_id <= MAX_ID:  # a larger one is no id: the database would refuse it
            found = await run_in_threadpool(read_call, console.db, view.app.id, cdr_id)
        if found is None:
            raise Refused(404, "error.not_found")
        tz = zone(view.app.timezone)

        def local(epoch: int | None) -> str:
            return (
                ""
                if epoch is None
                else console.local_time(int(epoch), view.app, "%Y-%m-%d %H:%M:%S")
            )

        cdr = found.columns
        return console.render(
            request,
            "call.html",
            {
                "cdr": cdr,
                "rate": found.rate,
                "receipts": found.receipts,
                "service": Service(cdr["service"]).wire_name,
                "local": local,
                "money": money.text,
                "zone_name": tz.key,
                "back": request.query_params.get("back", ""),
            },
            view=view,
        )

    return [
        Route("/calls", page(console)(calls), methods=["GET"]),
        Route("/calls/export.csv", page(console)(download), methods=["GET"]),
        Route("/calls/{cdr_id:int}", page(console)(call), methods=["GET"]),
    ]


def _render_list(
    console: Console, request: Request, view: View, form: Form, found: Found | None
) -> Response:
    rows = []
    if found is not None:
        for row in found.rows:
            rows.append(
                {
                    "id": row[_COL["id"]],
                    "time": console.local_time(
                        row[_COL["placed_at"]], view.app, "%Y-%m-%d %H:%M:%S"
                    ),
                    "phone": row[_COL["phone"]],
                    "country_code": row[_COL["country_code"]],
                    "service": Service(row[_COL["service"]]).wire_name,
                    "messageid": row[_COL["messageid"]],
                    "connected": bool(row[_COL["connected"]]),
                    "second": row[_COL["billsec"]],
                    "hangup_cause": row[_COL["hangup_cause"]],
                    "final": bool(row[_COL["cost_status"]]),
                    "cost": money.text(row[_COL["cost_nanos"]]),
                }
            )
    pages = 0 if found is None else max(1, -(-found.total // form.size))
    return console.render(
        request,
        "calls.html",
        {
            "form": form,
            "errors": form.errors,
            "found": found,
            "rows": rows,
            "page": form.page,
            "pages": pages,
            "links": page_links(form.page, pages),
            "first_row": (form.page - 1) * form.size + 1,
            "zone_name": view.app.timezone,
            "query": form.query(),
            "here": form.query(page=form.page),  # where a call's page links back to
        },
        view=view,
        status=400 if form.errors else 200,
    )


def page_links(current: int, pages: int) -> list[int | None]:
    """The page numbers to link: the first, the last, and ``PAGE_LINKS`` either side of
    the current one (the last, past the end); None where numbers are left out."""
    current = min(current, pages)
    shown = {1, pages, *range(current - PAGE_LINKS, current + PAGE_LINKS + 1)}
    numbers = sorted(n for n in shown if 1 <= n <= pages)
    out: list[int | None] = []
    for n in numbers:
        if out and out[-1] is not None and n - out[-1] > 1:
            out.append(None)
        out.append(n)
    return out


def csv_name(app: App, search: Search) -> str:
    """``calls-APPKEY-FROM-TO.csv``, the window's bounds in the app's local time."""
    tz = zone(app.timezone)
    start, end = (
        datetime.fromtimestamp(epoch, tz).strftime("%Y%m%dT%H%M")
        for epoch in (search.start, search.end + 1)
    )
    appkey = re.sub(r"[^A-Za-z0-9._-]", "_", app.appkey)
    return f"calls-{appkey}-{start}-{end}.csv"


def csv_chunks(console: Console, app: App, search: Search) -> Iterator[str]:
    """The search's calls as CSV, read and rendered ``CSV_CHUNK`` rows at a time (the
    listing reads keyset pages); Starlette runs this in a thread."""
    renderer = RowRenderer(search.group, zone(app.timezone), app.language, extended=True)
    fields = csv_fields(search.group)
    rows = window_rows(
        console.db,
        app.id,
        search.start,
        search.end,
        group=search.group,
        where=search.conditions(),
        page_rows=CSV_CHUNK,
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    while True:
        chunk = list(islice(rows, CSV_CHUNK))
        for rendered in renderer.render_all(chunk):
            writer.writerow([_cell(rendered.get(name)) for name in fields])
        yield out.getvalue()
        if len(chunk) < CSV_CHUNK:
            return
        out.seek(0)
        out.truncate()


def _cell(value: Any) -> str:
    """A rendered value as ``voicecdr export`` writes it: exact prices, "" for none."""
    if value is None:
        return ""
    if isinstance(value, orjson.Fragment):
        return orjson.dumps(value).decode()
    return str(value)
