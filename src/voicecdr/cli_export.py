"""``voicecdr export``: the client side of the query API as a command.

It needs only click and :mod:`voicecdr.client` (httpx), so it runs where the server's
dependencies are not installed (``pip install voicecdr[cli]``). Credentials may come from
``VOICECDR_APPKEY``, ``VOICECDR_SECRETKEY`` and ``VOICECDR_BASE_URL``: these are the
client's own variables, read by click for this command only; the server's settings are
read in ``config.py`` alone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from .cli_numbers import real, whole
from .client import DEFAULT_BASE_URL, DEFAULT_TIMEZONE, Client, ClientError, Record, Retry
from .client._exceptions import (
    AuthFailed,
    ExportError,
    InvalidParameter,
    OutOfWindow,
    ProtocolError,
    RangeTooLarge,
)
from .client._export import ExportJob, Manifest, export, export_stream, kept_rows, sidecar
from .client._pacing import may_pass_later
from .client._timeutil import aware, to_wall, zone


def _timezone(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        zone(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _wall(text: str, tz: ZoneInfo, option: str) -> datetime:
    try:
        return to_wall(text, tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None


def _base_url(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    scheme, _, rest = value.partition("://")
    if scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL")
    return value


class _Progress:
    """A progress bar over the window's time on a terminal; nothing when piped."""

    def __init__(self, start: datetime, end: datetime, enabled: bool) -> None:
        self._start = start.timestamp()
        self._length = max(1, int(end.timestamp() - self._start) + 1)
        self._enabled = enabled
        self._position = 0
        self._bar: Any = None
        self._stack: ExitStack | None = None

    @contextmanager
    def shown(self) -> Iterator[_Progress]:
        """The bar is drawn from :meth:`start` on, so an export refused before it
        starts (a complete one run again) draws nothing before its error."""
        with ExitStack() as stack:
            self._stack = stack
            yield self
            if self._bar is not None:
                self._bar.render_progress()  # the last update may have been throttled

    def start(self, resumed_after: datetime | None = None) -> None:
        if self._enabled and self._bar is None and self._stack is not None:
            self._bar = self._stack.enter_context(
                click.progressbar(
                    length=self._length, label="exporting", file=sys.stderr, show_pos=False
                )
            )
        if resumed_after is not None:
            self.to(resumed_after)

    def to(self, moment: datetime) -> None:
        position = min(self._length, max(0, int(moment.timestamp() - self._start)))
        if self._bar is not None and position > self._position:
            self._bar.update(position - self._position)
            self._position = position

    def record(self, record: Record) -> None:
        self.to(record.time)


@click.command("export")
@click.option(
    "--base-url",
    envvar="VOICECDR_BASE_URL",
    default=DEFAULT_BASE_URL,
    callback=_base_url,
    show_default=True,
    help="The endpoint's scheme and host (NXCloud's by default)  [env VOICECDR_BASE_URL]",
)
@click.option("--appkey", envvar="VOICECDR_APPKEY", required=True, help="[env VOICECDR_APPKEY]")
@click.option(
    "--secretkey", envvar="VOICECDR_SECRETKEY", required=True, help="[env VOICECDR_SECRETKEY]"
)
@click.option(
    "--voice-type",
    required=True,
    type=whole(0, 1),
    help="0 = group calls, 1 = verification and notification calls.",
)
@click.option(
    "--from",
    "from_",
    required=True,
    metavar="TIME",
    help="First instant, inclusive: 'yyyy-MM-dd HH:mm:ss' in --timezone, or ISO 8601 with "
    "an offset.",
)
@click.option("--to", required=True, metavar="TIME", help="Last instant, inclusive; as --from.")
@click.option(
    "--timezone",
    default=DEFAULT_TIMEZONE,
    show_default=True,
    callback=_timezone,
    help="The app's IANA timezone. It must match the app's: the API reads and writes "
    "wall-clock times in it.",
)
@click.option("--messageid", help="Only the calls of this messageid.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    default="-",
    help="Output file; '-' (the default) streams to stdout, without resume. A file gets a "
    "checkpoint beside it while the export runs and a manifest at the end.",
)
@click.option(
    "--extended", is_flag=True, help="Add cost, cost_status, hangup_cause, … (voicecdr only)."
)
@click.option(
    "--rate",
    type=real(min=0.001),
    default=1.0,
    show_default=True,
    help="The app's query rate limit, requests/second.",
)
@click.option("--page-size", type=whole(1, 100_000), default=1000, show_default=True)
@click.option(
    "--max-span-hours",
    type=real(min=0.001),
    default=24.0,
    show_default=True,
    help="Longest window the server accepts in one query.",
)
@click.option(
    "--retries",
    type=whole(0, 100),
    default=Retry().attempts,
    show_default=True,
    help="Retries of each request after a network error, a timeout or a 5xx, with back-off.",
)
@click.option("--overwrite", is_flag=True, help="Replace the output and any checkpoint.")
def export_command(
    base_url: str,
    appkey: str,
    secretkey: str,
    voice_type: int,
    from_: str,
    to: str,
    timezone: str,
    messageid: str | None,
    fmt: str,
    output: Path,
    extended: bool,
    rate: float,
    page_size: int,
    max_span_hours: float,
    retries: int,
    overwrite: bool,
) -> None:
    """Export every record of a window of any length, as CSV (NXCloud's field names) or
    JSONL, from NXCloud's endpoint or any compatible one (voicecdr included).

    The window is split into queries the server allows, paged, paced to --rate and
    retried on transient failures. Interrupted exports to a file resume when the same
    command is run again. The manifest (FILE.manifest.json, and printed) has the row
    count, the cost sum and the file's SHA-256.
    """
    tz = zone(timezone)
    start, end = _wall(from_, tz, "--from"), _wall(to, tz, "--to")
    if start > end:
        raise click.UsageError(f"--from {from_!r} is after --to {to!r}")
    job = ExportJob(base_url, appkey, voice_type, start, end, timezone, fmt, messageid, extended)
    to_stdout = str(output) == "-"
    progress = _Progress(aware(start, tz), aware(end, tz), sys.stderr.isatty() and not to_stdout)
    client = Client(
        appkey,
        secretkey,
        base_url=base_url,
        timezone=timezone,
        rate=rate,
        retry=Retry(attempts=retries),
        page_size=page_size,
        max_span=timedelta(hours=max_span_hours),
    )
    try:
        with client, progress.shown():
            if to_stdout:
                progress.start()
                manifest = export_stream(client, job, sys.stdout, on_record=progress.record)
            else:
                manifest = export(
                    client,
                    job,
                    output,
                    overwrite=overwrite,
                    on_record=progress.record,
                    on_start=lambda wall: progress.start(None if wall is None else aware(wall, tz)),
                )
            progress.to(aware(end, tz))
    except ExportError as exc:  # it never started: nothing to resume
        raise click.ClickException(str(exc)) from None
    except ClientError as exc:
        raise click.ClickException(f"{exc}{_advice(exc, output, to_stdout)}") from None
    except KeyboardInterrupt:
        click.echo(f"\nError: interrupted{_resume_hint(output, to_stdout)}", err=True)
        sys.exit(130)
    _report(manifest, to_stdout)


# What to change when the endpoint refused what was asked: running it again cannot help.
_FIXES: dict[type[ClientError], str] = {
    AuthFailed: "check --appkey and --secretkey",
    InvalidParameter: "correct the value it names",
    OutOfWindow: "give a later --from: older records are no longer queryable",
    RangeTooLarge: "give a smaller --max-span-hours: the endpoint allows shorter queries",
    ProtocolError: "check --base-url: it did not answer as the query API does",
}


def _advice(exc: ClientError, output: Path, to_stdout: bool) -> str:
    if may_pass_later(exc):
        return _resume_hint(output, to_stdout)
    fix = next((text for cls, text in _FIXES.items() if isinstance(exc, cls)), "")
    advice = f"; {fix}" if fix else ""
    kept = None if to_stdout else kept_rows(output)
    if kept:
        advice += (
            f"; the {kept} records exported are kept in {output}: run again with the fix "
            "to resume, or with --overwrite if the window changes"
        )
    elif kept == 0:
        advice += (
            f"; then run again, adding --overwrite if the window changes ({output} has no "
            "records yet)"
        )
    return advice


def _resume_hint(output: Path, to_stdout: bool) -> str:
    if to_stdout or not sidecar(output, "checkpoint").exists():
        return ""
    return "; what was exported is kept: run the same command again to resume"


def _report(manifest: Manifest, to_stdout: bool) -> None:
    text = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False)
    # With the records on stdout, the manifest goes to stderr to keep the data clean.
    if to_stdout or not sys.stdout.isatty():
        click.echo(text, err=to_stdout)
    else:
        click.echo(
            f"exported {manifest.rows} records to {manifest.file} "
            f"(cost {manifest.cost_sum}, sha256 {manifest.sha256})"
        )
