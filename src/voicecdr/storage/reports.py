"""Analytics reports: read from the rollups (``rollups.py``) where they hold the question's
detail, from the CDRs where not, all in one snapshot; or, for comparison, wholly by the
plain GROUP BY over the CDRs (:meth:`ReportReader.scan`).

A window ``[start, end)`` is cut into pieces, each read from the source that serves it:

    [start, h1)   CDRs: before the first local hour boundary (less than an hour)
    [h1, h2)      rollup_hours when the question has no filter and no dimension but time;
                  otherwise rollup_days / rollup_prefixes for the whole local days in it,
                  and the CDRs for the part-days at its ends (and for hour grouping)
    [h2, end)     CDRs: after the last local hour boundary

Every piece yields rows of (bucket, dimension values, sums), the bucket lying inside one
local hour, so the pieces fold into the question's calendar units alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from ..analytics import (
    MAX_GROUPS,
    AnalyticsError,
    AnalyticsQuery,
    Calendar,
    Dimension,
    Filters,
    Group,
    Report,
    Sums,
)
from ..models import App, Service
from ..timefmt import zone
from . import rollups
from .database import Database
from .engine import translated

# A dimension's column: in cdrs, and in the rollup tables (where it has one).
_CDR_COLUMN = {
    Dimension.COUNTRY_CODE: "country_code",
    Dimension.REGION: "region",
    Dimension.PREFIX: "rate_prefix",
    Dimension.SERVICE: "service",
    Dimension.HANGUP_CAUSE: "hangup_cause",
    Dimension.HANGUP_DISPOSITION: "hangup_disposition",
}
_ROLLUP_COLUMN = {**_CDR_COLUMN, Dimension.PREFIX: "prefix"}
# What rollup_prefixes has besides time: the dimensions and filters it can serve.
_PREFIX_DIMENSIONS = frozenset(
    {Dimension.PREFIX, Dimension.SERVICE, Dimension.COUNTRY_CODE, Dimension.REGION}
)

# One read of a piece: the rows, and the dimensions (in order) their values are for.
Piece = tuple[list[rollups.Row], tuple[Dimension, ...]]
Read = Callable[[sa.Connection], Piece]  # a piece's statement, run on the connection given


def _conditions(filters: Filters, *, cdrs: bool) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions and parameters for ``filters`` but the cost status (which each
    source applies its own way) and ``connected`` on rollup_prefixes (which has none)."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if filters.service is not None:
        where.append("service = :service")
        params["service"] = int(filters.service)
    if filters.voice_group is not None:
        services = [int(s) for s in Service if s.voice_group is filters.voice_group]
        where.append(f"service IN ({', '.join(map(str, services))})")
    if filters.country_code is not None:
        where.append("country_code = :country_code")
        params["country_code"] = filters.country_code
    if filters.region is not None:
        where.append("region = :region")
        params["region"] = filters.region
    if filters.connected is not None:
        where.append("connected = :connected")
        params["connected"] = filters.connected
    if cdrs and filters.cost_status is not None:
        where.append("cost_status = :cost_status")
        params["cost_status"] = int(filters.cost_status)
    return where, params


class ReportReader:
    """Answers :class:`~voicecdr.analytics.AnalyticsQuery` for an app."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def report(self, app: App, query: AnalyticsQuery) -> Report:
        """The report, from the rollups wherever they serve."""
        return self._answer(app, query, rollups_too=True)

    def scan(self, app: App, query: AnalyticsQuery) -> Report:
        """The same report by the plain GROUP BY over the CDRs alone."""
        return self._answer(app, query, rollups_too=False)

    def report_and_scan(self, app: App, query: AnalyticsQuery) -> tuple[Report, Report]:
        """Both, read in one snapshot: writes going on cannot make them differ."""
        both = [self._plan(app, query, True), self._plan(app, query, False)]
        with translated("read analytics"), self._db.snapshot(app.id) as conn:
            return _fold(app, query, both[0], conn), _fold(app, query, both[1], conn)

    def _answer(self, app: App, query: AnalyticsQuery, *, rollups_too: bool) -> Report:
        plan = self._plan(app, query, rollups_too)
        with translated("read analytics"), self._connection(app, plan) as conn:
            return _fold(app, query, plan, conn)

    def _plan(self, app: App, query: AnalyticsQuery, rollups_too: bool) -> list[_Period]:
        """The window's period, and the previous one when the question compares."""
        calendar = Calendar(zone(app.timezone))
        windows = [query, query.previous()] if query.compare else [query]
        return [_Period(app, calendar, q, rollups_too) for q in windows]

    def _connection(self, app: App, plan: list[_Period]) -> AbstractContextManager[sa.Connection]:
        """A snapshot for a report of several reads; one statement needs none, and on
        PostgreSQL it then skips the transaction's own round trips."""
        if sum(len(period.reads) for period in plan) > 1:
            return self._db.snapshot(app.id)
        if self._db.dialect == "postgresql":
            return self._db.autocommit.connect()
        return self._db.reader.connect()


def _fold(app: App, query: AnalyticsQuery, plan: list[_Period], conn: sa.Connection) -> Report:
    current, *previous = (period.report(conn) for period in plan)
    before = previous[0] if previous else None
    return Report(app, query, current.groups, current.total, before)


class _Period:
    """One window's report: its pieces read and folded into groups."""

    def __init__(
        self, app: App, calendar: Calendar, query: AnalyticsQuery, rollups_too: bool
    ) -> None:
        self.app = app
        self.calendar = calendar
        self.query = query
        self.rollups_too = rollups_too
        self.unit = next((d for d in query.group_by if d.is_time), None)
        self.dims = tuple(d for d in query.group_by if not d.is_time)
        # The statements that answer it, each run on the connection it is given.
        self.reads = [read for read in self._pieces() if read is not None]

    def report(self, conn: sa.Connection) -> Report:
        groups: dict[tuple[Any, ...], Group] = {}
        total = Sums()
        starts: dict[int, int] = {}  # bucket -> its unit's start
        position = {d: i for i, d in enumerate(self.query.group_by)}
        for read in self.reads:
            rows, dims = read(conn)
            for bucket, values, sums in rows:
                if not sums.attempts:  # a rollup row with none of the calls asked for
                    continue
                key: list[Any] = [None] * len(self.query.group_by)
                order: list[Any] = [None] * len(self.query.group_by)
                for dim, value in zip(dims, values, strict=True):
                    shown = _shown(dim, value)
                    key[position[dim]] = shown
                    order[position[dim]] = (shown is not None, shown or "")
                for dim in self.dims:
                    if dim not in dims:  # prefix of pending calls: none
                        order[position[dim]] = (False, "")
                if self.unit is not None:
                    start = starts.get(bucket)
                    if start is None:
                        start = starts[bucket] = self.calendar.start(self.unit, bucket)
                    key[position[self.unit]] = self.calendar.label(self.unit, start)
                    order[position[self.unit]] = start
                group = groups.get(tuple(key))
                if group is None:
                    if len(groups) >= MAX_GROUPS:
                        raise AnalyticsError(
                            "group_by",
                            f"more than {MAX_GROUPS:,} groups: narrow the window or the dimensions",
                        )
                    group = groups[tuple(key)] = Group(tuple(key), Sums(), tuple(order))
                group.sums.add(sums)
                total.add(sums)
        ordered = sorted(groups.values(), key=lambda g: g.order)
        return Report(self.app, self.query, ordered, total)

    # -- the pieces --------------------------------------------------------------------

    def _pieces(self) -> list[Read | None]:
        start, end = self.query.start, self.query.end
        if not self.rollups_too or not self._rollups_serve():
            return [self._cdrs(start, end)]
        hour = self.calendar.start(Dimension.HOUR, start)
        h1 = start if hour == start else self.calendar.start(Dimension.HOUR, hour + 3600)
        h2 = self.calendar.start(Dimension.HOUR, end)
        if h1 >= h2:
            return [self._cdrs(start, end)]
        pieces = [self._cdrs(start, h1), self._cdrs(h2, end)]
        filters = self.query.filters
        detail = bool(self.dims) or filters != Filters()
        if not detail:
            pieces.append(self._hours(h1, h2))
            return pieces
        if self.unit is Dimension.HOUR:
            pieces.append(self._cdrs(h1, h2))
            return pieces
        day = self.calendar.start(Dimension.DAY, h1)
        d1 = h1 if day == h1 else self._next_day(day)
        d2 = self.calendar.start(Dimension.DAY, h2)
        if d1 >= d2:
            pieces.append(self._cdrs(h1, h2))
            return pieces
        pieces += [self._cdrs(h1, d1), self._cdrs(d2, h2), *self._days(d1, d2)]
        return pieces

    def _rollups_serve(self) -> bool:
        """Whether the rollups hold the question's detail (at a day's resolution)."""
        if Dimension.PREFIX not in self.dims:
            return True
        # rollup_prefixes has no connected, hangup cause or disposition.
        return self.query.filters.connected is None and set(self.dims) <= _PREFIX_DIMENSIONS

    def _next_day(self, midnight: int) -> int:
        # A local day lasts 23 to 25 hours: 26 hours on is inside the next one.
        return self.calendar.start(Dimension.DAY, midnight + 26 * 3600)

    def _cdrs(self, lo: int, hi: int) -> Read | None:
        if lo >= hi:
            return None
        where, params = _conditions(self.query.filters, cdrs=True)
        columns = [_CDR_COLUMN[d] for d in self.dims]
        app_id, dims = self.app.id, self.dims

        def read(conn: sa.Connection) -> Piece:
            return rollups.scan(conn, app_id, lo, hi, columns, where, params), dims

        return read

    def _hours(self, lo: int, hi: int) -> Read:
        app_id = self.app.id

        def read(conn: sa.Connection) -> Piece:
            return rollups.read_table(conn, "rollup_hours", app_id, lo, hi, [], [], {}), ()

        return read

    def _days(self, lo: int, hi: int) -> list[Read]:
        filters = self.query.filters
        status = None if filters.cost_status is None else filters.cost_status.wire_name
        if Dimension.PREFIX not in self.dims:
            return [self._day_read("rollup_days", lo, hi, self.dims, status, connected=True)]
        reads: list[Read] = []
        if status != "pending":  # the priced calls, by prefix
            reads.append(
                self._day_read("rollup_prefixes", lo, hi, self.dims, None, connected=False)
            )
        if status != "final":  # the pending calls, which have no prefix
            rest = tuple(d for d in self.dims if d is not Dimension.PREFIX)
            reads.append(self._day_read("rollup_days", lo, hi, rest, "pending", connected=True))
        return reads

    def _day_read(
        self,
        table: str,
        lo: int,
        hi: int,
        dims: Sequence[Dimension],
        cost: str | None,
        *,
        connected: bool,
    ) -> Read:
        """A read of ``table`` (rollup_days or rollup_prefixes) for the days in [lo, hi);
        without ``connected`` the table has no such column to filter on."""
        filters = self.query.filters
        if not connected:
            filters = Filters(
                filters.service,
                filters.voice_group,
                filters.country_code,
                None,
                None,
                filters.region,
            )
        where, params = _conditions(filters, cdrs=False)
        columns = [_ROLLUP_COLUMN[d] for d in dims]
        app_id, keys = self.app.id, tuple(dims)

        def read(conn: sa.Connection) -> Piece:
            rows = rollups.read_table(conn, table, app_id, lo, hi, columns, where, params, cost)
            return rows, keys

        return read


def _shown(dim: Dimension, value: Any) -> str | None:
    """A dimension's value as the report shows it."""
    if dim is Dimension.SERVICE:
        return Service(int(value)).wire_name
    if dim is Dimension.PREFIX and (value is None or value == rollups.NO_PREFIX):
        return None
    if dim is Dimension.REGION and (value is None or value == rollups.NO_REGION):
        return None
    return None if value is None else str(value)
