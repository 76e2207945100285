"""The ``voicecdr`` command line: thin commands over the same services the API uses.

Results are JSON when ``--json`` is given or stdout is not a terminal, so scripts can read
them; on a terminal they are short human text. Errors go to stderr with exit status 1
(2 for usage errors).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
import orjson

from . import __version__, apps, demo, logs
from .config import Settings
from .errors import NotFound, ValidationError, VoiceCdrError
from .models import App
from .storage import migrate
from .storage.store import Store
from .timefmt import parse_cli_time, zone

_OPTION_NAMES = {"callback_url": "--callback-url", "rate_limit": "--rate-limit"}


class Context:
    def __init__(self, database_url: str | None, json_output: bool) -> None:
        self.database_url = database_url
        self.json_output = json_output

    def settings(self) -> Settings:
        try:
            return Settings.from_env(database_url=self.database_url)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise click.ClickException(f"configuration: {exc}") from None

    @contextmanager
    def store(self, *, current: bool = True, bulk: bool = False) -> Iterator[Store]:
        store = Store(self.settings().database_url, create=not current, bulk=bulk)
        try:
            if current:
                migrate.require_current(store)
            yield store
        finally:
            store.close()

    def emit(self, data: Any, human: Callable[[Any], str]) -> None:
        if self.json_output or not sys.stdout.isatty():
            click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        else:
            click.echo(human(data))


pass_ctx = click.make_pass_decorator(Context)


def _json_flag(f: Callable[..., Any]) -> Callable[..., Any]:
    def set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(Context).json_output = True

    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=set_json,
        help="Print the result as JSON (the default when stdout is not a terminal).",
    )(f)


class _Group(click.Group):
    # ``export`` is loaded when asked for: it brings httpx (and whatever httpx brings),
    # which every other command would otherwise import at start-up for nothing.
    _LAZY = "export"

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return sorted([*names, self._LAZY]) if ctx.parent is None else names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if ctx.parent is None and cmd_name == self._LAZY:
            from .cli_export import export_command

            return export_command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            option = _OPTION_NAMES.get(exc.field, f"--{exc.field.replace('_', '-')}")
            raise click.ClickException(f"{option}: {exc.message}") from None
        except VoiceCdrError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="voicecdr")
@click.option(
    "--database-url",
    metavar="URL",
    help="sqlite:///FILE or postgresql://…  [env VOICECDR_DATABASE_URL; default sqlite:///voicecdr.db]",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """voicecdr: voice call-detail records behind NXCloud's query API."""
    ctx.obj = Context(database_url, json_output=False)


# -- serve -------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes; rate limits are shared between them.",
)
@click.option(
    "--no-workers",
    is_flag=True,
    help="Serve the API only; run the rater and receipt sender with `voicecdr worker`.",
)
@pass_ctx
def serve(obj: Context, host: str, port: int, workers: int, no_workers: bool) -> None:
    """Run the HTTP API (production ASGI server) with the rater and receipt sender."""
    import uvicorn

    settings = obj.settings()
    logs.configure(settings.log_level)
    with obj.store():
        pass  # fail here, clearly, if the database is unreachable or behind
    # Worker processes read their settings from the environment, like the parent did.
    os.environ["VOICECDR_DATABASE_URL"] = settings.database_url
    if no_workers:
        os.environ["VOICECDR_SERVE_WORKERS"] = "false"
    metrics_dir = None
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # prometheus_client's convention for aggregating metrics over worker processes.
        metrics_dir = tempfile.mkdtemp(prefix="voicecdr-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "voicecdr.api:factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
            # Bounds on what one client can hold (docs/operations.md, "Resource limits"):
            # an idle keep-alive connection is closed after 5 s, the connections and
            # requests in flight per process are capped (more get a 503 at once), and a
            # request head is at most 16 KiB where uvicorn's h11 parser is in use. A body's
            # deadline is the app's (VOICECDR_BODY_TIMEOUT).
            timeout_keep_alive=5,
            limit_concurrency=settings.max_connections,
            h11_max_incomplete_event_size=16 * 1024,
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


# -- db ----------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@_json_flag
@pass_ctx
def db_upgrade(obj: Context) -> None:
    """Create or migrate the schema to this version's head (and, on PostgreSQL, make the
    coming days' partitions)."""
    ahead = obj.settings().partitions_ahead_days
    with obj.store(current=False) as store:
        before, after = migrate.upgrade(store)
        made = [] if store.partitions is None else store.partitions.ahead(int(time.time()), ahead)
    obj.emit(
        {"from": before, "to": after, "partitions_created": made},
        lambda d: (
            f"schema {d['from'] or 'empty'} -> {d['to']}"
            + (f"; made {len(made)} partitions" if made else "")
        ),
    )


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def _duration(text: str) -> int:
    """``90d``, ``36h``, ``2w``, ``45m``, ``30s`` -> seconds (more than zero)."""
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in _UNITS or not number.isdigit():
        raise click.BadParameter(
            f"{text!r} is not a duration: a whole number and a unit, e.g. 90d, 36h, 2w "
            "(units s, m, h, d, w)",
            param_hint="--older-than",
        )
    seconds = int(number) * _UNITS[unit]
    if seconds <= 0:
        raise click.BadParameter(
            "must be more than zero (the cutoff would be now or in the future)",
            param_hint="--older-than",
        )
    return seconds


@db.command("prune")
@click.option(
    "--older-than",
    required=True,
    metavar="DURATION",
    help="Remove CDRs placed longer ago than this: 90d, 36h, 2w (units s, m, h, d, w).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@_json_flag
@pass_ctx
def db_prune(obj: Context, older_than: str, dry_run: bool) -> None:
    """Remove old CDRs, their receipts and their counts (retention).

    PostgreSQL drops the day partitions that end before the cutoff (so it is rounded down
    to midnight UTC); SQLite deletes in batches, up to the cutoff rounded down to 5 minutes.
    """
    from .storage.retention import prune
    from .timefmt import epoch_to_iso

    seconds = _duration(older_than)
    with obj.store() as store:
        report = prune(store, int(time.time()) - seconds, dry_run=dry_run)
    data = {
        "dry_run": report.dry_run,
        "cutoff": epoch_to_iso(report.cutoff),
        "cdrs": report.cdrs,
        "receipts": report.receipts,
        "pending_receipts": report.pending_receipts,
        "partitions": report.partitions,
    }
    if report.pending_receipts:
        click.echo(
            f"warning: {report.pending_receipts} of the receipts "
            f"{'would be' if dry_run else 'were'} removed before delivery (still pending); "
            "their apps will never get them",
            err=True,
        )
    obj.emit(
        data,
        lambda d: (
            f"{'would remove' if d['dry_run'] else 'removed'} {d['cdrs']} CDRs placed before "
            f"{d['cutoff']}"
            + (f" ({len(d['partitions'])} partitions)" if d["partitions"] else "")
            + f" and {d['receipts']} receipts"
        ),
    )


# -- apps --------------------------------------------------------------------------------


@main.group("apps")
def apps_group() -> None:
    """Customer apps (tenants) and their credentials."""


def _human_credentials(d: dict[str, Any]) -> str:
    shown = "\n".join(f"{k:15} {v}" for k, v in d.items() if v is not None)
    if d.get("secretkey"):
        shown += "\nKeep the secretkey now: only its hash is stored."
    return shown


@apps_group.command("create")
@click.option("--name", required=True)
@click.option("--appkey", help="Default: 32 random hex characters.")
@click.option("--secretkey", help="Default: 43 random URL-safe characters.")
@click.option("--timezone", help="IANA name [default: VOICECDR_TIMEZONE or Asia/Shanghai].")
@click.option("--language", type=click.Choice(["en", "zh"]), help="[default: en]")
@click.option("--callback-url", help="Where receipts are pushed.")
@click.option("--rate-limit", type=float, help="Query requests per second [default: 1].")
@_json_flag
@pass_ctx
def apps_create(obj: Context, /, **options: Any) -> None:
    """Create an app and print its appkey, secretkey and signing_secret."""
    with obj.store() as store:
        settings = obj.settings()
        issued = apps.create_app(
            store,
            default_timezone=settings.timezone,
            check_callback=apps.CallbackCheck(settings.allow_private_callbacks),
            **options,
        )
    obj.emit(issued.to_dict(), _human_credentials)


@apps_group.command("list")
@_json_flag
@pass_ctx
def apps_list(obj: Context) -> None:
    """List apps (never their secrets)."""
    with obj.store() as store:
        rows = [apps.public_view(a) for a in store.list_apps()]
    obj.emit(
        rows,
        lambda rs: (
            "\n".join(
                f"{r['appkey']:34} {r['name']:24} {r['timezone']:18} {r['language']} "
                f"{r['rate_limit']:g}/s {r['callback_url'] or '-'}"
                for r in rs
            )
            or "no apps"
        ),
    )


@apps_group.command("update")
@click.argument("appkey")
@click.option("--name")
@click.option("--timezone")
@click.option("--language", type=click.Choice(["en", "zh"]))
@click.option("--callback-url", help="An empty string removes the callback.")
@click.option("--rate-limit", type=float)
@_json_flag
@pass_ctx
def apps_update(obj: Context, /, appkey: str, **changes: Any) -> None:
    """Change an app's settings."""
    with obj.store() as store:
        check = apps.CallbackCheck(obj.settings().allow_private_callbacks)
        app = apps.update_app(store, appkey, check_callback=check, **changes)
    obj.emit(apps.public_view(app), lambda d: "\n".join(f"{k:13} {v}" for k, v in d.items()))


@apps_group.command("rotate-secret")
@click.argument("appkey")
@click.option("--secretkey", help="Use this secretkey instead of a random one.")
@click.option(
    "--signing-secret",
    "signing",
    is_flag=True,
    help="Issue a new receipt signing secret instead (with --secretkey: both).",
)
@_json_flag
@pass_ctx
def apps_rotate_secret(obj: Context, appkey: str, secretkey: str | None, signing: bool) -> None:
    """Issue a new secretkey (the old one stops working at once) or signing secret."""
    with obj.store() as store:
        issued = apps.rotate_secret(store, appkey, secretkey=secretkey, signing=signing)
    obj.emit(issued.to_dict(), _human_credentials)


# -- cdrs --------------------------------------------------------------------------------


@main.group("cdrs")
def cdrs_group() -> None:
    """Call detail records."""


@cdrs_group.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "jsonl", "csv", "freeswitch"]),
    default="auto",
    show_default=True,
    help="auto: directories hold FreeSWITCH CDRs; files go by suffix (.jsonl/.ndjson, "
    ".csv, .json).",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where rejected records go (JSONL: file, line, call_id, errors). "
    "[default: voicecdr-rejects-<time>.jsonl in the working directory, only if any]",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    help="Processes that parse and validate JSONL beside the one that stores (0: none). "
    "[default: for files of 16 MiB or more, CPU cores - 2, at most 4]",
)
@_json_flag
@pass_ctx
def cdrs_import(
    obj: Context,
    paths: tuple[Path, ...],
    fmt: str,
    rejects_path: Path | None,
    workers: int | None,
) -> None:
    """Import CDRs from JSONL, CSV or FreeSWITCH JSON CDR files and directories.

    Valid records are stored even when others are rejected; a call_id already stored with
    the same content counts as a duplicate. Rejected records, with their file, line and
    reasons, go to the rejects file. Exit status 1 when any record was rejected.
    """
    from .ingest.importer import import_paths

    with obj.store(bulk=True) as store:
        result = import_paths(
            store,
            paths,
            fmt=fmt,
            rejects_path=rejects_path,
            progress=sys.stderr.isatty(),
            workers=workers,
        )
    obj.emit(result.to_dict(), _human_import)
    if result.summary.rejected_total:
        sys.exit(1)


def _human_import(d: dict[str, Any]) -> str:
    lines = [
        f"accepted {d['accepted']}, duplicates {d['duplicates']}, rejected {d['rejected_total']}"
    ]
    lines += [
        f"  {r.get('file', '-')}:{r.get('line', '-')}: {'; '.join(r['errors'])}"
        for r in d["rejected"][:20]
    ]
    if d["rejects_file"]:
        lines.append(f"rejected records and reasons: {d['rejects_file']}")
    return "\n".join(lines)


# -- rating ------------------------------------------------------------------------------


def _app(store: Store, appkey: str) -> App:
    app = store.get_app(appkey)
    if app is None:
        raise NotFound(f"no app with appkey {appkey!r}")
    return app


@main.group("rates")
def rates_group() -> None:
    """Rate plans: what each app's calls cost."""


@rates_group.command("import")
@click.argument("appkey")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_json_flag
@pass_ctx
def rates_import(obj: Context, /, appkey: str, file: Path) -> None:
    """Make FILE.csv (service,prefix,cycle,unit_price,basic_price) the app's new plan.

    The whole file is checked first; any bad line is reported with its number and nothing
    is applied. CDRs that found no rate under the old plan are tried again.
    """
    from .rating import PlanErrors, parse_plan_csv
    from .storage.rating import RatingStore

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file}: not UTF-8 text ({exc.reason})") from None
    try:
        rates = parse_plan_csv(text)
    except PlanErrors as exc:
        raise click.ClickException(f"{file}: nothing imported:\n" + "\n".join(exc.errors)) from None
    with obj.store() as store:
        app = _app(store, appkey)
        info = RatingStore(store).import_plan(app.id, rates, source=file.name, now=int(time.time()))
    obj.emit(
        {"appkey": app.appkey, "version": info.version, "rates": info.rate_count},
        lambda d: f"{d['appkey']}: plan version {d['version']} with {d['rates']} rates",
    )


@rates_group.command("show")
@click.argument("appkey")
@click.option("--version", "version", type=int, help="A past version [default: the newest].")
@_json_flag
@pass_ctx
def rates_show(obj: Context, /, appkey: str, version: int | None) -> None:
    """Print an app's rate plan."""
    from .money import from_nanos
    from .storage.rating import RatingStore

    with obj.store() as store:
        app = _app(store, appkey)
        ratings = RatingStore(store)
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
            "unit_price": str(from_nanos(r.unit_price_nanos)),
            "basic_price": str(from_nanos(r.basic_price_nanos)),
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
    obj.emit(
        data,
        lambda d: (
            f"plan version {d['version']} ({d['source']}):\n"
            + "\n".join(
                f"  {r['service']:13} {r['prefix'] or '(any)':12} cycle {r['cycle']:>4}s  "
                f"unit {r['unit_price']:>10}  basic {r['basic_price']:>10}"
                for r in d["rates"]
            )
        ),
    )


@rates_group.command("unpriced")
@click.argument("appkey")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(0, 10_000))
@_json_flag
@pass_ctx
def rates_unpriced(obj: Context, /, appkey: str, limit: int) -> None:
    """List CDRs that stay pending because no rate matches them, with the reason."""
    from .storage.rating import RatingStore
    from .timefmt import epoch_to_iso

    with obj.store() as store:
        total, rows = RatingStore(store).unpriced(_app(store, appkey).id, limit=limit)
    data = {
        "total": total,
        "cdrs": [
            {
                "id": r.id,
                "time": epoch_to_iso(r.time),
                "service": r.service.wire_name,
                "number": r.country_code + r.phone,
                "reason": reason,
            }
            for r, reason in rows
        ],
    }
    obj.emit(
        data,
        lambda d: (
            f"{d['total']} unpriced"
            + "".join(f"\n  {c['id']} {c['time']} {c['reason']}" for c in d["cdrs"])
        ),
    )


@main.command("rate")
@_json_flag
@pass_ctx
def rate_command(obj: Context) -> None:
    """Price every pending CDR now (with receipts for those that become final), then exit."""
    from .workers.rater import Rater

    with obj.store() as store:
        priced, unpriced = Rater(store, batch_size=obj.settings().rater_batch_size).drain()
    obj.emit(
        {"priced": priced, "unpriced": unpriced},
        lambda d: f"priced {d['priced']}, left pending for want of a rate {d['unpriced']}",
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
@_json_flag
@pass_ctx
def rerate_command(
    obj: Context, /, appkey: str, start: str, end: str, dry_run: bool, resend_receipts: bool
) -> None:
    """Recompute an app's charges for calls placed in a period, with its newest plan."""
    from .money import from_nanos
    from .workers.rater import rerate

    with obj.store() as store:
        app = _app(store, appkey)
        begin, finish = _period(app, start, end)
        report = rerate(store, app, begin, finish, dry_run=dry_run, resend_receipts=resend_receipts)
    data = {
        "dry_run": report.dry_run,
        "records": report.records,
        "changed": report.changed,
        "newly_final": report.newly_final,
        "newly_pending": report.newly_pending,
        "cost_before": str(from_nanos(report.cost_before_nanos)),
        "cost_after": str(from_nanos(report.cost_after_nanos)),
        "receipts": report.receipts,
        "samples": [
            {
                "id": s["id"],
                "cost_before": None
                if s["cost_before_nanos"] is None
                else str(from_nanos(int(str(s["cost_before_nanos"])))),
                "cost_after": None
                if s["cost_after_nanos"] is None
                else str(from_nanos(int(str(s["cost_after_nanos"])))),
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


def _period(app: App, start: str, end: str) -> tuple[int, int]:
    tz = zone(app.timezone)
    try:
        begin = parse_cli_time(start, tz)
        finish = parse_cli_time(end, tz, latest=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if begin > finish:
        raise click.BadParameter("--from must not be after --to")
    return begin, finish


# -- receipts ----------------------------------------------------------------------------


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
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@_json_flag
@pass_ctx
def receipts_list(obj: Context, /, status: str | None, appkey: str | None, limit: int) -> None:
    """List receipts, newest first."""
    from .models import ReceiptStatus
    from .storage.outbox import Outbox
    from .timefmt import epoch_to_iso

    with obj.store() as store:
        app_id = _app(store, appkey).id if appkey else None
        chosen = (
            ReceiptStatus[status.upper()] if status in ("pending", "delivered", "dead") else None
        )
        rows = Outbox(store).list(
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
    obj.emit(
        data,
        lambda rs: (
            "\n".join(
                f"{r['id']:>8} {r['appkey']:20} {r['status']:9} attempts {r['attempts']}  "
                f"{r['last_error'] or ''}"
                for r in rs
            )
            or "no receipts"
        ),
    )


@receipts_group.command("replay")
@click.option("--id", "ids", type=int, multiple=True, help="A receipt id (repeatable).")
@click.option("--app", "appkey", help="Receipts of this app (with --from/--to: created then).")
@click.option("--from", "start", help="With --app: created at or after.")
@click.option("--to", "end", help="With --app: created at or before.")
@click.option("--dead", is_flag=True, help="Only dead receipts (alone: every dead receipt).")
@click.option(
    "--failed",
    is_flag=True,
    help="Only receipts waiting to retry after a failure (alone: all of them, now).",
)
@_json_flag
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
    from .storage.outbox import Outbox

    if not (ids or appkey or dead or failed):
        raise click.UsageError(
            "say which receipts: --id, --app (with --from/--to), --dead or --failed"
        )
    if (start or end) and not appkey:
        raise click.UsageError("--from/--to need --app")
    with obj.store() as store:
        app = _app(store, appkey) if appkey else None
        begin = finish = None
        if app is not None and (start or end):
            begin, finish = _period(
                app, start or "1970-01-01T00:00:00Z", end or "9999-12-31T23:59:59Z"
            )
        count = Outbox(store).replay(
            now=time.time(),
            ids=ids,
            app_id=app.id if app else None,
            created_from=begin,
            created_to=finish,
            dead_only=dead,
            failed_only=failed,
        )
    obj.emit({"replayed": count}, lambda d: f"queued {d['replayed']} receipts again")


# -- worker ------------------------------------------------------------------------------


@main.command("worker")
@pass_ctx
def worker_command(obj: Context) -> None:
    """Run the rater and the receipt sender (no API) until SIGINT or SIGTERM."""
    import asyncio
    import signal

    from .workers.runner import run_workers

    settings = obj.settings()
    logs.configure(settings.log_level)

    async def main_loop(store: Store) -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await run_workers(store, settings, stopping)

    with obj.store() as store:
        asyncio.run(main_loop(store))


# -- export (the client side; lives in cli_export so it runs without the server's deps) --


# -- demo --------------------------------------------------------------------------------


@main.command("demo")
@click.option("--count", default=3000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--days", default=3.0, show_default=True, type=click.FloatRange(0.01, 30))
@click.option(
    "--seed",
    default=7,
    show_default=True,
    help="Random seed; with the current time it decides the calls, so a rerun adds new ones.",
)
@click.option(
    "--callback-url",
    help="Push the demo's receipts here (see docs/receipts.md); a local receiver needs "
    "VOICECDR_ALLOW_PRIVATE_CALLBACKS=true.",
)
@_json_flag
@pass_ctx
def demo_command(
    obj: Context, /, count: int, days: float, seed: int, callback_url: str | None
) -> None:
    """Load a demo app (appkey `demo`, secretkey `demo-secret`) with a rate plan and
    realistic, priced CDRs (receipted when it has a callback URL)."""
    from .ingest.core import Ingestor, Item
    from .rating import parse_plan_csv
    from .storage.rating import RatingStore
    from .workers.rater import Rater

    settings = obj.settings()
    now = int(time.time())
    with obj.store(current=False) as store:
        migrate.upgrade(store)
        check = apps.CallbackCheck(settings.allow_private_callbacks)
        try:
            apps.rotate_secret(store, demo.DEMO_APPKEY, secretkey=demo.DEMO_SECRETKEY)
            if callback_url is not None:
                apps.update_app(
                    store, demo.DEMO_APPKEY, callback_url=callback_url, check_callback=check
                )
        except NotFound:
            apps.create_app(
                store,
                name="Demo",
                appkey=demo.DEMO_APPKEY,
                secretkey=demo.DEMO_SECRETKEY,
                default_timezone=settings.timezone,
                rate_limit=5,
                callback_url=callback_url,
                check_callback=check,
            )
        app = store.get_app(demo.DEMO_APPKEY)
        assert app is not None
        records = demo.generate([app.appkey], count, now=now, days=days, seed=seed)
        summary = Ingestor(store).ingest(Item(i, r) for i, r in enumerate(records))
        ratings = RatingStore(store)
        if ratings.current_plan(app.id) is None:
            ratings.import_plan(app.id, parse_plan_csv(demo.DEMO_PLAN), source="demo", now=now)
        app = store.get_app(demo.DEMO_APPKEY)  # as priced, with its callback URL
        assert app is not None
        priced, _ = Rater(store, batch_size=settings.rater_batch_size).drain()
    tz = app.timezone
    local_now = datetime.fromtimestamp(now, zone(tz))
    start = (local_now - timedelta(hours=24)).strftime("%Y-%m-%d %H:%M:%S")
    end = local_now.strftime("%Y-%m-%d %H:%M:%S")
    curl = " ".join(
        [
            "curl -s -X POST http://127.0.0.1:8000/api/voiceSms/getVoiceCdr",
            f"--data-urlencode appkey={app.appkey}",
            f"--data-urlencode secretkey={demo.DEMO_SECRETKEY}",
            "--data-urlencode voiceType=0",
            f"--data-urlencode {shlex.quote('start_time=' + start)}",
            f"--data-urlencode {shlex.quote('end_time=' + end)}",
            "--data-urlencode page_size=5 --data-urlencode page=1",
        ]
    )
    data = {
        "appkey": app.appkey,
        "secretkey": demo.DEMO_SECRETKEY,
        "signing_secret": app.signing_secret,
        "callback_url": app.callback_url,
        "timezone": tz,
        **summary.to_dict(),
        "priced": priced,
        "try": curl,
    }
    obj.emit(
        data,
        lambda d: (
            f"demo app: appkey={d['appkey']} secretkey={d['secretkey']} timezone={d['timezone']}\n"
            f"loaded {d['accepted']} CDRs over the last {days:g} days and priced {d['priced']}\n"
            f"start the server with `voicecdr serve`, then try:\n  {d['try']}"
        ),
    )
