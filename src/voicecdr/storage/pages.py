"""The query API's reads: one page of an app's CDRs and the exact total, in one snapshot.

The total is the window's head and tail rows, counted in the table, plus the sum of the
bucket counts between them (``counts``); a page starts at the bucket that holds its first
row, found by a running sum over those counts in the database. Both cost about the same
at any window size and any page, and neither sends more than one row per statement back
to Python (a window of 24 hours holds 288 buckets: returning them cost more than summing
them).

Rows come back whole (:data:`ROW_FIELDS`) or *stamped*: :data:`STAMP_FIELDS` only, for a
caller that keeps what it made of a row (the query API keeps rendered rows). A stamp is
exact: a stored call's content never changes after ingest (the same ``call_id`` with
another content is a conflict, refused, never an update) and ``content_hash`` is the hash
of all of it; rating changes only the other columns in the stamp. So two reads that give
the same stamp read the same row. The rows of the stamps the caller does not know are
read whole in the same snapshot.

On PostgreSQL a shallow page (the first :data:`AT_ONCE_ROWS` rows) is read with its total
in one statement outside a transaction, one round trip instead of four; the rows of
unknown stamps then come from a second statement, and are used only if each still
matches its stamp (ids are never reused there, and a row's content never changes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import counts

# A stored CDR as the query API reads it: a driver row, in ROW_FIELDS order.
RowTuple = Sequence[Any]
# A row's identity and everything about it that can change: a driver row, STAMP_FIELDS.
Stamp = tuple[Any, ...]
_T = TypeVar("_T")

# The columns rating writes that an answer shows (storage/rating.py; it also writes
# rate_plan_id, rated_at and pending_reason, which none shows). Nothing else about a stored
# row ever changes.
RATED_FIELDS = (
    "cost_status",
    "cycle",
    "size",
    "unit_price_nanos",
    "basic_price_nanos",
    "cost_nanos",
)
ROW_FIELDS = (
    "id",
    "service",
    "messageid",
    "phone",
    "country_code",
    "show_phone",
    "placed_at",
    "answered_at",
    "ended_at",
    "billsec",
    "connected",
    "hangup_cause",
    "hangup_disposition",
    "ivr_result",
    "record_url",
    *RATED_FIELDS,
)
STAMP_FIELDS = ("id", "placed_at", "content_hash", *RATED_FIELDS)
_STAMP_PLACED = STAMP_FIELDS.index("placed_at")
_STAMP_RATED = STAMP_FIELDS.index(RATED_FIELDS[0])  # the rated fields end both tuples
_ROW_RATED = ROW_FIELDS.index(RATED_FIELDS[0])
_ROW_PLACED = ROW_FIELDS.index("placed_at")


@dataclass(frozen=True, slots=True)
class RowPage:
    total: int
    rows: list[RowTuple]


@dataclass(frozen=True, slots=True)
class StampedPage(Generic[_T]):
    """A page as stamps, what the caller knew of each (None where nothing) and the whole
    rows of the stamps it did not know, by id."""

    total: int
    stamps: list[Stamp]
    known: list[_T | None]
    rows: dict[int, RowTuple]


_IN_GROUP = "app_id = :app AND voice_group = :grp"
# Pages starting before this row are read in one statement on PostgreSQL.
AT_ONCE_ROWS = 300
_HOUR = 3600
_WINDOW = (
    "placed_at >= :since AND placed_at <= :end ORDER BY placed_at, id LIMIT :limit OFFSET :skip"
)
SQL = {
    # One row: the head's rows, the whole buckets' sum, the tail's rows.
    "totals": (
        "SELECT "
        f"(SELECT count(*) FROM cdrs WHERE {_IN_GROUP} "
        "AND placed_at >= :start AND placed_at < :lo), "
        f"(SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM cdr_counts WHERE {_IN_GROUP} "
        "AND bucket >= :lo AND bucket < :hi), "
        f"(SELECT count(*) FROM cdrs WHERE {_IN_GROUP} "
        "AND placed_at >= :hi AND placed_at <= :end)"
    ),
    # The walk to the bucket holding a row: bucket counts, and their sums by hour.
    "buckets": (
        f"SELECT bucket, n FROM cdr_counts WHERE {_IN_GROUP} "
        "AND bucket >= :walk_from AND bucket < :walk_to ORDER BY bucket"
    ),
    "hours": (
        f"SELECT bucket - bucket % {_HOUR} AS hour, CAST(sum(n) AS BIGINT) FROM cdr_counts "
        f"WHERE {_IN_GROUP} AND bucket >= :walk_from AND bucket < :walk_to "
        "GROUP BY hour ORDER BY hour"
    ),
    "page": f"SELECT {', '.join(ROW_FIELDS)} FROM cdrs WHERE {_IN_GROUP} AND {_WINDOW}",
    # A shallow page and its total in one statement (see read_stamped_at_once).
    "stamps_at_once": (
        "SELECT "
        f"(SELECT count(*) FROM cdrs WHERE {_IN_GROUP} "
        "AND placed_at >= :start AND placed_at < :lo) + "
        f"(SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM cdr_counts WHERE {_IN_GROUP} "
        "AND bucket >= :lo AND bucket < :hi) + "
        f"(SELECT count(*) FROM cdrs WHERE {_IN_GROUP} "
        "AND placed_at >= :hi AND placed_at <= :end), "
        f"{', '.join(STAMP_FIELDS)} FROM cdrs WHERE {_IN_GROUP} "
        f"AND {_WINDOW}"
    ),
    "stamps": f"SELECT {', '.join(STAMP_FIELDS)} FROM cdrs WHERE {_IN_GROUP} AND {_WINDOW}",
    # Whole rows with their content hash last: a page whose stamps are mostly unknown.
    "page_hashed": (
        f"SELECT {', '.join(ROW_FIELDS)}, content_hash FROM cdrs WHERE {_IN_GROUP} AND {_WINDOW}"
    ),
    # The whole rows between two times (the unknown stamps of a page lie between them).
    "between": (
        f"SELECT {', '.join(ROW_FIELDS)} FROM cdrs WHERE {_IN_GROUP} "
        "AND placed_at >= :first AND placed_at <= :last"
    ),
    "count_mid": (
        f"SELECT count(*) FROM cdrs WHERE {_IN_GROUP} AND messageid = :mid "
        "AND placed_at >= :start AND placed_at <= :end"
    ),
    "page_mid": (
        f"SELECT {', '.join(ROW_FIELDS)} FROM cdrs WHERE {_IN_GROUP} AND messageid = :mid "
        "AND placed_at >= :start AND placed_at <= :end "
        "ORDER BY placed_at, id LIMIT :limit OFFSET :skip"
    ),
}


def window_params(app_id: int, group: int, start: int, end: int, limit: int) -> dict[str, Any]:
    """The parameters every statement here starts from; the reads add their own."""
    return {"app": app_id, "grp": int(group), "start": start, "end": end, "limit": limit}


def read_page(
    cursor: Any,
    sql: dict[str, str],
    params: dict[str, Any],
    *,
    messageid: str | None,
    offset: int,
) -> RowPage:
    """The whole rows of a page and the total. ``params`` is from :func:`window_params`;
    ``sql`` is :data:`SQL` in the driver's parameter style."""
    if messageid is not None:
        params.update(mid=messageid, skip=offset)
        total = cursor.execute(sql["count_mid"], params).fetchone()[0]
        page_sql = sql["page_mid"]
    else:
        total = _seek(cursor, sql, params, offset)
        page_sql = sql["page"]
    found = cursor.execute(page_sql, params).fetchall() if offset < total else []
    return RowPage(total, found)


def read_stamped(
    cursor: Any,
    sql: dict[str, str],
    params: dict[str, Any],
    *,
    offset: int,
    lookup: Callable[[list[Stamp]], list[_T | None]],
    whole: bool = False,
) -> StampedPage[_T]:
    """The page's stamps, ``lookup(stamps)`` (a value or None for each), and the whole
    rows of the stamps it gave None for; all in the cursor's snapshot. With ``whole``,
    every row is read whole at once and the stamps taken from them: cheaper when the
    caller expects to know few of them."""
    total = _seek(cursor, sql, params, offset)
    if whole:
        found = cursor.execute(sql["page_hashed"], params).fetchall() if offset < total else []
        stamps = [(r[0], r[_ROW_PLACED], r[-1], *r[_ROW_RATED:-1]) for r in found]
        known = lookup(stamps)
        rows = {r[0]: r[:-1] for r, value in zip(found, known, strict=True) if value is None}
        return StampedPage(total, stamps, known, rows)
    stamps = cursor.execute(sql["stamps"], params).fetchall() if offset < total else []
    known = lookup(stamps)
    return StampedPage(total, stamps, known, _unknown_rows(cursor, sql, params, stamps, known))


def _unknown_rows(
    cursor: Any,
    sql: dict[str, str],
    params: dict[str, Any],
    stamps: list[Stamp],
    known: list[Any],
) -> dict[int, RowTuple]:
    """The whole rows of the stamps ``known`` has None for, by id."""
    unknown = [stamp for stamp, value in zip(stamps, known, strict=True) if value is None]
    rows: dict[int, RowTuple] = {}
    if unknown:
        # Stamps are in (placed_at, id) order: the unknown ones lie between the first's
        # time and the last's, a range the query index reads directly.
        params.update(first=unknown[0][_STAMP_PLACED], last=unknown[-1][_STAMP_PLACED])
        wanted = {stamp[0] for stamp in unknown}
        for row in cursor.execute(sql["between"], params).fetchall():
            if row[0] in wanted:
                rows[row[0]] = row
    return rows


def read_stamped_at_once(
    cursor: Any,
    sql: dict[str, str],
    params: dict[str, Any],
    *,
    offset: int,
    lookup: Callable[[list[Stamp]], list[_T | None]],
) -> StampedPage[_T] | None:
    """:func:`read_stamped` for a shallow page in one statement, needing no transaction:
    the total and the stamps from ``start`` on, skipping ``offset`` rows (no seek). The
    rows of unknown stamps come from a second statement, so a row re-rated in between
    would not match its stamp: that, or an empty page (whose total would need the same
    snapshot), gives None, and the caller reads the page in one snapshot instead."""
    window = counts.split(params["start"], params["end"])
    params.update(lo=window.lo, hi=window.hi, since=params["start"], skip=offset)
    found = cursor.execute(sql["stamps_at_once"], params).fetchall()
    if not found:
        return None
    stamps = [row[1:] for row in found]
    known = lookup(stamps)
    rows = _unknown_rows(cursor, sql, params, stamps, known)
    for stamp, value in zip(stamps, known, strict=True):
        row = rows.get(stamp[0]) if value is None else None
        if value is None and (row is None or tuple(row[_ROW_RATED:]) != stamp[_STAMP_RATED:]):
            return None
    return StampedPage(int(found[0][0]), stamps, known, rows)


def _seek(cursor: Any, sql: dict[str, str], params: dict[str, Any], offset: int) -> int:
    """The window's exact total; sets ``since`` and ``skip`` in ``params`` to where the
    page at ``offset`` starts: the rows from ``since`` on, less ``skip`` of them, which is
    fewer than one bucket's rows."""
    window = counts.split(params["start"], params["end"])
    params.update(lo=window.lo, hi=window.hi)
    head, body, tail = cursor.execute(sql["totals"], params).fetchone()
    if offset < head:
        since, skip = window.start, offset
    elif offset < head + body:
        bucket, before = _walk(cursor, sql, params, offset - head)
        since, skip = bucket, offset - head - before
    else:
        since, skip = window.hi, offset - head - body
    params.update(since=since, skip=skip)
    return int(head + body + tail)


def _walk(cursor: Any, sql: dict[str, str], params: dict[str, Any], rel: int) -> tuple[int, int]:
    """The bucket in ``[lo, hi)`` holding the body's row ``rel`` (0-based), and the body's
    rows before it. A shallow row is in the first hour's dozen buckets; a deeper one is
    found by the hours' sums (24 rows for a day's window, summed in the database) and
    then that hour's buckets: reading a day's 288 counts into Python cost more."""
    lo, hi = params["lo"], params["hi"]
    first_hour = min(lo + _HOUR, hi)
    found, before = _in_buckets(cursor, sql, params, lo, first_hour, rel, 0)
    if found is None:
        for hour, n in _rows(cursor, sql["hours"], params, first_hour, hi):
            if rel < before + n:
                walk_from, walk_to = max(hour, first_hour), min(hour + _HOUR, hi)
                found, _ = _in_buckets(cursor, sql, params, walk_from, walk_to, rel, before)
                break
            before += n
    if found is None:  # the counts hold the row (they sum to more than rel): unreachable
        raise AssertionError(f"the bucket counts hold no row {rel} of {params}")
    return found


def _in_buckets(
    cursor: Any,
    sql: dict[str, str],
    params: dict[str, Any],
    walk_from: int,
    walk_to: int,
    rel: int,
    before: int,
) -> tuple[tuple[int, int] | None, int]:
    """The bucket in ``[walk_from, walk_to)`` holding row ``rel`` and the rows before
    it, or None; and the rows before ``walk_to`` (``before`` being those before
    ``walk_from``)."""
    for bucket, n in _rows(cursor, sql["buckets"], params, walk_from, walk_to):
        if rel < before + n:
            return (bucket, before), before
        before += n
    return None, before


def _rows(
    cursor: Any, statement: str, params: dict[str, Any], walk_from: int, walk_to: int
) -> list[Any]:
    params.update(walk_from=walk_from, walk_to=walk_to)
    rows: list[Any] = cursor.execute(statement, params).fetchall()
    return rows
