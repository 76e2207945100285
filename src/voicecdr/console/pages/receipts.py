"""Receipts: the app's pending, retrying and dead counts, its dead receipts (paged) with
their last error, and replaying one or all of them behind a confirmation page.

Replays go through ``Outbox.replay`` (what ``voicecdr receipts replay`` runs), always
limited to the view's app and to dead receipts: an id of another app's receipt, or of
one not dead, replays nothing and answers 404.
"""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ...models import ReceiptStatus
from ...storage import Outbox, ReceiptInfo
from ..web import PREFIX, SECURITY_HEADERS, Console, Refused, View, page

PAGE_SIZE = 20


def routes(console: Console) -> list[BaseRoute]:
    outbox = Outbox(console.db)
    wrap = page(console)

    async def receipts(request: Request) -> Response:
        view = await console.view(request)
        number = max(_whole(request.query_params.get("page")) or 1, 1)
        counts, dead = await run_in_threadpool(_listing, outbox, view, number)
        return console.render(
            request,
            "receipts.html",
            {
                "counts": counts,
                "dead": [_shown(console, view, x) for x in dead[:PAGE_SIZE]],
                "page": number,
                "more": len(dead) > PAGE_SIZE,
                "replayed": _whole(request.query_params.get("replayed")),
                "zone_name": view.app.timezone,
            },
            view=view,
        )

    async def confirm(request: Request) -> Response:
        """The confirmation step (GET): what would be replayed, and the form that does it."""
        view = await console.view(request)
        one, counts = None, None
        if "id" in request.query_params:
            wanted = _whole(request.query_params["id"])
            one = await run_in_threadpool(_dead_one, outbox, view, wanted)
        else:
            counts = await run_in_threadpool(outbox.open_counts, view.app.id)
            if counts["dead"] == 0:
                raise Refused(404, "receipts.none_dead")
        return console.render(
            request,
            "receipts_confirm.html",
            {
                "one": None if one is None else _shown(console, view, one),
                "counts": counts,
                "zone_name": view.app.timezone,
            },
            view=view,
        )

    async def replay(request: Request) -> Response:
        view, form = await console.posted(request)
        wanted = form.get("id")
        # An id that is no number is no receipt: it matches nothing, and the answer is 404.
        ids = () if wanted is None else (_whole(str(wanted)) or 0,)
        count = await run_in_threadpool(
            lambda: outbox.replay(now=time.time(), ids=ids, app_id=view.app.id, dead_only=True)
        )
        if ids and count == 0:
            raise Refused(404, "receipts.not_dead")
        where = f"{PREFIX}/receipts?replayed={count}"
        if view.is_operator:
            where += f"&app={view.app.appkey}"
        return RedirectResponse(where, status_code=303, headers=SECURITY_HEADERS)

    return [
        Route("/receipts", wrap(receipts), methods=["GET"]),
        Route("/receipts/replay", wrap(confirm), methods=["GET"]),
        Route("/receipts/replay", wrap(replay), methods=["POST"]),
    ]


def _listing(outbox: Outbox, view: View, number: int) -> tuple[dict[str, int], list[ReceiptInfo]]:
    counts = outbox.open_counts(view.app.id)
    dead = outbox.list(
        status=ReceiptStatus.DEAD,
        app_id=view.app.id,
        limit=PAGE_SIZE + 1,  # one more: is there a next page?
        offset=(number - 1) * PAGE_SIZE,
    )
    return counts, dead


def _dead_one(outbox: Outbox, view: View, receipt_id: int | None) -> ReceiptInfo:
    found = []
    if receipt_id is not None:
        found = outbox.list(
            status=ReceiptStatus.DEAD, app_id=view.app.id, ids=(receipt_id,), limit=1
        )
    if not found:
        raise Refused(404, "receipts.not_dead")
    return found[0]


def _shown(console: Console, view: View, x: ReceiptInfo) -> dict[str, object]:
    return {
        "id": x.id,
        "cdr_id": x.cdr_id,
        "webhook_id": x.webhook_id,
        "attempts": x.attempts,
        "created": console.local_time(x.created_at, view.app, "%Y-%m-%d %H:%M:%S"),
        "last_status": x.last_status,
        "last_error": x.last_error or "",
    }


def _whole(text: str | None) -> int | None:
    """A whole number from a URL or form (one that fits a BIGINT), else None."""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)
