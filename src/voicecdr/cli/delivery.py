"""``receipts``: listing receipts and sending them again."""

from __future__ import annotations

import time

import click

from ..cli_numbers import whole
from ._base import Context, find_app, json_flag, main, pass_ctx, period, table


@main.group("receipts")
def receipts_group() -> None:
    """Receipts pushed to apps' callback URLs."""


@receipts_group.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "failed", "delivered", "dead"]),
    help="failed: pending receipts that have failed at least once.",
)
@click.option("--app", "appkey", help="Only this app's receipts.")
@click.option("--limit", default=50, show_default=True, type=whole(1, 100_000))
@json_flag
@pass_ctx
def receipts_list(obj: Context, /, status: str | None, appkey: str | None, limit: int) -> None:
    """List receipts, newest first."""
    from ..models import ReceiptStatus
    from ..storage import Outbox
    from ..timefmt import epoch_to_iso

    with obj.database() as db:
        app_id = find_app(db, appkey).id if appkey else None
        chosen = (
            ReceiptStatus[status.upper()] if status in ("pending", "delivered", "dead") else None
        )
        rows = Outbox(db).list(
            status=chosen, failed_only=status == "failed", app_id=app_id, limit=limit
        )
    data = [
        {
            "id": x.id,
            "appkey": x.appkey,
            "cdr_id": x.cdr_id,
            "webhook_id": x.webhook_id,
            "status": x.status.wire_name,
            "attempts": x.attempts,
            "next_attempt_at": epoch_to_iso(int(x.next_attempt_at))
            if x.status is ReceiptStatus.PENDING
            else None,
            "created_at": epoch_to_iso(x.created_at),
            "delivered_at": epoch_to_iso(x.delivered_at) if x.delivered_at else None,
            "last_status": x.last_status,
            "last_error": x.last_error,
        }
        for x in rows
    ]
    obj.emit(data, lambda rs: table(rs, _RECEIPT_COLUMNS, "no receipts"))


_RECEIPT_COLUMNS = {
    "id": "ID",
    "appkey": "APPKEY",
    "cdr_id": "CDR",
    "status": "STATUS",
    "attempts": "ATTEMPTS",
    "next_attempt_at": "NEXT ATTEMPT",
    "last_error": "LAST ERROR",
}


@receipts_group.command("replay")
@click.option("--id", "ids", type=whole(), multiple=True, help="A receipt id (repeatable).")
@click.option("--app", "appkey", help="Receipts of this app (with --from/--to: created then).")
@click.option("--from", "start", help="With --app: created at or after.")
@click.option("--to", "end", help="With --app: created at or before.")
@click.option("--dead", is_flag=True, help="Only dead receipts (alone: every dead receipt).")
@click.option(
    "--failed",
    is_flag=True,
    help="Only receipts waiting to retry after a failure (alone: all of them, now).",
)
@json_flag
@pass_ctx
def receipts_replay(
    obj: Context,
    /,
    ids: tuple[int, ...],
    appkey: str | None,
    start: str | None,
    end: str | None,
    dead: bool,
    failed: bool,
) -> None:
    """Send receipts again, from the start of the retry schedule, with their webhook-ids."""
    from ..storage import Outbox

    if not (ids or appkey or dead or failed):
        raise click.UsageError(
            "say which receipts: --id, --app (with --from/--to), --dead or --failed"
        )
    if (start or end) and not appkey:
        raise click.UsageError("--from/--to need --app")
    with obj.database() as db:
        app = find_app(db, appkey) if appkey else None
        begin = finish = None
        if app is not None and (start or end):
            begin, finish = period(
                app, start or "1970-01-01T00:00:00Z", end or "9999-12-31T23:59:59Z"
            )
        count = Outbox(db).replay(
            now=time.time(),
            ids=ids,
            app_id=app.id if app else None,
            created_from=begin,
            created_to=finish,
            dead_only=dead,
            failed_only=failed,
        )
    obj.emit({"replayed": count}, lambda d: f"queued {d['replayed']} receipts again")
