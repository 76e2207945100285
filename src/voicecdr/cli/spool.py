"""``watch``: follow spool files and directories; ``cdrs sources``: what each source sent
per hour and what became of it; ``cdrs rejects`` / ``cdrs replay``: what watch could not
store, to see and to store again."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from ..cli_numbers import real, whole
from ._asterisk import asterisk_options, options_of
from ._base import Context, cli_time, json_flag, main, pass_ctx, table
from .records import cdrs_group

_UTC = ZoneInfo("UTC")


def _formats() -> list[str]:
    from ..ingest.follow import FOLLOWED

    return list(FOLLOWED)


@main.command("watch")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    help="jsonl, csv, freeswitch (one mod_json_cdr document per file) or asterisk "
    "(cdr_csv: Master.csv, or the cdr-csv directory; docs/asterisk.md). "
    "[default: by each file's suffix: .jsonl/.ndjson, .csv, .json]",
)
@asterisk_options(
    "Asterisk: IANA zone of the cdr_csv times (unless usegmtime=yes: the switch's zone)."
)
@click.option(
    "--interval",
    type=real(0.01, 3600),
    default=0.5,
    show_default=True,
    help="Seconds between looks at the paths when nothing is new.",
)
@click.option("--once", is_flag=True, help="Store what is there now, then exit.")
@click.option(
    "--batch",
    type=whole(1, 100_000),
    default=5000,
    show_default=True,
    help="Records per transaction at most (each with its file's position).",
)
@click.option(
    "--done-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Move each one-document file (FreeSWITCH) here once stored, under its path in the "
    "followed directory. Choose a directory outside the followed ones.",
)
@click.option(
    "--metrics-port",
    type=whole(1, 65535),
    help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics while watching.",
)
@json_flag
@pass_ctx
def watch_command(
    obj: Context,
    paths: tuple[Path, ...],
    fmt: str | None,
    interval: float,
    once: bool,
    batch: int,
    done_dir: Path | None,
    metrics_port: int | None,
    source_timezone: str | None,
    maps: tuple[str, ...],
    sets: tuple[str, ...],
    extra_column: str | None,
) -> None:
    """Follow files and directories and store the CDRs that appear in them, each exactly
    once across crashes and restarts (see docs/watch.md). Runs until SIGINT or SIGTERM
    (with --once: until everything there is read), then prints what it did."""
    import signal
    from threading import Event

    from .. import logs
    from ..ingest.timebounds import TimeLimits
    from ..ingest.watch import Watcher

    if fmt is not None and fmt not in _formats():
        raise click.BadParameter(f"choose from {', '.join(_formats())}", param_hint="'--format'")
    asterisk = options_of(fmt, source_timezone, maps, sets, extra_column)
    settings = obj.settings()
    logs.configure(settings.log_level)
    stop = Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _s, _f: stop.set())
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    # One writer connection storing many rows: the bulk page cache (as `cdrs import`).
    with obj.database(bulk=True) as db:
        watcher = Watcher(
            db,
            paths,
            fmt,
            batch=batch,
            limits=TimeLimits.of(settings),
            done_dir=done_dir,
            asterisk=asterisk,
        )
        stats = watcher.run(stop, interval=interval, once=once)
    obj.emit(stats.to_dict(), _human_stats)


def _human_stats(d: dict[str, Any]) -> str:
    return (
        f"read {d['read']}: stored {d['stored']}, duplicates {d['duplicates']}, "
        f"rejected {d['rejected']}; {d['behind_bytes']} bytes not read yet"
    )


@cdrs_group.command("sources")
@click.option("--from", "start", help="yyyy-MM-dd HH:mm:ss (UTC) or ISO 8601.")
@click.option("--to", "end", help="Inclusive; same forms as --from.")
@click.option("--source", help="Only this source (e.g. api, or import:/abs/path).")
@json_flag
@pass_ctx
def cdrs_sources(obj: Context, start: str | None, end: str | None, source: str | None) -> None:
    """Per source and UTC hour: records received, stored, duplicate and rejected. Sources:
    each path watch follows, api, freeswitch-http, import:PATH, demo (docs/watch.md).
    received = stored + duplicate + rejected, always: the counts are written in the
    transactions that store the records."""
    from ..storage import SpoolStore

    begin = cli_time(start, _UTC, "--from") if start else None
    finish = cli_time(end, _UTC, "--to", latest=True) if end else None
    with obj.database() as db:
        hours = SpoolStore(db).counts(begin, finish, source)
    rows = [
        {
            "source": h.source,
            "hour": time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(h.hour)),
            "received": h.received,
            "stored": h.stored,
            "duplicate": h.duplicate,
            "rejected": h.rejected,
            "balanced": h.received == h.stored + h.duplicate + h.rejected,
        }
        for h in hours
    ]
    obj.emit(
        rows,
        lambda r: table(
            r,
            {k: k for k in ("source", "hour", "received", "stored", "duplicate", "rejected")},
            "no records received in that window",
        ),
    )


@cdrs_group.command("rejects")
@click.option("--source", help="Only this source (a path as watch was given it, absolute).")
@click.option("--limit", type=whole(min=1), default=100, show_default=True)
@json_flag
@pass_ctx
def cdrs_rejects(obj: Context, source: str | None, limit: int) -> None:
    """The records watch could not store, oldest first, with their reasons."""
    from ..storage import SpoolStore

    with obj.database() as db:
        kept = SpoolStore(db).rejects(source=source, limit=limit)
    rows = [
        {
            "id": r.id,
            "source": r.source,
            "file": r.file,
            "line": r.line,
            "call_id": r.call_id,
            "reason": r.reason,
            "record": r.raw.decode("utf-8", "replace"),
        }
        for r in kept
    ]
    obj.emit(
        rows,
        lambda r: table(
            r, {"id": "id", "file": "file", "line": "line", "reason": "reason"}, "no rejects"
        ),
    )


@cdrs_group.command("replay")
@click.option("--source", help="Only this source's rejects.")
@click.option("--id", "ids", type=whole(min=1), multiple=True, help="Only this reject (repeat).")
@json_flag
@pass_ctx
def cdrs_replay(obj: Context, source: str | None, ids: tuple[int, ...]) -> None:
    """Store watch's kept rejects again (after fixing their cause): a record now stored
    leaves the rejects; one still refused stays with its new reason. Exit status 1 when
    any is still refused."""
    from ..ingest.replay import replay
    from ..ingest.timebounds import TimeLimits

    with obj.database() as db:
        summary = replay(db, source=source, ids=ids, limits=TimeLimits.of(obj.settings()))
    obj.emit(
        {
            "stored": summary.accepted,
            "duplicates": summary.duplicates,
            "still_rejected": summary.rejected_total,
        },
        lambda d: (
            f"stored {d['stored']}, duplicates {d['duplicates']}, "
            f"still rejected {d['still_rejected']}"
        ),
    )
    if summary.rejected_total:
        sys.exit(1)
