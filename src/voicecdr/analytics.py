"""Call analytics: what a question asks (:class:`AnalyticsQuery`), the sums that answer it
(:class:`Sums`), and the report made of them (:class:`Report`), rendered as JSON, CSV or
a table.

Every figure is a sum over stored CDRs or a ratio of two such sums, so the rollups kept in
``storage/rollups.py`` and a plain GROUP BY over ``cdrs`` give the same report
(``tests/property/test_analytics_exact.py`` holds them to it). docs/analytics.md defines
every metric; the definitions live in :data:`SUMMED` (how a CDR adds to each sum) and
:func:`figures` (the ratios).

Times: a window is half-open, ``[start, end)`` in Unix seconds; calendar dimensions (hour,
day, ISO week, month) are the app's local ones, each group keyed by the local time its unit
starts at.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import money
from .models import App, CostStatus, Service, VoiceGroup
from .timefmt import parse_api_time, wall_to_epoch

# An answered call shorter than this many billable seconds is a short call: the mark
# operators watch for robocalls, wrong numbers and voicemail drops (docs/analytics.md).
SHORT_CALL_SECONDS = 6
MAX_GROUP_BY = 2
MAX_WINDOW_DAYS = 400  # a window, and so the previous one compared with it
MAX_GROUPS = 50_000  # groups in one report: beyond, narrow the window or the dimensions
QUARTER = 900  # every modern zone's offsets and changes fall on quarter hours


class Dimension(enum.StrEnum):
    """What a report can be grouped by: a calendar unit in the app's timezone, or a
    field of the CDR (``prefix``: the rate-plan prefix that priced the call)."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    COUNTRY_CODE = "country_code"
    REGION = "region"  # ISO 3166-1 alpha-2 of the number (e164.py); null: none
    PREFIX = "prefix"
    SERVICE = "service"
    HANGUP_CAUSE = "hangup_cause"
    HANGUP_DISPOSITION = "hangup_disposition"

    @property
    def is_time(self) -> bool:
        return self in _TIME


_TIME = frozenset({Dimension.HOUR, Dimension.DAY, Dimension.WEEK, Dimension.MONTH})
# Other names a user may write for a dimension.
DIMENSION_ALIASES = {
    "country": Dimension.COUNTRY_CODE,
    "countrycode": Dimension.COUNTRY_CODE,
    "destination": Dimension.PREFIX,
    "cause": Dimension.HANGUP_CAUSE,
    "disposition": Dimension.HANGUP_DISPOSITION,
}


class AnalyticsError(ValueError):
    """A question that cannot be answered as asked: ``parameter`` names what to fix."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True, slots=True)
class Filters:
    """Which calls count: None is any."""

    service: Service | None = None
    voice_group: VoiceGroup | None = None
    country_code: str | None = None
    connected: bool | None = None
    cost_status: CostStatus | None = None
    region: str | None = None  # ISO 3166-1 alpha-2, upper case

    def shown(self) -> dict[str, Any]:
        """The filters set, as the report shows them."""
        given: dict[str, Any] = {}
        if self.service is not None:
            given["service"] = self.service.wire_name
        if self.voice_group is not None:
            given["voice_type"] = int(self.voice_group)
        if self.country_code is not None:
            given["country_code"] = self.country_code
        if self.region is not None:
            given["region"] = self.region
        if self.connected is not None:
            given["connected"] = self.connected
        if self.cost_status is not None:
            given["cost_status"] = self.cost_status.wire_name
        return given


@dataclass(frozen=True, slots=True)
class AnalyticsQuery:
    """One report's question: calls placed in ``[start, end)`` (Unix seconds)."""

    start: int
    end: int
    group_by: tuple[Dimension, ...] = ()
    filters: Filters = field(default_factory=Filters)
    compare: bool = False  # also the previous period of the same length

    def previous(self) -> AnalyticsQuery:
        span = self.end - self.start
        return replace(self, start=self.start - span, end=self.start, compare=False)


@dataclass(slots=True)
class Sums:
    """What a set of calls adds up to. ``priced``: calls with a final cost, whose size
    and cost ``billed_seconds`` and ``cost_nanos`` sum; the others are pending."""

    attempts: int = 0
    answered: int = 0
    billsec: int = 0  # billable seconds of answered calls
    answer_wait: int = 0  # seconds from placing to answering, of answered calls that say
    answer_timed: int = 0  # answered calls with an answer time
    short_calls: int = 0  # answered calls under SHORT_CALL_SECONDS billable seconds
    priced: int = 0
    billed_seconds: int = 0  # cycle x size of priced calls
    cost_nanos: int = 0  # of priced calls

    def add(self, other: Sums) -> None:
        # Written out: a report folds thousands of rows, and getattr/setattr by name cost
        # several times this (tests/unit/test_analytics_calendar.py checks every field).
        self.attempts += other.attempts
        self.answered += other.answered
        self.billsec += other.billsec
        self.answer_wait += other.answer_wait
        self.answer_timed += other.answer_timed
        self.short_calls += other.short_calls
        self.priced += other.priced
        self.billed_seconds += other.billed_seconds
        self.cost_nanos += other.cost_nanos

    @property
    def pending(self) -> int:
        return self.attempts - self.priced


SUM_NAMES = tuple(f.name for f in fields(Sums))
# The call sums (answered to short_calls) of the pending calls alone, which the daily
# rollup keeps beside the whole (storage/rollups.py).
PENDING_SUM_NAMES = tuple(f"pending_{n}" for n in SUM_NAMES[1:6])

# How one CDR adds to each sum, as SQL over ``cdrs`` columns (the same on SQLite, where
# ``connected`` is 0 or 1, and PostgreSQL): the definition the plain GROUP BY uses, and
# the one the rollups are held to.
_FINAL = int(CostStatus.FINAL)
SUMMED = {
    "attempts": "1",
    "answered": "CASE WHEN connected THEN 1 ELSE 0 END",
    "billsec": "CASE WHEN connected THEN billsec ELSE 0 END",
    "answer_wait": (
        "CASE WHEN connected AND answered_at IS NOT NULL THEN answered_at - placed_at ELSE 0 END"
    ),
    "answer_timed": "CASE WHEN connected AND answered_at IS NOT NULL THEN 1 ELSE 0 END",
    "short_calls": f"CASE WHEN connected AND billsec < {SHORT_CALL_SECONDS} THEN 1 ELSE 0 END",
    "priced": f"CASE WHEN cost_status = {_FINAL} THEN 1 ELSE 0 END",
    "billed_seconds": f"CASE WHEN cost_status = {_FINAL} THEN cycle * size ELSE 0 END",
    "cost_nanos": f"CASE WHEN cost_status = {_FINAL} THEN cost_nanos ELSE 0 END",
}
assert tuple(SUMMED) == SUM_NAMES


def figures(sums: Sums) -> dict[str, Any]:
    """The metrics of a group: sums as they are, ratios of them rounded for reading
    (None where the denominator is zero), cost as an exact decimal string."""
    return {
        "attempts": sums.attempts,
        "answered": sums.answered,
        "asr": _ratio(sums.answered, sums.attempts, 4),
        "acd": _ratio(sums.billsec, sums.answered, 2),
        "avg_answer_seconds": _ratio(sums.answer_wait, sums.answer_timed, 2),
        "billable_seconds": sums.billsec,
        "billed_seconds": sums.billed_seconds,
        "cost": money.text(sums.cost_nanos),
        "priced": sums.priced,
        "pending": sums.pending,
        "short_calls": sums.short_calls,
    }


def _ratio(numerator: int, denominator: int, places: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, places)


METRICS = tuple(figures(Sums()))


# -- calendar ----------------------------------------------------------------------------


class Calendar:
    """The app's local calendar: the unit (hour, day, ISO week, month) holding an instant,
    as the instant it starts and its label."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    def start(self, unit: Dimension, epoch: int) -> int:
        """The Unix second the local ``unit`` holding ``epoch`` starts at."""
        local = datetime.fromtimestamp(epoch, self.tz)
        if unit is Dimension.HOUR:
            return hour_start(epoch, local)
        day = local.date()
        if unit is Dimension.WEEK:
            day -= timedelta(days=day.weekday())
        elif unit is Dimension.MONTH:
            day = day.replace(day=1)
        return self.midnight(day.year, day.month, day.day)

    def midnight(self, year: int, month: int, day: int) -> int:
        """When a local day begins (its first instant, where a clock change skips 00:00)."""
        wall = datetime(year, month, day)
        return wall_to_epoch(wall, self.tz)

    def label(self, unit: Dimension, start: int) -> str:
        """``2026-12-01T10:00+05:30`` (hour), ``2026-12-01`` (day), ``2026-W49`` (ISO
        week), ``2026-12`` (month)."""
        local = datetime.fromtimestamp(start, self.tz)
        if unit is Dimension.HOUR:
            return local.isoformat(timespec="minutes")
        if unit is Dimension.DAY:
            return local.date().isoformat()
        if unit is Dimension.WEEK:
            year, week, _ = local.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{local.year:04d}-{local.month:02d}"

    def iso(self, epoch: int) -> str:
        return datetime.fromtimestamp(epoch, self.tz).isoformat()


def hour_start(epoch: int, local: datetime) -> int:
    """When the local hour holding ``epoch`` (``local`` is it in the app's zone) starts:
    the hour is the run of instants sharing its local hour and UTC offset, so the second
    01:00 of a night the clocks go back is an hour of its own, and an hour a half-hour
    change (Lord Howe) cuts starts at the change."""
    offset = local.utcoffset()
    assert offset is not None
    start = epoch - (epoch + int(offset.total_seconds())) % 3600
    while start < epoch and datetime.fromtimestamp(start, local.tzinfo).utcoffset() != offset:
        start += QUARTER
    return start


# -- the report --------------------------------------------------------------------------

Key = tuple[str | None, ...]  # one value per group_by dimension


@dataclass(frozen=True, slots=True)
class Group:
    """One group's key (a value per dimension, in ``group_by``'s order; a time value is
    its unit's label) and its sums. ``order`` sorts groups: time by instant."""

    key: Key
    sums: Sums
    order: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Report:
    app: App
    query: AnalyticsQuery
    groups: list[Group]
    total: Sums
    previous: Report | None = None


def to_json(report: Report) -> dict[str, Any]:
    """The report as ``GET /v1/analytics`` answers it (docs/analytics.md)."""
    calendar = Calendar(_zone(report.app))
    query = report.query
    body: dict[str, Any] = {
        "app": report.app.appkey,
        "timezone": report.app.timezone,
        "from": calendar.iso(query.start),
        "to": calendar.iso(query.end),
        "group_by": [str(d) for d in query.group_by],
        "filters": query.filters.shown(),
        "short_call_seconds": SHORT_CALL_SECONDS,
        **_period(report),
    }
    if report.previous is not None:
        previous = report.previous
        body["previous"] = {
            "from": calendar.iso(previous.query.start),
            "to": calendar.iso(previous.query.end),
            **_period(previous),
        }
    return body


def _period(report: Report) -> dict[str, Any]:
    names = [str(d) for d in report.query.group_by]
    return {
        "groups": [
            {"key": dict(zip(names, g.key, strict=True)), **figures(g.sums)} for g in report.groups
        ],
        "total": figures(report.total),
    }


def csv_rows(report: Report) -> Iterator[list[Any]]:
    """The report as CSV rows: a header, a row per group, then the total (its dimension
    cells say ``total``); with ``compare``, a first ``period`` column and the previous
    period's rows after the current one's."""
    names = [str(d) for d in report.query.group_by]
    compare = report.previous is not None
    yield (["period"] if compare else []) + names + list(METRICS)
    periods = [("current", report)]
    if report.previous is not None:
        periods.append(("previous", report.previous))
    for label, period in periods:
        lead = [label] if compare else []
        for g in period.groups:
            yield lead + ["" if v is None else v for v in g.key] + _cells(g.sums)
        yield lead + ["total"] * len(names) + _cells(period.total)


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(csv_rows(report))
    return out.getvalue()


def _cells(sums: Sums) -> list[Any]:
    return ["" if v is None else v for v in figures(sums).values()]


def _zone(app: App) -> ZoneInfo:
    from .timefmt import zone

    return zone(app.timezone)


# -- reading a question ------------------------------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LOCAL_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")
_DIGITS = re.compile(r"[0-9]{1,4}")
_REGION = re.compile(r"[A-Za-z]{2}")
PARAMETERS = frozenset(
    {
        "from",
        "to",
        "group_by",
        "service",
        "voice_type",
        "country_code",
        "region",
        "connected",
        "cost_status",
        "compare",
        "format",
        "app",
    }
)


# The instants a window may reach: far enough inside the years 1 to 9999 of ``datetime``
# that the window, the period before it and their local hours, days, weeks and months
# exist in every timezone.
EARLIEST = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp())
LATEST = int(datetime(9000, 1, 1, tzinfo=UTC).timestamp())
_RANGE = "the years 1900 and 9000"


def parse_time(text: str, tz: ZoneInfo, parameter: str) -> int:
    """A window bound: ``yyyy-MM-dd HH:mm:ss`` (NXCloud's), ``yyyy-MM-dd`` (midnight) or
    ISO 8601 without an offset, all in ``tz``; or ISO 8601 with an offset; between
    :data:`EARLIEST` and :data:`LATEST`."""
    try:
        epoch = _epoch(text.strip(), tz, parameter)
    except OverflowError:
        epoch = LATEST
    if not EARLIEST <= epoch < LATEST:
        raise AnalyticsError(parameter, f"{parameter} {text!r} is not between {_RANGE}")
    return epoch


def _epoch(text: str, tz: ZoneInfo, parameter: str) -> int:
    try:
        if _DATE.fullmatch(text):
            wall = datetime.fromisoformat(text)
            return wall_to_epoch(wall, tz)
        if " " in text:
            return wall_to_epoch(parse_api_time(text), tz)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise AnalyticsError(
            parameter,
            f"{parameter} {text!r} is not a time: write yyyy-MM-dd, yyyy-MM-dd HH:mm:ss "
            "(the app's timezone) or ISO 8601, e.g. 2026-12-01T00:00:00+05:30",
        ) from None
    if parsed.tzinfo is None:
        if not _LOCAL_ISO.fullmatch(text):
            raise AnalyticsError(parameter, f"{parameter} {text!r} is not a time")
        return wall_to_epoch(parsed, tz)
    return int(parsed.timestamp() // 1)  # (no astimezone: it overflows near years 1 and 9999)


def parse_group_by(text: str) -> tuple[Dimension, ...]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    chosen: list[Dimension] = []
    for name in names:
        dim = DIMENSION_ALIASES.get(name)
        if dim is None:
            try:
                dim = Dimension(name)
            except ValueError:
                allowed = ", ".join(d.value for d in Dimension)
                raise AnalyticsError(
                    "group_by", f"group_by {name!r} is not a dimension: use {allowed}"
                ) from None
        if dim in chosen:
            raise AnalyticsError("group_by", f"group_by names {dim} twice")
        chosen.append(dim)
    if len(chosen) > MAX_GROUP_BY:
        raise AnalyticsError("group_by", f"group_by takes at most {MAX_GROUP_BY} dimensions")
    if sum(d.is_time for d in chosen) > 1:
        raise AnalyticsError("group_by", "group_by takes at most one of hour, day, week, month")
    return tuple(chosen)


def _flag(text: str, parameter: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise AnalyticsError(parameter, f"{parameter} must be true or false, not {text!r}")


def parse_filters(params: Mapping[str, str]) -> Filters:
    service = voice_group = country = connected = cost_status = region = None
    if (text := params.get("service")) is not None:
        try:
            service = Service.from_wire(text.strip())
        except KeyError:
            names = ", ".join(s.wire_name for s in Service)
            raise AnalyticsError("service", f"service {text!r} is not one of {names}") from None
    if (text := params.get("voice_type")) is not None:
        if text.strip() not in ("0", "1"):
            raise AnalyticsError("voice_type", "voice_type must be 0 (group call) or 1")
        voice_group = VoiceGroup(int(text))
    if (text := params.get("country_code")) is not None:
        if not _DIGITS.fullmatch(text.strip()):
            raise AnalyticsError("country_code", "country_code must be 1 to 4 digits 0-9")
        country = text.strip()
    if (text := params.get("region")) is not None:
        if not _REGION.fullmatch(text.strip()):
            raise AnalyticsError(
                "region", "region must be two letters A-Z (ISO 3166-1 alpha-2), e.g. IN"
            )
        region = text.strip().upper()
    if (text := params.get("connected")) is not None:
        connected = _flag(text, "connected")
    if (text := params.get("cost_status")) is not None:
        try:
            cost_status = CostStatus[text.strip().upper()]
        except KeyError:
            raise AnalyticsError("cost_status", "cost_status must be pending or final") from None
    return Filters(service, voice_group, country, connected, cost_status, region)


def parse_query(params: Mapping[str, str], tz: ZoneInfo) -> AnalyticsQuery:
    """A question from request parameters (or the CLI's options, by the same names);
    raises :class:`AnalyticsError` naming the parameter to fix."""
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise AnalyticsError(
            unknown[0],
            f"unknown parameter {unknown[0]!r}: use {', '.join(sorted(PARAMETERS))}",
        )
    for name in ("from", "to"):
        if not params.get(name, "").strip():
            raise AnalyticsError(name, f"{name} is required (the window is [from, to))")
    start = parse_time(params["from"], tz, "from")
    end = parse_time(params["to"], tz, "to")
    if end <= start:
        raise AnalyticsError("to", "to must be after from (the window is [from, to))")
    if end - start > MAX_WINDOW_DAYS * 86_400:
        raise AnalyticsError("to", f"the window must not exceed {MAX_WINDOW_DAYS} days")
    compare = False
    if (text := params.get("compare")) is not None and text.strip():
        if text.strip() != "previous":
            raise AnalyticsError("compare", "compare takes one value: previous")
        compare = True
        if start - (end - start) < EARLIEST:
            raise AnalyticsError("compare", "the previous period would begin before the year 1900")
    group_by = parse_group_by(params.get("group_by", ""))
    return AnalyticsQuery(start, end, group_by, parse_filters(params), compare)
