"""``stats``: an app's call figures (attempts, ASR, ACD, cost…) for a window, as
``GET /v1/analytics`` answers them, with ``--check`` to prove the rollups against the CDRs.

Each option's destination is its parameter of the HTTP endpoint, so one parser
(:func:`voicecdr.analytics.parse_query`) reads both, and its errors name the option back.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click
import orjson

from ._base import Context, find_app, json_flag, main, pass_ctx, table

if TYPE_CHECKING:
    from ..analytics import AnalyticsError, Report, Sums


@main.command("stats")
@click.argument("appkey")
@click.option(
    "--from",
    "from",
    required=True,
    metavar="TIME",
    help="Start of the window, included: yyyy-MM-dd, yyyy-MM-dd HH:mm:ss (the app's "
    "timezone) or ISO 8601.",
)
@click.option("--to", "to", required=True, metavar="TIME", help="End, excluded; same forms.")
@click.option(
    "--by",
    "group_by",
    metavar="DIM[,DIM]",
    help="Group by up to two of hour, day, week, month, country (country_code), region, "
    "prefix, service, hangup_cause, hangup_disposition.",
)
@click.option("--service", "service", metavar="S", help="group_call, verification or notification.")
@click.option(
    "--voice-type", "voice_type", metavar="0|1", help="0 group calls; 1 the other services."
)
@click.option("--country-code", "country_code", metavar="CC", help="Only calls to this code.")
@click.option(
    "--region", "region", metavar="XX", help="Only calls to this region (ISO 3166-1 alpha-2)."
)
@click.option(
    "--connected/--not-connected",
    "connected",
    default=None,
    help="Only answered calls, or only the others.",
)
@click.option("--cost-status", "cost_status", metavar="pending|final", help="Only these calls.")
@click.option(
    "--compare", "compare", metavar="previous", help="Also the previous period of the same length."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    help="[default: table on a terminal, else json]",
)
@click.option(
    "--check",
    is_flag=True,
    help="Also compute the report by a plain GROUP BY over the CDRs; exit 1 if they differ.",
)
@json_flag
@pass_ctx
def stats_command(
    obj: Context,
    /,
    appkey: str,
    fmt: str | None,
    check: bool,
    **given: str | bool | None,
) -> None:
    """Print an app's call figures for calls placed in [--from, --to).

    Every figure is defined in docs/analytics.md; the figures are those of
    GET /v1/analytics, read from the rollups kept as CDRs are written.
    """
    from .. import analytics
    from ..storage import ReportReader
    from ..timefmt import zone

    if obj.json_output:
        if fmt not in (None, "json"):
            raise click.UsageError(f"--json and --format {fmt} disagree: give one of them")
        fmt = "json"
    params = {
        name: str(value).lower() if isinstance(value, bool) else value
        for name, value in given.items()
        if value is not None
    }
    with obj.database() as db:
        app = find_app(db, appkey)
        reader = ReportReader(db)
        try:
            query = analytics.parse_query(params, zone(app.timezone))
            scanned = None
            if check:
                report, scanned = reader.report_and_scan(app, query)
            else:
                report = reader.report(app, query)
        except analytics.AnalyticsError as exc:
            raise _usage(exc) from None
    if fmt is None:
        fmt = "table" if sys.stdout.isatty() else "json"
    if fmt == "json":
        click.echo(orjson.dumps(analytics.to_json(report), option=orjson.OPT_INDENT_2).decode())
    elif fmt == "csv":
        click.echo(analytics.to_csv(report), nl=False)
    else:
        click.echo(_text(report))
    if scanned is not None:
        differences = _drift(report, scanned)
        if differences:
            listed = "\n".join(differences[:_LISTED])
            more = len(differences) - _LISTED
            raise click.ClickException(
                f"rollups differ from the CDRs in {len(differences)} groups:\n{listed}"
                + (f"\n… and {more} more" if more > 0 else "")
            )
        click.echo("rollups match the CDRs", err=True)


_LISTED = 20  # differing groups shown by --check


def _usage(exc: AnalyticsError) -> click.UsageError:
    """The parser's error, naming the option where it names the parameter."""
    ctx = click.get_current_context()
    option = next(
        (p.opts[0] for p in ctx.command.params if p.name == exc.parameter),
        f"--{exc.parameter}",
    )
    message = str(exc)
    if message.startswith(f"{exc.parameter} "):
        message = option + message[len(exc.parameter) :]
    else:
        message = f"{option}: {message}"
    return click.UsageError(message, ctx)


def _drift(rolled: Report, scanned: Report) -> list[str]:
    """Where the rollups' report differs from the plain GROUP BY's: a line per group
    (and total) whose sums differ, with each sum that does."""
    from ..analytics import SUM_NAMES, Sums

    pairs = [("", rolled, scanned)]
    if rolled.previous is not None and scanned.previous is not None:
        pairs.append(("previous period: ", rolled.previous, scanned.previous))
    lines = []
    for period, mine, theirs in pairs:
        ours, truth = _by_label(mine), _by_label(theirs)
        for label in sorted(ours.keys() | truth.keys()):
            a, b = ours.get(label, Sums()), truth.get(label, Sums())
            if a != b:
                sums = ", ".join(
                    f"{n} {getattr(a, n)} (rollups) vs {getattr(b, n)} (CDRs)"
                    for n in SUM_NAMES
                    if getattr(a, n) != getattr(b, n)
                )
                lines.append(f"{period}{label}: {sums}")
    return lines


def _by_label(report: Report) -> dict[str, Sums]:
    names = [str(d) for d in report.query.group_by]
    found = {
        " ".join(f"{n}={_shown(v)}" for n, v in zip(names, g.key, strict=True)) or "all": g.sums
        for g in report.groups
    }
    found["total"] = report.total
    return found


def _shown(value: str | None) -> str:
    return "-" if value is None else value or "(any)"


# -- the table ---------------------------------------------------------------------------

# Column headings where the metric's name is not clear enough in capitals.
_HEADINGS = {
    "acd": "ACD/S",
    "avg_answer_seconds": "ANSWER/S",
    "billable_seconds": "BILLABLE/S",
    "billed_seconds": "BILLED/S",
    "short_calls": "SHORT",
}


def _text(report: Report) -> str:
    """Headed tables of the groups and their total, the previous period's after them."""
    from ..analytics import METRICS, Calendar
    from ..timefmt import zone

    calendar = Calendar(zone(report.app.timezone))
    query = report.query
    by = ", ".join(str(d) for d in query.group_by)
    filters = ", ".join(f"{k}={v}" for k, v in query.filters.shown().items())
    heading = (
        f"{report.app.appkey} ({report.app.timezone}): calls placed from "
        f"{calendar.iso(query.start)} to {calendar.iso(query.end)} (excluded)"
        + (f", by {by}" if by else "")
        + (f"; only {filters}" if filters else "")
    )
    names = [str(d) for d in query.group_by] or ["all"]
    columns = {n: n.upper() if n != "all" else "" for n in names}
    columns |= {m: _HEADINGS.get(m, m.upper()) for m in METRICS}
    parts = [heading, _period_table(report, names, columns)]
    if report.previous is not None:
        previous = report.previous.query
        parts += [
            "",
            f"previous period: from {calendar.iso(previous.start)} to "
            f"{calendar.iso(previous.end)} (excluded)",
            _period_table(report.previous, names, columns),
        ]
    return "\n".join(parts)


def _period_table(report: Report, names: list[str], columns: dict[str, str]) -> str:
    rows: list[dict[str, Any]] = []
    if report.query.group_by:
        rows += [
            {**dict(zip(names, map(_shown, g.key), strict=True)), **_cells(g.sums)}
            for g in report.groups
        ]
    total = dict.fromkeys(names, "")
    total[names[0]] = "total"
    rows.append({**total, **_cells(report.total)})
    return table(rows, columns, "")


def _cells(sums: Sums) -> dict[str, str]:
    from ..analytics import figures

    cells = {}
    for name, value in figures(sums).items():
        if value is None:
            cells[name] = "-"
        elif name == "asr":
            cells[name] = f"{value * 100:.2f}%"
        elif isinstance(value, float):
            cells[name] = f"{value:.2f}"
        else:
            cells[name] = str(value)
    return cells
