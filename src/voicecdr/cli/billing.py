"""Pricing: ``rates`` (plans), ``rate`` (price what is pending) and ``rerate``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..cli_numbers import whole
from ..errors import NotFound
from ._base import Context, find_app, json_flag, main, pass_ctx, period, table


@main.group("rates")
def rates_group() -> None:
    """Rate plans: what each app's calls cost."""


@rates_group.command("import")
@click.argument("appkey")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_flag
@pass_ctx
def rates_import(obj: Context, /, appkey: str, file: Path) -> None:
    """Make FILE.csv (service,prefix,cycle,unit_price,basic_price) the app's new plan.

    The whole file is checked first; any bad line is reported with its number and nothing
    is applied. CDRs that found no rate under the old plan are tried again.
    """
    from ..rating import PlanErrors, parse_plan_csv
    from ..storage import RatingStore

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file}: not UTF-8 text ({exc.reason})") from None
    try:
        rates = parse_plan_csv(text)
    except PlanErrors as exc:
        errors = exc.errors
        listed = (
            errors[0] if len(errors) == 1 else f"{len(errors)} bad lines:\n" + "\n".join(errors)
        )
        raise click.ClickException(f"{file}: nothing imported: {listed}") from None
    with obj.database() as db:
        app = find_app(db, appkey)
        info = RatingStore(db).import_plan(app.id, rates, source=file.name, now=int(time.time()))
    obj.emit(
        {"appkey": app.appkey, "version": info.version, "rates": info.rate_count},
        lambda d: f"{d['appkey']}: plan version {d['version']} with {d['rates']} rates",
    )


@rates_group.command("show")
@click.argument("appkey")
@click.option("--version", "version", type=whole(), help="A past version [default: the newest].")
@json_flag
@pass_ctx
def rates_show(obj: Context, /, appkey: str, version: int | None) -> None:
    """Print an app's rate plan."""
    from .. import money
    from ..storage import RatingStore

    with obj.database() as db:
        app = find_app(db, appkey)
        ratings = RatingStore(db)
        versions = {p.version: p for p in ratings.plans(app.id)}
        if not versions:
            raise NotFound(f"app {appkey!r} has no rate plan: use `voicecdr rates import`")
        chosen = versions.get(max(versions) if version is None else version)
        if chosen is None:
            raise NotFound(f"app {appkey!r} has no plan version {version}")
        plan = ratings.load_plan(chosen.id)
    rows = [
        {
            "service": "*" if r.service is None else r.service.wire_name,
            "prefix": r.prefix,
            "cycle": r.cycle,
            "unit_price": money.text(r.unit_price_nanos),
            "basic_price": money.text(r.basic_price_nanos),
        }
        for r in plan.rates
    ]
    data = {
        "appkey": appkey,
        "version": chosen.version,
        "source": chosen.source,
        "versions": sorted(versions),
        "rates": rows,
    }
    columns = {
        "service": "SERVICE",
        "prefix": "PREFIX",
        "cycle": "CYCLE/S",
        "unit_price": "UNIT PRICE",
        "basic_price": "BASIC PRICE",
    }
    obj.emit(
        data,
        lambda d: (
            f"plan version {d['version']} ({d['source']}):\n"
            + table([{**r, "prefix": r["prefix"] or "(any)"} for r in d["rates"]], columns, "")
        ),
    )


@rates_group.command("unpriced")
@click.argument("appkey")
@click.option("--limit", default=20, show_default=True, type=whole(0, 10_000))
@json_flag
@pass_ctx
def rates_unpriced(obj: Context, /, appkey: str, limit: int) -> None:
    """List CDRs that stay pending because no rate matches them (or their cost is too
    large to store), with the reason."""
    from ..models import Service
    from ..storage import RatingStore
    from ..timefmt import epoch_to_iso

    with obj.database() as db:
        total, rows = RatingStore(db).unpriced(find_app(db, appkey).id, limit=limit)
    data = {
        "total": total,
        "cdrs": [
            {
                "id": cdr_id,
                "time": epoch_to_iso(placed),
                "service": Service(service).wire_name,
                "number": country_code + phone,
                "reason": reason,
            }
            for (cdr_id, _, placed, service, phone, country_code, *_), reason in rows
        ],
    }
    columns = {
        "id": "ID",
        "time": "TIME",
        "service": "SERVICE",
        "number": "NUMBER",
        "reason": "REASON",
    }
    obj.emit(
        data,
        lambda d: (
            f"{d['total']} unpriced" + ("\n" + table(d["cdrs"], columns, "") if d["cdrs"] else "")
        ),
    )


@main.command("rate")
@json_flag
@pass_ctx
def rate_command(obj: Context) -> None:
    """Price every pending CDR now (with receipts for those that become final), then exit.

    A CDR that cannot be priced (no rate, or a cost too large to store) stays pending with
    its reason, listed by `rates unpriced`; the others are priced. Exits 0 unless the
    database fails (on Citus, after pricing the apps of the nodes that answer)."""
    from ..workers.rater import Rater

    with obj.database() as db:
        priced, unpriced = Rater(db, batch_size=obj.settings().rater_batch_size).drain()
    obj.emit(
        {"priced": priced, "unpriced": unpriced},
        lambda d: (
            f"priced {d['priced']}, left pending {d['unpriced']}"
            + (" (see `voicecdr rates unpriced APPKEY`)" if d["unpriced"] else "")
        ),
    )


@main.command("rerate")
@click.argument("appkey")
@click.option(
    "--from", "start", required=True, help="yyyy-MM-dd HH:mm:ss (app timezone) or ISO 8601."
)
@click.option("--to", "end", required=True, help="Inclusive; same forms as --from.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option(
    "--resend-receipts", is_flag=True, help="Send a new receipt for every CDR whose charge changed."
)
@json_flag
@pass_ctx
def rerate_command(
    obj: Context, /, appkey: str, start: str, end: str, dry_run: bool, resend_receipts: bool
) -> None:
    """Recompute an app's charges for calls placed in a period, with its newest plan."""
    from .. import money
    from ..workers.rater import rerate

    with obj.database() as db:
        app = find_app(db, appkey)
        begin, finish = period(app, start, end)
        report = rerate(db, app, begin, finish, dry_run=dry_run, resend_receipts=resend_receipts)
    data = {
        "dry_run": report.dry_run,
        "records": report.records,
        "changed": report.changed,
        "newly_final": report.newly_final,
        "newly_pending": report.newly_pending,
        "cost_before": money.text(report.cost_before_nanos),
        "cost_after": money.text(report.cost_after_nanos),
        "receipts": report.receipts,
        "samples": [
            {
                "id": s["id"],
                "cost_before": None
                if s["cost_before_nanos"] is None
                else money.text(int(str(s["cost_before_nanos"]))),
                "cost_after": None
                if s["cost_after_nanos"] is None
                else money.text(int(str(s["cost_after_nanos"]))),
            }
            for s in report.samples
        ],
    }
    obj.emit(
        data,
        lambda d: (
            f"{'would change' if d['dry_run'] else 'changed'} {d['changed']} of {d['records']} "
            f"records; cost {d['cost_before']} -> {d['cost_after']}"
        ),
    )
