"""Running the service: ``serve``, ``worker``, ``db`` (schema and retention) and ``demo``.

Each command imports what it runs (the server, the workers, storage) itself, so that
starting any other command does not load them."""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import socket
import tempfile
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import click

from ..cli_numbers import real, whole
from ..errors import NotFound
from ..timefmt import format_wall, zone
from ._base import Context, json_flag, main, pass_ctx

if TYPE_CHECKING:
    from ..storage import Database

# -- serve -------------------------------------------------------------------------------

CONSOLE_URL = "http://127.0.0.1:8000/console"  # `voicecdr serve`'s default address


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=whole(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=whole(1, 64),
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

    from .. import logs

    settings = obj.settings()
    _check_port(host, port)
    logs.configure(settings.log_level)
    with obj.database():
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
            # The app takes a client address from X-Forwarded-For only from the proxies
            # the operator names (VOICECDR_TRUSTED_PROXIES); uvicorn would trust 127.0.0.1.
            proxy_headers=False,
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


def _check_port(host: str, port: int) -> None:
    """Say that the address is taken before anything starts (uvicorn would say it after
    the database checks and the workers' start-up, among their logs)."""
    if port == 0:
        return
    # uvicorn's own choice of family, so the probe binds what it will bind.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is in use: stop what listens there or choose "
                    "another --port"
                ) from None
            raise click.ClickException(
                f"cannot listen on --host {host} --port {port}: {exc.strerror or exc}"
            ) from None


# -- worker ------------------------------------------------------------------------------


@main.command("worker")
@pass_ctx
def worker_command(obj: Context) -> None:
    """Run the rater and the receipt sender (no API) until SIGINT or SIGTERM."""
    import asyncio
    import signal

    from .. import logs
    from ..workers.runner import run_workers

    settings = obj.settings()
    logs.configure(settings.log_level)

    async def main_loop(db: Database) -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await run_workers(db, settings, stopping)

    with obj.database() as db:
        asyncio.run(main_loop(db))


# -- db ----------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@json_flag
@pass_ctx
def db_upgrade(obj: Context) -> None:
    """Create or migrate the schema to this version's head (and, on PostgreSQL, make the
    coming days' partitions)."""
    from ..storage import upgrade

    ahead = obj.settings().partitions_ahead_days
    with obj.database(current=False) as db:
        before, after = upgrade(db)
        made = [] if db.partitions is None else db.partitions.ahead(int(time.time()), ahead)
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
    if unit not in _UNITS or not (number.isascii() and number.isdigit()):
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
@json_flag
@pass_ctx
def db_prune(obj: Context, older_than: str, dry_run: bool) -> None:
    """Remove old CDRs, their receipts and their counts (retention).

    PostgreSQL drops the day partitions that end before the cutoff (so it is rounded down
    to midnight UTC); SQLite deletes in batches, up to the cutoff rounded down to 5 minutes.
    """
    from ..storage import prune
    from ..timefmt import epoch_to_iso

    seconds = _duration(older_than)
    with obj.database() as db:
        report = prune(db, int(time.time()) - seconds, dry_run=dry_run)
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


# -- demo --------------------------------------------------------------------------------


@main.command("demo")
@click.option("--count", default=3000, show_default=True, type=whole(1, 10_000_000))
@click.option("--days", default=3.0, show_default=True, type=real(0.01, 30))
@click.option(
    "--seed",
    default=7,
    type=whole(),
    show_default=True,
    help="Random seed; with the current time it decides the calls, so a rerun adds new ones.",
)
@click.option(
    "--callback-url",
    help="Push the demo's receipts here (see docs/receipts.md); a local receiver needs "
    "VOICECDR_ALLOW_PRIVATE_CALLBACKS=true.",
)
@json_flag
@pass_ctx
def demo_command(
    obj: Context, /, count: int, days: float, seed: int, callback_url: str | None
) -> None:
    """Load a demo app (appkey `demo`, secretkey `demo-secret`) with a rate plan and
    realistic, priced CDRs (receipted when it has a callback URL)."""
    from .. import apps, demo
    from ..ingest.core import Ingestor, Item
    from ..rating import parse_plan_csv
    from ..storage import AppStore, CdrWriter, RatingStore, upgrade
    from ..workers.rater import Rater

    settings = obj.settings()
    now = int(time.time())
    with obj.database(current=False) as db:
        upgrade(db)
        store = AppStore(db)
        check = apps.CallbackCheck(settings.allow_private_callbacks)
        # An existing demo app keeps its signing secret: a receiver set up with it still
        # verifies the new receipts. Its secretkey is set back to the documented one.
        kept = store.get(demo.DEMO_APPKEY) is not None
        try:
            apps.rotate_secret(store, demo.DEMO_APPKEY, secretkey=demo.DEMO_SECRETKEY)
            # A reset demo app works: one disabled earlier would refuse the CDRs below.
            apps.set_enabled(store, demo.DEMO_APPKEY, enabled=True)
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
        app = store.get(demo.DEMO_APPKEY)
        assert app is not None
        records = demo.generate([app.appkey], count, now=now, days=days, seed=seed)
        items = (Item(i, r) for i, r in enumerate(records))
        summary = Ingestor(store, CdrWriter(db)).ingest(items, source="demo")
        ratings = RatingStore(db)
        if ratings.current_plan(app.id) is None:
            ratings.import_plan(app.id, parse_plan_csv(demo.DEMO_PLAN), source="demo", now=now)
        app = store.get(demo.DEMO_APPKEY)  # as priced, with its callback URL
        assert app is not None
        priced, _ = Rater(db, batch_size=settings.rater_batch_size).drain()
    tz = app.timezone
    local_now = datetime.fromtimestamp(now, zone(tz))
    start, end = format_wall(local_now - timedelta(hours=24)), format_wall(local_now)
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
        "signing_secret_kept": kept,
        "callback_url": app.callback_url,
        "timezone": tz,
        **summary.to_dict(),
        "priced": priced,
        "try": curl,
        "console": CONSOLE_URL,
    }
    obj.emit(
        data,
        lambda d: (
            f"demo app: appkey={d['appkey']} secretkey={d['secretkey']} timezone={d['timezone']}\n"
            f"receipt signing_secret={d['signing_secret']} "
            + ("(kept from the existing demo app)\n" if kept else "(new)\n")
            + f"loaded {d['accepted']} CDRs over the last {days:g} days and priced {d['priced']}\n"
            f"start the server with `voicecdr serve`, then try:\n  {d['try']}\n"
            f"or open {d['console']} and sign in with appkey {d['appkey']} and secretkey "
            f"{d['secretkey']}"
        ),
    )
