"""Rollups: the sums of :class:`~voicecdr.analytics.Sums` over each app's CDRs, by local
hour and by local day, kept in the transactions that write the CDRs (no job to run, no
drift), so analytics reads a few hundred rows instead of every call.

Three tables (``schema.py``), each keyed by app and the instant its local unit begins in
the app's timezone (``bucket``):

- ``rollup_hours``: per local hour, no other key: time series (calls per hour, day, week,
  month) of any window.
- ``rollup_days``: per local day and service, country code, region, connected, hangup
  cause and disposition: any filter and grouping at a day's resolution. Beside each call sum it
  keeps the pending calls' part (``pending_*``), so a cost-status filter needs no key of
  its own and rating updates a row in place instead of moving calls between rows.
- ``rollup_prefixes``: priced calls per local day, rate prefix, service, country code and
  region.

Who writes what, each in the transaction of its own write (:class:`Tally`):

- ingest: a new CDR adds its call to the hour and day (pending, so its pending part too);
- the rater and re-rating: a CDR turning final moves its call's pending part to priced and
  adds its prefix row; leaving final (re-rated to no rate) undoes that;
- retention: what a prune removes is subtracted (``subtract_before``), rows left empty go;
- an app's timezone change rebuilds its rows from its CDRs (``rebuild``).

The buckets depend on the app's timezone, read inside each writing transaction: on
PostgreSQL with ``FOR SHARE`` on the app rows, so a timezone change (an UPDATE of the row)
waits for writers in flight, and writers after it see the new zone.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..analytics import (
    PENDING_SUM_NAMES,
    QUARTER,
    SHORT_CALL_SECONDS,
    SUM_NAMES,
    SUMMED,
    Sums,
    hour_start,
)
from ..timefmt import wall_to_epoch, zone
from . import citus

NO_PREFIX = "-"  # rollup_prefixes: a priced CDR without a recorded prefix (the key holds no NULL)
NO_REGION = ""  # a CDR whose number has no region (cdrs.region NULL), as a key holds it
KEPT_QUARTERS = 100_000  # a zone's kept quarters (over 2 years of them), then it starts over

HOUR_KEY = ("app_id", "bucket")
DAY_KEY = (
    "app_id",
    "bucket",
    "service",
    "country_code",
    "region",
    "connected",
    "hangup_cause",
    "hangup_disposition",
)
PREFIX_KEY = ("app_id", "bucket", "prefix", "service", "country_code", "region")
DAY_SUMS = (*SUM_NAMES, *PENDING_SUM_NAMES)
_N = len(SUM_NAMES)
# Tally's loops index the sums by position: this is the order they are written for.
assert DAY_SUMS == (
    "attempts",
    "answered",
    "billsec",
    "answer_wait",
    "answer_timed",
    "short_calls",
    "priced",
    "billed_seconds",
    "cost_nanos",
    "pending_answered",
    "pending_billsec",
    "pending_answer_wait",
    "pending_answer_timed",
    "pending_short_calls",
)

# The columns a CDR is tallied from, in this order (:meth:`Tally.calls`).
CALL_COLUMNS = (
    "app_id",
    "placed_at",
    "service",
    "country_code",
    "region",
    "connected",
    "hangup_cause",
    "hangup_disposition",
    "billsec",
    "answered_at",
)
CallFact = tuple[int, int, int, str, str | None, Any, str, str, int, int | None]


class Buckets:
    """An app's local hour and day holding an instant, as the instants they begin,
    kept by quarter hour in :attr:`known` (both are the same for every second of a
    quarter) for the tally's loops to look up without a call."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.known: dict[int, tuple[int, int]] = {}
        self._midnights: dict[tuple[int, int, int], int] = {}

    def __call__(self, epoch: int) -> tuple[int, int]:
        quarter = epoch - epoch % QUARTER
        found = self.known.get(quarter)
        if found is None:
            if len(self.known) >= KEPT_QUARTERS:
                self.known.clear()
                self._midnights.clear()
            found = self._compute(quarter)
            if found[0] == self._compute(quarter + QUARTER - 1)[0]:
                self.known[quarter] = found
            else:  # an offset off the quarter hours (before 1972): no sharing
                return self._compute(epoch)
        return found

    def _compute(self, epoch: int) -> tuple[int, int]:
        local = datetime.fromtimestamp(epoch, self.tz)
        key = (local.year, local.month, local.day)
        midnight = self._midnights.get(key)
        if midnight is None:
            midnight = self._midnights[key] = wall_to_epoch(datetime(*key), self.tz)
        return hour_start(epoch, local), midnight


_DAY_WIDTH = len(DAY_SUMS)


class Tally:
    """Changes to the rollups from one transaction's writes, summed by row, then written
    by :meth:`write`. ``buckets``: each app's :class:`Buckets` (see :func:`zones`).

    The loops run for every CDR ingested and rated, so they are written for speed: the
    sums are lists indexed as ``SUM_NAMES`` (then ``PENDING_SUM_NAMES`` on a day's row)."""

    def __init__(self, buckets: dict[int, Buckets]) -> None:
        self.buckets = buckets
        self.hours: dict[tuple[Any, ...], list[int]] = {}
        self.days: dict[tuple[Any, ...], list[int]] = {}
        self.prefixes: dict[tuple[Any, ...], list[int]] = {}
        self.subtracted = False

    def calls(self, facts: Iterable[CallFact], sign: int = 1) -> None:
        """CDRs stored (``sign`` 1, pending as every new CDR is) or removed (-1; a final
        one also needs :meth:`charges` with -1)."""
        if sign < 0:
            self.subtracted = True
        hours, days, buckets = self.hours, self.days, self.buckets
        for (
            app_id,
            placed,
            service,
            country,
            region,
            connected,
            cause,
            disposition,
            billsec,
            answered,
        ) in facts:
            clock = buckets[app_id]
            found = clock.known.get(placed - placed % QUARTER)
            hour, day = clock(placed) if found is None else found
            row = hours.get((app_id, hour))
            if row is None:
                row = hours[(app_id, hour)] = [0] * _N
            connected = bool(connected)
            region = region or NO_REGION
            dkey = (app_id, day, service, country, region, connected, cause, disposition)
            drow = days.get(dkey)
            if drow is None:
                drow = days[dkey] = [0] * _DAY_WIDTH
            row[0] += sign
            drow[0] += sign
            if connected:
                seconds = sign * billsec
                short = sign if billsec < SHORT_CALL_SECONDS else 0
                # The hour's and the day's call sums, and the day's pending part of them.
                row[1] += sign
                row[2] += seconds
                row[5] += short
                drow[1] += sign
                drow[2] += seconds
                drow[5] += short
                drow[9] += sign
                drow[10] += seconds
                drow[13] += short
                if answered is not None:
                    wait = sign * (answered - placed)
                    row[3] += wait
                    row[4] += sign
                    drow[3] += wait
                    drow[4] += sign
                    drow[11] += wait
                    drow[12] += sign

    def charges(
        self, charged: Iterable[tuple[CallFact, str | None, int, int]], sign: int = 1
    ) -> None:
        """CDRs turning final (``sign`` 1), each with the prefix of the rate that priced
        it, its billed seconds and cost (nanos); or leaving final (-1)."""
        if sign < 0:
            self.subtracted = True
        hours, days, prefixes, buckets = self.hours, self.days, self.prefixes, self.buckets
        for fact, prefix, billed, cost in charged:
            (
                app_id,
                placed,
                service,
                country,
                region,
                connected,
                cause,
                disposition,
                billsec,
                answered,
            ) = fact
            clock = buckets[app_id]
            found = clock.known.get(placed - placed % QUARTER)
            hour, day = clock(placed) if found is None else found
            row = hours.get((app_id, hour))
            if row is None:
                row = hours[(app_id, hour)] = [0] * _N
            connected = bool(connected)
            region = region or NO_REGION
            dkey = (app_id, day, service, country, region, connected, cause, disposition)
            drow = days.get(dkey)
            if drow is None:
                drow = days[dkey] = [0] * _DAY_WIDTH
            pkey = (app_id, day, NO_PREFIX if prefix is None else prefix, service, country, region)
            prow = prefixes.get(pkey)
            if prow is None:
                prow = prefixes[pkey] = [0] * _N
            billed *= sign
            cost *= sign
            row[6] += sign
            row[7] += billed
            row[8] += cost
            drow[6] += sign
            drow[7] += billed
            drow[8] += cost
            prow[0] += sign
            prow[6] += sign
            prow[7] += billed
            prow[8] += cost
            if connected:
                # Priced: out of the day's pending part, into the prefix's sums.
                seconds = sign * billsec
                short = sign if billsec < SHORT_CALL_SECONDS else 0
                prow[1] += sign
                prow[2] += seconds
                prow[5] += short
                drow[9] -= sign
                drow[10] -= seconds
                drow[13] -= short
                if answered is not None:
                    wait = sign * (answered - placed)
                    prow[3] += wait
                    prow[4] += sign
                    drow[11] -= wait
                    drow[12] -= sign

    def write(self, conn: sa.Connection, dialect: str) -> None:
        """Add the tallied changes to the rollups; rows a subtraction emptied go."""
        for table, key, names, changes in (
            ("rollup_hours", HOUR_KEY, SUM_NAMES, self.hours),
            ("rollup_days", DAY_KEY, DAY_SUMS, self.days),
            ("rollup_prefixes", PREFIX_KEY, SUM_NAMES, self.prefixes),
        ):
            rows = sorted((*k, *v) for k, v in changes.items() if any(v))
            if not rows:
                continue
            _upsert(conn, dialect, table, key, names, rows)
            if self.subtracted:
                _drop_empty(conn, dialect, table, key, [r[: len(key)] for r in rows])


def _upsert(
    conn: sa.Connection,
    dialect: str,
    table: str,
    key: Sequence[str],
    names: Sequence[str],
    rows: list[tuple[Any, ...]],
) -> None:
    columns = (*key, *names)
    added = ", ".join(f"{n} = {table}.{n} + excluded.{n}" for n in names)
    conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {added}"
    if dialect == "sqlite":
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) {conflict}"
        conn.exec_driver_sql(sql, rows)
        return
    # PostgreSQL: the rows as one array per column, one statement, in key order (sorted
    # above) so that concurrent writers lock rows in one order.
    types = [_PG_TYPES[c] for c in columns]
    arrays = ", ".join(f"%s::{t}[]" for t in types)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) {conflict}"
    conn.exec_driver_sql(sql, tuple(list(c) for c in zip(*rows, strict=True)))


def _drop_empty(
    conn: sa.Connection, dialect: str, table: str, key: Sequence[str], keys: list[tuple[Any, ...]]
) -> None:
    if dialect == "sqlite":
        where = " AND ".join(f"{k} = ?" for k in key)
        conn.exec_driver_sql(f"DELETE FROM {table} WHERE {where} AND attempts = 0", keys)
        return
    arrays = ", ".join(f"%s::{_PG_TYPES[k]}[]" for k in key)
    match = " AND ".join(f"t.{k} = g.{k}" for k in key)
    conn.exec_driver_sql(
        f"DELETE FROM {table} t USING unnest({arrays}) AS g ({', '.join(key)}) "
        f"WHERE {match} AND t.attempts = 0",
        tuple(list(c) for c in zip(*keys, strict=True)),
    )


_PG_TYPES = {
    "app_id": "integer",
    "bucket": "bigint",
    "service": "smallint",
    "country_code": "varchar",
    "region": "varchar",
    "connected": "boolean",
    "hangup_cause": "varchar",
    "hangup_disposition": "varchar",
    "prefix": "varchar",
    **dict.fromkeys(DAY_SUMS, "bigint"),
}


def zones(
    conn: sa.Connection, dialect: str, app_ids: Iterable[int], *, distributed: bool = False
) -> dict[int, Buckets]:
    """Each app's :class:`Buckets`, its timezone read in the caller's transaction; on
    PostgreSQL the app rows are held ``FOR SHARE`` until it ends (see the module), on
    Citus (``distributed``) the zones' shared lock instead (``citus.hold_zones``)."""
    ids = sorted(set(app_ids))
    if not ids:
        return {}
    lock = " FOR SHARE" if dialect == "postgresql" and not distributed else ""
    if distributed:
        citus.hold_zones(conn, exclusive=False)
    marks = ", ".join(str(int(i)) for i in ids)
    rows = conn.exec_driver_sql(
        f"SELECT id, timezone FROM apps WHERE id IN ({marks}) ORDER BY id{lock}"
    ).all()
    return {app_id: buckets_of(tz) for app_id, tz in rows}


@functools.lru_cache(maxsize=256)
def buckets_of(timezone: str) -> Buckets:
    # One per zone for the process: what it computed holds for every later transaction
    # (docs/performance.md#analytics-issue-22).
    return Buckets(zone(timezone))


def tally_calls(
    conn: sa.Connection,
    dialect: str,
    facts: Sequence[CallFact],
    sign: int = 1,
    *,
    distributed: bool = False,
) -> Tally:
    """A tally of new (or removed, pending) CDRs, ``facts`` in :data:`CALL_COLUMNS` order."""
    tally = Tally(zones(conn, dialect, {f[0] for f in facts}, distributed=distributed))
    tally.calls(facts, sign)
    return tally


# -- removing and rebuilding -------------------------------------------------------------

_FACTS = ", ".join(CALL_COLUMNS)
_CHARGE = "cost_status, rate_prefix, cycle * size, cost_nanos"


def tally_rows(tally: Tally, rows: Iterable[Sequence[Any]], sign: int) -> None:
    """Add (``sign`` 1) or remove (-1) stored CDRs read as ``_FACTS, _CHARGE``."""
    n = len(CALL_COLUMNS)
    facts: list[CallFact] = []
    charged: list[tuple[CallFact, str | None, int, int]] = []
    for row in rows:
        fact = cast("CallFact", tuple(row[:n]))
        facts.append(fact)
        if row[n]:  # final
            charged.append((fact, row[n + 1], row[n + 2], row[n + 3]))
    tally.calls(facts, sign)
    tally.charges(charged, sign)


def stored_facts_sql(where: str, *, leading: str = "") -> str:
    """What :func:`tally_rows` reads of the CDRs matching ``where`` (after the columns
    ``leading``, if any)."""
    first = f"{leading}, " if leading else ""
    return f"SELECT {first}{_FACTS}, {_CHARGE} FROM cdrs WHERE {where}"


def subtract_before(
    conn: sa.Connection, dialect: str, cut: int, *, distributed: bool = False
) -> None:
    """Remove from the rollups every CDR placed before ``cut``, before they are dropped
    (PostgreSQL's retention, in its transaction): rows of units that end by ``cut`` are
    deleted whole; the unit holding ``cut`` has the CDRs in it before ``cut`` subtracted."""
    every = [r[0] for r in conn.exec_driver_sql("SELECT id FROM apps").all()]
    buckets = zones(conn, dialect, every, distributed=distributed)
    for app_id, clock in buckets.items():
        hour, day = clock(cut)
        params = {"app": app_id, "hour": hour, "day": day}
        conn.execute(
            sa.text("DELETE FROM rollup_hours WHERE app_id = :app AND bucket < :hour"), params
        )
        for table in ("rollup_days", "rollup_prefixes"):
            conn.execute(
                sa.text(f"DELETE FROM {table} WHERE app_id = :app AND bucket < :day"), params
            )
        # The unit holding the cut: only its own rows are touched by the subtraction.
        tally = Tally(buckets)
        rows = conn.execute(
            sa.text(stored_facts_sql("app_id = :app AND placed_at >= :day AND placed_at < :cut")),
            {"app": app_id, "day": day, "cut": cut},
        )
        tally_rows(tally, rows, -1)
        tally.hours = {k: v for k, v in tally.hours.items() if k[1] == hour}
        tally.write(conn, dialect)


def rebuild(conn: sa.Connection, dialect: str, app_id: int, *, distributed: bool = False) -> None:
    """The app's rollups made again from its CDRs, in its (new) timezone; run in the
    transaction that changes the timezone, after the change (on Citus, ``distributed``,
    that transaction holds the zones' lock exclusively: ``citus.hold_zones``)."""
    for table in ("rollup_hours", "rollup_days", "rollup_prefixes"):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE app_id = :app"), {"app": app_id})
    tally = Tally(zones(conn, dialect, [app_id], distributed=distributed))
    # Streamed (a server-side cursor on PostgreSQL): an app may have millions of CDRs.
    query = sa.text(stored_facts_sql("app_id = :app")).execution_options(yield_per=10_000)
    rows = conn.execute(query, {"app": app_id})
    tally_rows(tally, rows, 1)
    tally.write(conn, dialect)


# -- reading -----------------------------------------------------------------------------

# Sums as read from rollup_days under a cost-status filter: the final calls' part (the
# whole less the pending part), or the pending part.
_DAY_FINAL = {
    "attempts": "priced",
    **{n: f"{n} - pending_{n}" for n in SUM_NAMES[1:6]},
    "priced": "priced",
    "billed_seconds": "billed_seconds",
    "cost_nanos": "cost_nanos",
}
_DAY_PENDING = {
    "attempts": "attempts - priced",
    **{n: f"pending_{n}" for n in SUM_NAMES[1:6]},
    "priced": "0",
    "billed_seconds": "0",
    "cost_nanos": "0",
}
_PLAIN = {n: n for n in SUM_NAMES}

Row = tuple[int, tuple[Any, ...], Sums]  # bucket (a unit's start or a quarter), dims, sums


def _sums(values: Sequence[Any]) -> Sums:
    return Sums(*(int(v) for v in values))


def read_table(
    conn: sa.Connection,
    table: str,
    app_id: int,
    lo: int,
    hi: int,
    dims: Sequence[str],
    where: Sequence[str],
    params: dict[str, Any],
    cost: str | None = None,
) -> list[Row]:
    """Sums of ``table``'s rows of ``app_id`` with a bucket in ``[lo, hi)``, by bucket and
    ``dims`` (its columns), under ``where`` (conditions on its columns); on rollup_days
    ``cost`` ("final", "pending") takes that part of the sums."""
    exprs = {"final": _DAY_FINAL, "pending": _DAY_PENDING}.get(cost or "", _PLAIN)
    group = ", ".join(["bucket", *dims])
    sums = ", ".join(f"sum({exprs[n]})" for n in SUM_NAMES)
    conditions = " AND ".join(["app_id = :app", "bucket >= :lo", "bucket < :hi", *where])
    sql = f"SELECT {group}, {sums} FROM {table} WHERE {conditions} GROUP BY {group}"
    found = conn.execute(sa.text(sql), {**params, "app": app_id, "lo": lo, "hi": hi})
    k = len(dims)
    return [(r[0], tuple(r[1 : 1 + k]), _sums(r[1 + k :])) for r in found]


def scan(
    conn: sa.Connection,
    app_id: int,
    lo: int,
    hi: int,
    dims: Sequence[str],
    where: Sequence[str],
    params: dict[str, Any],
) -> list[Row]:
    """The plain GROUP BY: sums of the app's CDRs placed in ``[lo, hi)``, by UTC quarter
    hour of ``placed_at`` and ``dims`` (``cdrs`` columns), under ``where``; each sum as
    ``analytics.SUMMED`` defines it. (Quarters fold into any zone's hours and days.)"""
    group = ", ".join([f"placed_at - placed_at % {QUARTER}", *dims])
    sums = ", ".join(f"sum({SUMMED[n]})" for n in SUM_NAMES)
    conditions = " AND ".join(
        ["app_id = :app", "voice_group IN (0, 1)", "placed_at >= :lo", "placed_at < :hi", *where]
    )
    sql = f"SELECT {group}, {sums} FROM cdrs WHERE {conditions} GROUP BY {group}"
    found = conn.execute(sa.text(sql), {**params, "app": app_id, "lo": lo, "hi": hi})
    k = len(dims)
    return [(r[0], tuple(r[1 : 1 + k]), _sums(r[1 + k :])) for r in found]
