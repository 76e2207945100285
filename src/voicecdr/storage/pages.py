"""The query API's reads: one page of an app's CDRs and the exact total, in one snapshot.

The total is the window's head and tail rows, counted in the table, plus the sum of the
bucket counts between them (``counts``); a page starts at the bucket that holds its first
row, found by a running sum over those counts. Both cost about the same at any window
size and any page.

Rows come back whole (:data:`ROW_FIELDS`) or *stamped*: :data:`STAMP_FIELDS` only, for a
caller that keeps what it made of a row (the query API keeps rendered rows). A stamp is
exact: a stored call's content never changes after ingest (the same ``call_id`` with
another content is a conflict, refused, never an update) and ``content_hash`` is the hash
of all of it; the rest of what a row shows is its charge (:data:`RATED_FIELDS`), and every
write of the charge adds one to ``revision`` (storage/rating.py). So two reads that give
the same stamp read the same row. The rows of the stamps the caller does not know are
read whole in the same snapshot.

Most pages need no snapshot at all: a shallow one (the first :data:`AT_ONCE_ROWS` rows),
or one of a window whose buckets were read before (:class:`Seeks`), is read with its
counts in one statement from where it is guessed to start, and the counts in that same
statement tell whether the guess was right (:func:`read_guessed`). The rows of unknown
stamps then come from a second statement, and are used only if each still matches its
stamp.

On PostgreSQL that one statement also takes the request's rate-limit token (an
:class:`Admission`, as a data-modifying CTE), and reads nothing if it is refused: the
query API's usual request is one round trip to the database.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..cdrfields import RATED_FIELDS as RATED_FIELDS
from ..cdrfields import ROW_FIELDS as ROW_FIELDS
from . import counts

# A stored CDR as the query API reads it: a driver row, in ROW_FIELDS order.
RowTuple = Sequence[Any]
# A row's identity and everything about it that can change: a driver row, STAMP_FIELDS.
Stamp = tuple[Any, ...]
_T = TypeVar("_T")

# A row's columns (ROW_FIELDS) and of them the ones rating writes (RATED_FIELDS; it also
# writes rate_plan_id, rated_at and pending_reason, which no answer shows): declared in
# cdrfields. Nothing else about a stored row ever changes.

# Four values where the six rated fields would make nine: the driver's cost is per value.
STAMP_FIELDS = ("id", "placed_at", "content_hash", "revision")
_STAMP_PLACED = STAMP_FIELDS.index("placed_at")
# A whole row with what its stamp has beyond it last, so both can be checked against it.
CHECKED_FIELDS = (*ROW_FIELDS, "content_hash", "revision")
_CHECKS = len(CHECKED_FIELDS) - len(ROW_FIELDS)
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
# Pages starting before this row are read from the window's start: skipping a few hundred
# rows costs less than a seek.
AT_ONCE_ROWS = 300
_WINDOW = (
    "placed_at >= :since AND placed_at <= :end ORDER BY placed_at, id LIMIT :limit OFFSET :skip"
)
# The window's rows in four counts: the head's, the whole buckets' before ``cut`` and
# from ``cut`` on (two sums of one range), and the tail's. Their sum is the exact total;
# the first two are the rows before ``cut`` (see ``Seeks``).
_COUNTS = {
    "head": (
        f"(SELECT count(*) FROM cdrs WHERE {_IN_GROUP} AND placed_at >= :start AND placed_at < :lo)"
    ),
    "ahead": (
        f"(SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM cdr_counts WHERE {_IN_GROUP} "
        "AND bucket >= :lo AND bucket < :cut)"
    ),
    "behind": (
        f"(SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM cdr_counts WHERE {_IN_GROUP} "
        "AND bucket >= :cut AND bucket < :hi)"
    ),
    "tail": (
        f"(SELECT count(*) FROM cdrs WHERE {_IN_GROUP} AND placed_at >= :hi AND placed_at <= :end)"
    ),
}
# Where the counts row of a counted page (``_counted``) has the rows before ``cut`` and
# the total, by whether it reads the rows whole.
_COUNTED_AT = {
    whole: (fields.index("placed_at"), fields.index("revision"))
    for whole, fields in ((False, STAMP_FIELDS), (True, CHECKED_FIELDS))
}


def _counted(fields: Sequence[str], *, gated: bool = False) -> str:
    """A page of ``fields`` after one row of counts, in one statement; ``gated``, only if
    the CTE ``admitted`` (:func:`admitting`) has a row, else nothing at all.

    The counts row comes first, its id NULL (no stored row's is), the rows before ``cut``
    in the column of ``placed_at`` and the window's total in that of ``revision``:
    integers like them, so both databases type the union's columns as the page's. One
    row of counts rather than more columns on each of the page's rows: those would cost
    the driver a hundred more values a page.
    """
    counts_row = ["NULL"] * len(fields)
    counts_row[fields.index("placed_at")] = "n.head + n.ahead"
    counts_row[fields.index("revision")] = "n.head + n.ahead + n.behind + n.tail"
    named = ", ".join(f"{sql} AS {name}" for name, sql in _COUNTS.items())
    page = f"SELECT {', '.join(fields)} FROM cdrs WHERE {_IN_GROUP} AND {_WINDOW}"
    # Uncorrelated: PostgreSQL checks it once, before reading anything.
    gate = " WHERE EXISTS (SELECT 1 FROM admitted)" if gated else ""
    return (
        f"SELECT {', '.join(counts_row)} FROM (SELECT {named} LIMIT 1) AS n{gate} "
        f"UNION ALL SELECT * FROM ({page}) AS page{gate}"
    )


SQL = {
    "counts": f"SELECT {', '.join(_COUNTS.values())}",
    # The body's bucket counts, for a full seek.
    "buckets": (
        f"SELECT bucket, n FROM cdr_counts WHERE {_IN_GROUP} "
        "AND bucket >= :lo AND bucket < :hi ORDER BY bucket"
    ),
    "page": f"SELECT {', '.join(ROW_FIELDS)} FROM cdrs WHERE {_IN_GROUP} AND {_WINDOW}",
    # A page and the counts in one statement, from a guessed start (see read_guessed).
    "stamps_counted": _counted(STAMP_FIELDS),
    "checked_counted": _counted(CHECKED_FIELDS),
    "stamps": f"SELECT {', '.join(STAMP_FIELDS)} FROM cdrs WHERE {_IN_GROUP} AND {_WINDOW}",
    # Whole rows, checked: a page whose stamps are mostly unknown.
    "page_checked": (
        f"SELECT {', '.join(CHECKED_FIELDS)} FROM cdrs WHERE {_IN_GROUP} AND {_WINDOW}"
    ),
    # The whole rows between two times, checked (a page's unknown stamps lie between them).
    "between": (
        f"SELECT {', '.join(CHECKED_FIELDS)} FROM cdrs WHERE {_IN_GROUP} "
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


# The counted statements as they read only once a token is taken (see ``admitting``).
GATED = {
    "stamps_counted": _counted(STAMP_FIELDS, gated=True),
    "checked_counted": _counted(CHECKED_FIELDS, gated=True),
}


class Admission(Protocol):
    """A request's rate-limit token (``storage.ratelimit``), to be taken by its own
    statement or by the statement that reads the page (PostgreSQL)."""

    @property
    def sql(self) -> str:
        """The statement that takes it, ``:name`` parameters, returning a row if taken."""
        ...

    def stamp(self) -> dict[str, Any]:
        """Its parameters, stamped with the time: called right before it is sent."""
        ...

    def take(self, cursor: Any) -> bool:
        """Take it with a statement of its own; whether it was."""
        ...


class Refused(Exception):
    """The request's :class:`Admission` was refused; nothing was read."""


def admitting(statement: str, admission: str) -> str:
    """``statement`` (one of :data:`GATED`) with the token's statement ``admission`` as
    the CTE it reads: PostgreSQL runs that once, whatever reads it (data-modifying)."""
    return f"WITH admitted AS ({admission}) {statement}"


def window_params(app_id: int, group: int, start: int, end: int, limit: int) -> dict[str, Any]:
    """The parameters every statement here starts from; the reads add their own."""
    return {"app": app_id, "grp": int(group), "start": start, "end": end, "limit": limit}


@dataclass(frozen=True, slots=True)
class Learned:
    """What a full seek read of a window: its head's rows, and each whole bucket's start
    with the body's rows before it, ending with the tail's start and the body's rows."""

    head: int
    starts: array[int]
    sums: array[int]

    @classmethod
    def of(cls, head: int, buckets: Sequence[Sequence[int]], hi: int) -> Learned:
        """From the body's ``(bucket, n)`` in order, ending before ``hi``."""
        starts, sums, before = array("q"), array("q"), 0
        for bucket, n in buckets:
            starts.append(bucket)
            sums.append(before)
            before += n
        starts.append(hi)
        sums.append(before)
        return cls(head, starts, sums)

    def place(self, start: int, offset: int) -> tuple[int, int]:
        """``(since, before)``: the page at ``offset`` starts ``offset - before`` rows
        after ``since``, the window's start or the bucket holding its first row."""
        if offset < self.head:
            return start, 0
        at = bisect.bisect_right(self.sums, offset - self.head) - 1
        return self.starts[at], self.head + self.sums[at]


class Seeks:
    """Where the pages of recently read windows start, as guesses.

    A full seek (:func:`_seek`) reads the window's bucket counts; what it learns is kept
    here by window: the head's rows and each bucket's running sum. A later page of the
    same window is then guessed to start at the bucket holding its first row, ``before``
    rows into the window, and read from there together with the counts in one statement
    (:func:`read_guessed`). The guess is only used if that statement's own snapshot has
    exactly ``before`` rows before that bucket; rows that arrive later in the window (or
    in a window never seen) make the guess wrong, never the answer: a wrong guess costs
    one full seek, which learns the window again.

    At most ``windows`` windows are kept (about 5 KB for a day's); all are forgotten at
    once when full. Thread-safe in the sense that matters: each entry is replaced whole.
    """

    def __init__(self, windows: int = 256) -> None:
        self._windows = windows
        self._known: dict[Hashable, Learned] = {}

    def guess(self, key: Hashable, start: int, offset: int) -> tuple[int, int] | None:
        """``(since, before)`` for the page at ``offset`` of the window ``key`` starting
        at ``start``: a page starts ``offset - before`` rows after ``since``. A shallow
        page is guessed from the window's start (that guess is always right: ``before``
        is 0); a deeper one only from what a full seek learned, else None."""
        if offset < AT_ONCE_ROWS:
            return start, 0
        known = self._known.get(key)
        return None if known is None else known.place(start, offset)

    def learn(self, key: Hashable, known: Learned) -> None:
        if len(self._known) >= self._windows:
            self._known.clear()
        self._known[key] = known

    def forget(self, key: Hashable) -> None:
        self._known.pop(key, None)


def read_page(
    cursor: Any,
    sql: dict[str, str],
    params: dict[str, Any],
    *,
    messageid: str | None,
    offset: int,
    seeks: Seeks,
    key: Hashable,
) -> RowPage:
    """The whole rows of a page and the total. ``params`` is from :func:`window_params`;
    ``sql`` is :data:`SQL` in the driver's parameter style; ``key`` names the window in
    ``seeks``."""
    if messageid is not None:
        params.update(mid=messageid, skip=offset)
        total = cursor.execute(sql["count_mid"], params).fetchone()[0]
        page_sql = sql["page_mid"]
    else:
        total = _seek(cursor, sql, params, offset, seeks, key)
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
    whole: bool,
    seeks: Seeks,
    key: Hashable,
) -> StampedPage[_T]:
    """The page's stamps, ``lookup(stamps)`` (a value or None for each), and the whole
    rows of the stamps it gave None for; all in the cursor's snapshot. With ``whole``,
    every row is read whole at once and the stamps taken from them: cheaper when the
    caller expects to know few of them."""
    total = _seek(cursor, sql, params, offset, seeks, key)
    if offset >= total:
        return StampedPage(total, [], [], {})
    if whole:
        return _whole(total, cursor.execute(sql["page_checked"], params).fetchall(), lookup)
    stamps = cursor.execute(sql["stamps"], params).fetchall()
    known = lookup(stamps)
    # One snapshot: every unknown stamp's row is there, as stamped.
    return StampedPage(total, stamps, known, _unknown_rows(cursor, sql, params, stamps, known))


def read_guessed(
    cursor: Any,
    sql: dict[str, str],
    params: dict[str, Any],
    *,
    offset: int,
    guess: tuple[int, int],
    lookup: Callable[[list[Stamp]], list[_T | None]],
    whole: bool,
    admission: Admission | None = None,
) -> StampedPage[_T] | None:
    """:func:`read_stamped` in one statement, needing no transaction, from a guessed
    start (``Seeks.guess``): the counts and the page's stamps (or whole rows), reading
    from ``since`` on and skipping ``offset - before`` rows. None, and the caller reads
    the page in one snapshot instead, if the statement counted other than ``before``
    rows before ``since``, or found no rows (an empty page's total needs no guess).

    With ``admission``, ``sql`` has the counted statements :func:`admitting` it (they
    take the token too), and :class:`Refused` is raised if it is refused. The rows of
    unknown stamps come from a second statement, so a row re-rated in between would not
    match its stamp: that gives None too."""
    since, before = guess
    window = counts.split(params["start"], params["end"])
    _set_window(params, window, since)
    params.update(since=since, skip=offset - before)
    if admission is not None:
        params.update(admission.stamp())
    found = cursor.execute(sql["checked_counted" if whole else "stamps_counted"], params).fetchall()
    if admission is not None and not found:
        raise Refused  # a token taken always reads the counts row
    # The counts row must come first (SQL does not promise a union's order; both
    # databases keep it), and an empty page needs no guess.
    if len(found) < 2 or found[0][0] is not None:
        return None
    before_at, total_at = _COUNTED_AT[whole]
    if _rows_before(window, since, found[0][before_at]) != before:
        return None
    total = int(found[0][total_at])
    if whole:
        return _whole(total, found[1:], lookup)
    stamps = found[1:]
    known = lookup(stamps)
    rows = _unknown_rows(cursor, sql, params, stamps, known)
    if len(rows) != known.count(None):
        return None
    return StampedPage(total, stamps, known, rows)


def _whole(
    total: int, found: list[Any], lookup: Callable[[list[Stamp]], list[_T | None]]
) -> StampedPage[_T]:
    """A page read whole (:data:`CHECKED_FIELDS`): stamps taken from the rows, and the
    rows of the stamps ``lookup`` does not know."""
    stamps = [(r[0], r[_ROW_PLACED], *r[-_CHECKS:]) for r in found]
    known = lookup(stamps)
    rows = {r[0]: r[:-_CHECKS] for r, value in zip(found, known, strict=True) if value is None}
    return StampedPage(total, stamps, known, rows)


def _unknown_rows(
    cursor: Any,
    sql: dict[str, str],
    params: dict[str, Any],
    stamps: list[Stamp],
    known: list[Any],
) -> dict[int, RowTuple]:
    """The whole rows of the stamps ``known`` has None for, by id: those that still
    match their stamp (all of them, read in the stamps' snapshot)."""
    unknown = [stamp for stamp, value in zip(stamps, known, strict=True) if value is None]
    rows: dict[int, RowTuple] = {}
    if unknown:
        # Stamps are in (placed_at, id) order: the unknown ones lie between the first's
        # time and the last's, a range the query index reads directly.
        params.update(first=unknown[0][_STAMP_PLACED], last=unknown[-1][_STAMP_PLACED])
        wanted = {stamp[0]: stamp[-_CHECKS:] for stamp in unknown}
        for row in cursor.execute(sql["between"], params).fetchall():
            checks = wanted.get(row[0])
            if checks is not None and tuple(row[-_CHECKS:]) == tuple(checks):
                rows[row[0]] = row[:-_CHECKS]
    return rows


def _seek(
    cursor: Any,
    sql: dict[str, str],
    params: dict[str, Any],
    offset: int,
    seeks: Seeks,
    key: Hashable,
) -> int:
    """The window's exact total; sets ``since`` and ``skip`` in ``params`` to where the
    page at ``offset`` starts: the rows from ``since`` on, less ``skip`` of them, which is
    fewer than one bucket's rows. Takes the guess of ``seeks`` if the counts bear it out;
    else reads the body's bucket counts (about 300 for a day's window: one statement,
    cheaper than walking them in several) and teaches ``seeks`` the window."""
    window = counts.split(params["start"], params["end"])
    since, before = seeks.guess(key, window.start, offset) or (window.start, -1)
    _set_window(params, window, since)
    head, ahead, behind, tail = cursor.execute(sql["counts"], params).fetchone()
    body = ahead + behind
    if _rows_before(window, since, head + ahead) == before:
        pass  # the guess holds
    elif offset < head:
        since, before = window.start, 0
    elif offset < head + body:
        learned = Learned.of(head, cursor.execute(sql["buckets"], params).fetchall(), window.hi)
        seeks.learn(key, learned)
        since, before = learned.place(window.start, offset)
    else:
        since, before = window.hi, head + body
    params.update(since=since, skip=offset - before)
    return int(head + body + tail)


def _set_window(params: dict[str, Any], window: counts.Split, since: int) -> None:
    """The window's bucket bounds, and ``cut``: where the counts split the body, at
    ``since`` (a page's start) held inside it."""
    params.update(lo=window.lo, hi=window.hi, cut=min(max(since, window.lo), window.hi))


def _rows_before(window: counts.Split, since: int, before_cut: int) -> int:
    """The window's rows before ``since`` (its start, or a bucket boundary in the body or
    at its end), from the rows before ``cut`` counted with ``cut`` at ``since`` (the head's
    and the body's before it)."""
    return before_cut if since > window.start else 0
