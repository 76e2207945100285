"""What the analytics tests hold a report to: the plain GROUP BY (``ReportReader.scan``),
sums computed here from the raw CDR rows by the definitions in docs/analytics.md, and
rollup tables with no empty rows that equal a rebuild from the CDRs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from voicecdr import analytics
from voicecdr.analytics import SHORT_CALL_SECONDS, AnalyticsQuery, Dimension, Report, Sums
from voicecdr.models import App, CostStatus, Service
from voicecdr.storage import Database, ReportReader, rollups
from voicecdr.timefmt import zone

ROLLUP_TABLES = ("rollup_hours", "rollup_days", "rollup_prefixes")
_COLUMNS = (
    "placed_at, service, country_code, connected, billsec, answered_at, cost_status, "
    "cycle, size, cost_nanos, rate_prefix, hangup_cause, hangup_disposition, region"
)

# Zones with DST changes, 30- and 45-minute offsets, a half-hour clock change, and UTC.
ZONES = (
    "America/New_York",
    "Europe/London",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "UTC",
)


def assert_exact(db: Database, app: App, query: AnalyticsQuery) -> Report:
    """The report equals the scan (as JSON and as sums) and the sums made here."""
    reader = ReportReader(db)
    report = reader.report(app, query)
    scan = reader.scan(app, query)
    assert analytics.to_json(report) == analytics.to_json(scan), query
    periods = [(report, scan)]
    if report.previous is not None and scan.previous is not None:
        periods.append((report.previous, scan.previous))
    for mine, plain in periods:
        assert [(g.key, g.sums) for g in mine.groups] == [(g.key, g.sums) for g in plain.groups]
        assert mine.total == plain.total
        groups, total = oracle(db, app, mine.query)
        assert {g.key: g.sums for g in mine.groups} == groups, mine.query
        assert mine.total == total, mine.query
    assert analytics.to_csv(report) == analytics.to_csv(scan)
    return report


def oracle(db: Database, app: App, query: AnalyticsQuery) -> tuple[dict[Any, Sums], Sums]:
    """The groups and total of ``query``, summed in Python from the app's CDR rows."""
    with db.reader.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {_COLUMNS} FROM cdrs WHERE app_id = :app"), {"app": app.id}
        ).all()
    tz = zone(app.timezone)
    f = query.filters
    groups: dict[Any, Sums] = {}
    total = Sums()
    for row in rows:
        placed, service, country, connected = row[:4]
        status = row[6]
        service = Service(service)
        final = CostStatus(status) is CostStatus.FINAL
        if not query.start <= placed < query.end:
            continue
        if (
            (f.service is not None and service is not f.service)
            or (f.voice_group is not None and service.voice_group is not f.voice_group)
            or (f.country_code is not None and country != f.country_code)
            or (f.region is not None and row[13] != f.region)
            or (f.connected is not None and bool(connected) != f.connected)
            or (f.cost_status is not None and (f.cost_status is CostStatus.FINAL) != final)
        ):
            continue
        sums = _call_sums(row)
        key = tuple(_value(d, placed, tz, row) for d in query.group_by)
        groups.setdefault(key, Sums()).add(sums)
        total.add(sums)
    return groups, total


def _call_sums(row: Any) -> Sums:
    """One call's part of each sum: every call is an attempt; answered means connected;
    billable seconds, answer times and short calls count answered calls only; billed
    seconds and cost count priced (final) calls only."""
    placed, _, _, connected, billsec, answered, status, cycle, size, cost = row[:10]
    final = CostStatus(status) is CostStatus.FINAL
    answered_call = bool(connected)
    timed = answered_call and answered is not None
    return Sums(
        attempts=1,
        answered=int(answered_call),
        billsec=billsec if answered_call else 0,
        answer_wait=answered - placed if timed else 0,
        answer_timed=int(timed),
        short_calls=int(answered_call and billsec < SHORT_CALL_SECONDS),
        priced=int(final),
        billed_seconds=cycle * size if final else 0,
        cost_nanos=cost if final else 0,
    )


def _value(dim: Dimension, placed: int, tz: Any, row: Any) -> str | None:
    local = datetime.fromtimestamp(placed, tz)
    if dim is Dimension.HOUR:
        return hour_label(placed, tz)
    if dim is Dimension.DAY:
        return local.date().isoformat()
    if dim is Dimension.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if dim is Dimension.MONTH:
        return f"{local.year:04d}-{local.month:02d}"
    if dim is Dimension.SERVICE:
        return Service(row[1]).wire_name
    if dim is Dimension.COUNTRY_CODE:
        return str(row[2])
    if dim is Dimension.PREFIX:
        return None if row[10] is None else str(row[10])
    if dim is Dimension.HANGUP_CAUSE:
        return str(row[11])
    if dim is Dimension.REGION:
        return None if row[13] is None else str(row[13])
    return str(row[12])


def hour_label(placed: int, tz: Any) -> str:
    """The local hour holding ``placed``: the run of instants sharing its local date, hour
    and UTC offset, labelled by the run's first instant (offsets change on quarter hours)."""

    def reading(t: int) -> tuple[Any, ...]:
        local = datetime.fromtimestamp(t, tz)
        return local.date(), local.hour, local.utcoffset()

    mine = reading(placed)
    first = placed - placed % 900
    while reading(first - 900) == mine:
        first -= 900
    return datetime.fromtimestamp(first, tz).isoformat(timespec="minutes")


def empty_rollup_rows(db: Database) -> dict[str, int]:
    """Rows of each rollup table that hold no call (a subtraction must delete them)."""
    with db.reader.connect() as conn:
        return {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t} WHERE attempts = 0")).scalar_one()
            for t in ROLLUP_TABLES
        }


def assert_rollups_as_rebuilt(db: Database, app_ids: Iterable[int]) -> None:
    """Each app's rollup rows are those a rebuild from its CDRs makes (the rebuild is
    rolled back), and none is empty."""
    assert empty_rollup_rows(db) == dict.fromkeys(ROLLUP_TABLES, 0)
    with db.writer.connect() as conn:
        transaction = conn.begin()
        try:
            for app_id in app_ids:
                kept = _rows(conn, app_id)
                rollups.rebuild(conn, db.dialect, app_id)
                assert kept == _rows(conn, app_id), app_id
        finally:
            transaction.rollback()


def _rows(conn: sa.Connection, app_id: int) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for table in ROLLUP_TABLES:
        rows = conn.execute(
            sa.text(f"SELECT * FROM {table} WHERE app_id = :app"), {"app": app_id}
        ).all()
        found[table] = sorted(tuple(r) for r in rows)
    return found
