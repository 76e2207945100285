"""``cdrs import``: CDRs from files, with every rejected record and its reasons kept;
``cdrs list``: an app's CDRs as the query API renders them, for the operator."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from ..cli_numbers import whole
from ..models import App
from ._asterisk import asterisk_options, options_of
from ._base import Context, find_app, json_flag, main, pass_ctx, period


@main.group("cdrs")
def cdrs_group() -> None:
    """Call detail records."""


@cdrs_group.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(
        ["auto", "jsonl", "csv", "freeswitch", "kamailio-acc", "kamailio-cdrs", "asterisk"]
    ),
    default="auto",
    show_default=True,
    help="auto: directories hold FreeSWITCH CDRs; files go by suffix (.jsonl/.ndjson, "
    ".csv, .json). Kamailio exports (docs/kamailio.md) and Asterisk cdr_csv files "
    "(docs/asterisk.md) need --format.",
)
@asterisk_options(
    "IANA zone of the times the files write without a UTC offset (Kamailio's "
    "datetime columns: the zone of its database's host; Asterisk's cdr_csv times unless "
    "usegmtime=yes: the switch's zone)."
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
    type=whole(0, 64),
    help="Processes that parse and validate JSONL beside the one that stores (0: none). "
    "[default: for files of 16 MiB or more, CPU cores - 2, at most 4]",
)
@json_flag
@pass_ctx
def cdrs_import(
    obj: Context,
    paths: tuple[Path, ...],
    fmt: str,
    rejects_path: Path | None,
    workers: int | None,
    source_timezone: str | None,
    maps: tuple[str, ...],
    sets: tuple[str, ...],
    extra_column: str | None,
) -> None:
    """Import CDRs from JSONL, CSV or FreeSWITCH JSON CDR files and directories, Kamailio
    acc exports and Asterisk cdr_csv files.

    Valid records are stored even when others are rejected; a call_id already stored with
    the same content counts as a duplicate. Rejected records, with their file, line and
    reasons, go to the rejects file. Exit status 1 when any record was rejected.
    """
    from ..ingest.importer import import_paths
    from ..ingest.timebounds import TimeLimits

    asterisk = options_of(fmt, source_timezone, maps, sets, extra_column, timezone_elsewhere=True)
    with obj.database(bulk=True) as db:
        result = import_paths(
            db,
            paths,
            fmt=fmt,
            rejects_path=rejects_path,
            progress=sys.stderr.isatty(),
            workers=workers,
            limits=TimeLimits.of(obj.settings()),
            source_timezone=source_timezone or "UTC",
            asterisk=asterisk,
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


@cdrs_group.command("list")
@click.argument("appkey")
@click.option(
    "--from", "start", required=True, help="yyyy-MM-dd HH:mm:ss (app timezone) or ISO 8601."
)
@click.option("--to", "end", required=True, help="Inclusive; same forms as --from.")
@click.option(
    "--voice-type",
    type=click.Choice(["0", "1"]),
    help="As the query API's voiceType: 0 group calls, 1 verification and notification. "
    "[default: both]",
)
@click.option(
    "--service",
    type=click.Choice(["group_call", "verification", "notification"]),
    help="Only this service's calls.",
)
@click.option("--messageid", help="Only calls with this messageid.")
@click.option("--limit", type=whole(min=1), help="Stop after this many rows.")
@click.option(
    "--extended",
    is_flag=True,
    help="Add cost, cost_status, hangup_cause, hangup_disposition (and record_url where present).",
)
@json_flag
@pass_ctx
def cdrs_list(
    obj: Context,
    /,
    appkey: str,
    start: str,
    end: str,
    voice_type: str | None,
    service: str | None,
    messageid: str | None,
    limit: int | None,
    extended: bool,
) -> None:
    """List an app's CDRs placed from --from to --to, ordered by time and id, each row as
    the query API renders it (no secret needed, any window length, disabled apps too).

    A table on a terminal; JSONL (one row per line) with --json or when stdout is not a
    terminal. Rows are read a page at a time, so any number of them streams.
    """
    from ..models import Service, VoiceGroup
    from ..storage import window_rows

    with obj.database() as db:
        app = find_app(db, appkey)  # a missing app: status 1, as every command says it
        begin, finish = period(app, start, end)
        chosen = Service.from_wire(service) if service else None
        group = VoiceGroup(int(voice_type)) if voice_type is not None else None
        if chosen is not None and group is not None and chosen.voice_group is not group:
            raise click.UsageError(f"--service {service} is never in --voice-type {voice_type}")
        rows = window_rows(
            db, app.id, begin, finish, service=chosen, group=group, messageid=messageid
        )
        if limit is not None:
            rows = _first(rows, limit)
        rendered = _rendered(app, rows, extended=extended)
        if obj.json_output or not sys.stdout.isatty():
            _write_rows(rendered, None)
        else:
            groups = [group] if group is not None else list(VoiceGroup)
            _write_rows(rendered, _columns(groups, extended=extended))


def _columns(groups: list[Any], *, extended: bool) -> list[str]:
    """The table's columns: every field the rows of ``groups`` can have, in API order."""
    from ..models import VoiceGroup
    from ..rows import EXTENDED_FIELDS, GROUP_CALL_FIELDS, VERIFICATION_FIELDS

    columns: list[str] = []
    for group in groups:
        fields = GROUP_CALL_FIELDS if group is VoiceGroup.GROUP_CALL else VERIFICATION_FIELDS
        for before, field in zip((None, *fields), fields, strict=False):
            if field not in columns:
                columns.insert(columns.index(before) + 1 if before else 0, field)
    return columns + list(EXTENDED_FIELDS) if extended else columns


def _first(rows: Iterator[Any], limit: int) -> Iterator[Any]:
    for n, row in enumerate(rows, 1):
        yield row
        if n >= limit:
            return


def _rendered(app: App, rows: Iterable[Any], *, extended: bool) -> Iterator[dict[str, Any]]:
    """Each row rendered by the query API's renderer for its voice group, in batches."""
    from ..models import Service, VoiceGroup
    from ..rows import RowRenderer
    from ..storage import ROW_FIELDS
    from ..timefmt import zone

    tz = zone(app.timezone)
    renderers = {g: RowRenderer(g, tz, app.language, extended=extended) for g in VoiceGroup}
    service_at = ROW_FIELDS.index("service")
    batch: list[Any] = []
    group: VoiceGroup | None = None
    for row in rows:
        row_group = Service(row[service_at]).voice_group
        if row_group is not group or len(batch) >= 1000:
            if batch:
                assert group is not None
                yield from renderers[group].render_all(batch)
            batch, group = [], row_group
        batch.append(row)
    if batch:
        assert group is not None
        yield from renderers[group].render_all(batch)


def _write_rows(rows: Iterator[dict[str, Any]], columns: list[str] | None) -> None:
    """JSONL, or with ``columns`` a table."""
    out = sys.stdout.buffer
    try:
        if columns is None:
            for row in rows:
                out.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        else:
            _write_table(rows, columns, out)
        out.flush()
    except BrokenPipeError:
        # The reader stopped (`| head`): not an error. Point stdout at nothing so that
        # Python's flush at exit does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _write_table(rows: Iterator[dict[str, Any]], columns: list[str], out: Any) -> None:
    """A header and aligned columns, sized by the first rows (later, longer values push
    their line out rather than hold every row back)."""
    head: list[dict[str, Any]] = []
    for row in rows:
        head.append(row)
        if len(head) >= 100:
            break
    if not head:
        out.write(b"no CDRs in that window\n")
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in head]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]

    def line(values: list[str]) -> bytes:
        text = "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True))
        return (text.rstrip() + "\n").encode()

    out.write(line(columns))
    for values in cells:
        out.write(line(values))
    for row in rows:
        out.write(line([_cell(row.get(c)) for c in columns]))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value or "-"
    return orjson.dumps(value).decode()
