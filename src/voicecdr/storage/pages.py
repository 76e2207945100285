"""The query API's page read: one page of an app's CDRs in a window, and the exact total.

One entry point: ``PageReader(db).read(PageRequest(...), lookup) -> Page``.

1. The exact total is the window's head and tail rows, counted in the table, plus the
   bucket counts of the whole buckets between them (``counts``).
2. A page at ``offset`` starts at the bucket holding that row, so the database skips at
   most one bucket of rows: :func:`place` says where, from the counts (a pure function),
   and :class:`Learned` from the running sum of the buckets' counts.
3. Most pages take one statement, without a transaction: a shallow page, or one of a
   window whose buckets were read before (:class:`Seeks`), is read together with the
   counts from where it is guessed to start, and those counts tell whether the guess holds.
   Otherwise (or when it does not hold) the page is read in one snapshot: the counts, the
   buckets if the page is in the body, then the rows.
4. Rows come as *stamps* (:data:`STAMP_FIELDS`) first, for a caller that keeps what it made
   of rows (the query API keeps rendered rows; ``lookup`` tells which it has); only the
   rows it does not know are read whole. A stamp is exact: a stored call's content never
   changes (``content_hash`` is its hash) and every write of its charge adds one to
   ``revision`` (storage/rating.py). ``PageRequest.whole`` reads every row whole at once
   instead, for a caller that expects to know few of them.
5. The request's rate-limit token is taken before anything is read: on PostgreSQL by the
   guessed statement itself (a data-modifying CTE, :func:`carrying`), so the usual request
   is one round trip to the database; else (SQLite, Citus: ``Token.carried_sql``) by a
   statement of its own. Refused, nothing is read and
   :class:`~voicecdr.errors.TokenRefused` is raised.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ..cdrfields import RATED_FIELDS as RATED_FIELDS
from ..cdrfields import ROW_FIELDS as ROW_FIELDS
from ..errors import TokenRefused
from ..models import VoiceGroup
from . import citus, counts
from .engine import on_driver, translated

if TYPE_CHECKING:
    from .database import Database

# A stored CDR as the query API reads it: a driver row, in ROW_FIELDS order.
RowTuple = Sequence[Any]
# A row's identity and everything about it that can change: a driver row, STAMP_FIELDS.
Stamp = tuple[Any, ...]
_T = TypeVar("_T")
# What the caller already made of each stamp's row (None: nothing); see ``Page``.
Lookup = Callable[[list[Stamp]], list[_T | None]]

# A row's columns (ROW_FIELDS) and of them the ones rating writes (RATED_FIELDS; it also
# writes rate_plan_id, rated_at and pending_reason, which no answer shows): declared in
# cdrfields. Nothing else about a stored row ever changes.
# Four values where the six rated fields would make nine: the driver's cost is per value
# (docs/performance.md#driver-cost-per-row-and-per-value).
STAMP_FIELDS = ("id", "placed_at", "content_hash", "revision")
_STAMP_PLACED = STAMP_FIELDS.index("placed_at")
# A whole row with what its stamp has beyond it last, so both can be checked against it.
CHECKED_FIELDS = (*ROW_FIELDS, "content_hash", "revision")
_CHECKS = len(CHECKED_FIELDS) - len(ROW_FIELDS)
_ROW_PLACED = ROW_FIELDS.index("placed_at")
# Pages starting before this row are read from the window's start: skipping a few hundred
# rows costs less than reading the buckets' counts.
AT_ONCE_ROWS = 300


# -- the request and the answer ----------------------------------------------------------


class Token(Protocol):
    """A request's rate-limit token (``storage.ratelimit.Admission``)."""

    @property
    def carried_sql(self) -> str | None:
        """The statement that takes it (``:name`` parameters, a row back if taken), when a
        page statement can carry it (its state is in the page's database, and not on
        Citus, which would split that statement); else None."""
        ...

    def stamp(self) -> dict[str, Any]:
        """Its parameters, stamped with the time: called right before it is sent."""
        ...

    def take(self) -> bool:
        """Take it with a statement of its own; whether it was."""
        ...


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page of app ``app_id``'s CDRs of voice group ``group`` placed in ``[start, end]``
    (epoch seconds, inclusive), ordered by (time, id)."""

    app_id: int
    group: VoiceGroup
    start: int
    end: int
    offset: int  # rows before the page: (page - 1) x page size
    limit: int  # the page size
    messageid: str | None = None  # only the rows of this messageid (its own index)
    token: Token | None = None  # taken before anything is read; TokenRefused if refused
    whole: bool = False  # read rows whole at once, not stamps first (see the module doc)


@dataclass(frozen=True, slots=True)
class Page(Generic[_T]):
    """A page in order as stamps; what the caller's lookup knew of each (None where
    nothing); and the whole rows (:data:`ROW_FIELDS`) of the stamps it did not know, by
    id. All as of one moment of the database."""

    total: int
    stamps: list[Stamp]
    known: list[_T | None]
    rows: dict[int, RowTuple]


def _nothing_known(stamps: list[Stamp]) -> list[Any]:
    return [None] * len(stamps)


# -- where a page starts -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the page at ``offset`` starts: ``offset - before`` rows after ``since`` (the
    window's start, or a bucket's start in or at the end of the body), ``before`` being
    the window's rows before ``since``."""

    since: int
    before: int


@dataclass(frozen=True, slots=True)
class Counts:
    """A window's rows in four counts, read with the body cut at a placement's ``since``:
    the head's, the whole buckets' before and from the cut, and the tail's."""

    head: int
    ahead: int
    behind: int
    tail: int

    @property
    def total(self) -> int:
        return self.head + self.ahead + self.behind + self.tail

    def before(self, window: counts.Split, since: int) -> int:
        """The window's rows before ``since``, the cut these counts were read with."""
        return _rows_before(window, since, self.head + self.ahead)


def _rows_before(window: counts.Split, since: int, before_cut: int) -> int:
    """The window's rows before ``since`` (its start, or a bucket boundary in the body or
    at its end), from the rows before the cut the counts were read with, at ``since``."""
    return before_cut if since > window.start else 0


def place(
    window: counts.Split, offset: int, found: Counts, guess: Placement | None
) -> Placement | None:
    """Where the page at ``offset`` starts, from the window's counts ``found`` (read with
    the cut at ``guess.since``, or at the window's start without a guess): the guess if the
    counts bear it out, the window's start for a page in the head, the tail's start for one
    past the body. None for a page in the body: its bucket is found by :class:`Learned`."""
    if guess is not None and found.before(window, guess.since) == guess.before:
        return guess
    body = found.ahead + found.behind
    if offset < found.head:
        return Placement(window.start, 0)
    if offset >= found.head + body:
        return Placement(window.hi, found.head + body)
    return None


@dataclass(frozen=True, slots=True)
class Learned:
    """What reading a window's bucket counts taught: its head's rows, and each whole
    bucket's start with the body's rows before it, ending with the tail's start and the
    body's rows."""

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

    def place(self, start: int, offset: int) -> Placement:
        """The page at ``offset`` of the window starting at ``start``: in the head, from
        the start; else from the bucket holding its first row."""
        if offset < self.head:
            return Placement(start, 0)
        at = bisect.bisect_right(self.sums, offset - self.head) - 1
        return Placement(self.starts[at], self.head + self.sums[at])


class Seeks:
    """What was learned of recently read windows, as guesses of where their pages start.

    A guess is only used if the counts read with the page bear it out (:func:`place`):
    rows that arrive later in the window (or in a window never seen) make a guess wrong,
    never the answer; a wrong guess costs reading the buckets again, which learns the
    window again. At most ``windows`` windows are kept (about 5 KB for a day's); all are
    forgotten at once when full. Thread-safe in the sense that matters: each entry is
    replaced whole.
    """

    def __init__(self, windows: int = 256) -> None:
        self._windows = windows
        self._known: dict[Hashable, Learned] = {}

    def guess(self, key: Hashable, start: int, offset: int) -> Placement | None:
        """The page at ``offset`` of the window ``key`` starting at ``start``: a shallow
        page from the window's start (always right); a deeper one only from what was
        learned, else None."""
        if offset < AT_ONCE_ROWS:
            return Placement(start, 0)
        known = self._known.get(key)
        return None if known is None else known.place(start, offset)

    def learn(self, key: Hashable, known: Learned) -> None:
        if len(self._known) >= self._windows:
            self._known.clear()
        self._known[key] = known

    def forget(self, key: Hashable) -> None:
        self._known.pop(key, None)


# -- the statements ----------------------------------------------------------------------

_IN_GROUP = "app_id = :app AND voice_group = :grp"
_WINDOW = (
    "placed_at >= :since AND placed_at <= :end ORDER BY placed_at, id LIMIT :limit OFFSET :skip"
)
# The four counts of ``Counts``; their sum is the exact total.
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
    the CTE ``admitted`` (:func:`carrying`) has a row, else nothing at all.

    The counts row comes first, its id NULL (no stored row's is), the rows before ``cut``
    in the column of ``placed_at`` and the window's total in that of ``revision``:
    integers like them, so both databases type the union's columns as the page's. One
    row of counts rather than more columns on each of the page's rows, whose every value
    costs the driver (docs/performance.md#driver-cost-per-row-and-per-value).
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
    # The body's bucket counts, for Learned.
    "buckets": (
        f"SELECT bucket, n FROM cdr_counts WHERE {_IN_GROUP} "
        "AND bucket >= :lo AND bucket < :hi ORDER BY bucket"
    ),
    # A page and the counts in one statement, from a guessed placement.
    "stamps_counted": _counted(STAMP_FIELDS),
    "checked_counted": _counted(CHECKED_FIELDS),
    "stamps": f"SELECT {', '.join(STAMP_FIELDS)} FROM cdrs WHERE {_IN_GROUP} AND {_WINDOW}",
    "checked": f"SELECT {', '.join(CHECKED_FIELDS)} FROM cdrs WHERE {_IN_GROUP} AND {_WINDOW}",
    # The whole rows between two times (a page's unknown stamps lie between them).
    "between": (
        f"SELECT {', '.join(CHECKED_FIELDS)} FROM cdrs WHERE {_IN_GROUP} "
        "AND placed_at >= :first AND placed_at <= :last"
    ),
    "count_mid": (
        f"SELECT count(*) FROM cdrs WHERE {_IN_GROUP} AND messageid = :mid "
        "AND placed_at >= :start AND placed_at <= :end"
    ),
    "checked_mid": (
        f"SELECT {', '.join(CHECKED_FIELDS)} FROM cdrs WHERE {_IN_GROUP} AND messageid = :mid "
        "AND placed_at >= :start AND placed_at <= :end "
        "ORDER BY placed_at, id LIMIT :limit OFFSET :skip"
    ),
}
# The counted statements as they read only once the token is taken (see ``carrying``).
GATED = {
    "stamps_counted": _counted(STAMP_FIELDS, gated=True),
    "checked_counted": _counted(CHECKED_FIELDS, gated=True),
}


def carrying(statement: str, token_sql: str) -> str:
    """``statement`` (one of :data:`GATED`) with the token's statement as the CTE it reads:
    PostgreSQL runs that once, whatever reads it (data-modifying)."""
    return f"WITH admitted AS ({token_sql}) {statement}"


def _params(
    request: PageRequest, window: counts.Split, at: Placement | None = None
) -> dict[str, Any]:
    """The statements' parameters for ``request``, the page read from ``at`` (its cut
    and skip), or only counted with the cut at the window's start."""
    since = window.start if at is None else at.since
    return {
        "app": request.app_id,
        "grp": int(request.group),
        "start": window.start,
        "end": window.end,
        "limit": request.limit,
        "lo": window.lo,
        "hi": window.hi,
        "cut": min(max(since, window.lo), window.hi),
        "since": since,
        "skip": request.offset - (0 if at is None else at.before),
    }


# -- the reader ----------------------------------------------------------------------------


class PageReader:
    """Reads query API pages from ``db``; thread-safe."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sql = {name: db.driver_sql(text) for name, text in SQL.items()}
        self._hold = db.driver_sql(citus.HOLD_APP)
        self._carrying: dict[str, dict[str, str]] = {}  # by token statement: _sql, gated
        self._seeks = Seeks()

    def read(self, request: PageRequest, lookup: Lookup[_T] | None = None) -> Page[_T]:
        """The page and the exact total of ``request``, as of one moment. ``lookup`` gives
        what the caller already made of each stamp's row (a value or None), and only the
        rows it gives None for are read whole; without it every row is. Raises
        :class:`~voicecdr.errors.TokenRefused`, having read nothing, if the request's
        token is refused."""
        known: Lookup[Any] = lookup or _nothing_known
        window = counts.split(request.start, request.end)
        key = (request.app_id, int(request.group), request.start, request.end)
        by_messageid = request.messageid is not None  # its own index: never guessed
        guess = None if by_messageid else self._seeks.guess(key, window.start, request.offset)
        token, sql = request.token, self._sql
        if token is not None:
            carried = token.carried_sql if guess is not None else None
            if carried is None:
                with translated("rate limit"):
                    if not token.take():
                        raise TokenRefused
                token = None
            else:
                sql = self._carried(carried)
        with translated("query CDRs"):
            if guess is not None:
                found = self._db.pinned.run(
                    lambda cursor: _read_guessed(cursor, sql, request, window, guess, known, token)
                )
                if found is not None:
                    return found
                self._seeks.forget(key)
            return on_driver(
                self._db.snapshots,
                lambda cursor: self._read_in_snapshot(cursor, request, window, key, known),
                begin=self._db.snapshot_begin,
            )

    def _carried(self, token_sql: str) -> dict[str, str]:
        """The statements with the counted ones taking the token (made once per text)."""
        found = self._carrying.get(token_sql)
        if found is None:
            gated = {k: self._db.driver_sql(carrying(v, token_sql)) for k, v in GATED.items()}
            found = self._carrying[token_sql] = {**self._sql, **gated}
        return found

    def _read_in_snapshot(
        self,
        cursor: Any,
        request: PageRequest,
        window: counts.Split,
        key: Hashable,
        lookup: Lookup[_T],
    ) -> Page[_T]:
        """The page in the cursor's snapshot (one transaction): counts, the buckets if the
        page is in the body (learned for later guesses), then the rows. On Citus the
        app's placement is held first, so a shard move cannot switch it in between."""
        sql = self._sql
        if self._db.citus:
            cursor.execute(self._hold, {"app": request.app_id})
        if request.messageid is not None:
            params = {**_params(request, window), "mid": request.messageid}
            total = cursor.execute(sql["count_mid"], params).fetchone()[0]
            if request.offset >= total:
                return Page(total, [], [], {})
            return _whole(total, cursor.execute(sql["checked_mid"], params).fetchall(), lookup)
        guess = self._seeks.guess(key, window.start, request.offset)
        found = Counts(*cursor.execute(sql["counts"], _params(request, window, guess)).fetchone())
        at = place(window, request.offset, found, guess)
        if at is None:
            buckets = cursor.execute(sql["buckets"], _params(request, window)).fetchall()
            learned = Learned.of(found.head, buckets, window.hi)
            self._seeks.learn(key, learned)
            at = learned.place(window.start, request.offset)
        total = found.total
        if request.offset >= total:
            return Page(total, [], [], {})
        params = _params(request, window, at)
        if request.whole:
            return _whole(total, cursor.execute(sql["checked"], params).fetchall(), lookup)
        stamps = cursor.execute(sql["stamps"], params).fetchall()
        known = lookup(stamps)
        # One snapshot: every unknown stamp's row is there, as stamped.
        return Page(total, stamps, known, _unknown_rows(cursor, sql, params, stamps, known))


def _read_guessed(
    cursor: Any,
    sql: dict[str, str],
    request: PageRequest,
    window: counts.Split,
    guess: Placement,
    lookup: Lookup[_T],
    token: Token | None,
) -> Page[_T] | None:
    """The page and its counts in one statement, from ``guess``; None (the caller reads
    the page in a snapshot instead) if the counts do not bear the guess out, or no rows
    were found (an empty page's total needs no guess). With ``token``, ``sql``'s counted
    statements carry it, and :class:`TokenRefused` is raised if it is refused. The rows
    of unknown stamps come from a second statement, so a row re-rated in between would
    not match its stamp: that gives None too."""
    params = _params(request, window, guess)
    if token is not None:
        params.update(token.stamp())
    found = cursor.execute(
        sql["checked_counted" if request.whole else "stamps_counted"], params
    ).fetchall()
    if token is not None and not found:
        raise TokenRefused  # a token taken always reads the counts row
    # The counts row must come first (SQL does not promise a union's order; both
    # databases keep it).
    if len(found) < 2 or found[0][0] is not None:
        return None
    before_at, total_at = _COUNTED_AT[request.whole]
    if _rows_before(window, guess.since, found[0][before_at]) != guess.before:
        return None
    total = int(found[0][total_at])
    if request.whole:
        return _whole(total, found[1:], lookup)
    stamps = found[1:]
    known = lookup(stamps)
    rows = _unknown_rows(cursor, sql, params, stamps, known)
    if len(rows) != known.count(None):
        return None
    return Page(total, stamps, known, rows)


def _whole(total: int, found: list[Any], lookup: Lookup[_T]) -> Page[_T]:
    """A page read whole (:data:`CHECKED_FIELDS`): stamps taken from the rows, and the
    rows of the stamps ``lookup`` does not know."""
    stamps = [(r[0], r[_ROW_PLACED], *r[-_CHECKS:]) for r in found]
    known = lookup(stamps)
    rows = {r[0]: r[:-_CHECKS] for r, value in zip(found, known, strict=True) if value is None}
    return Page(total, stamps, known, rows)


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
        between = {
            **params,
            "first": unknown[0][_STAMP_PLACED],
            "last": unknown[-1][_STAMP_PLACED],
        }
        wanted = {stamp[0]: stamp[-_CHECKS:] for stamp in unknown}
        for row in cursor.execute(sql["between"], between).fetchall():
            checks = wanted.get(row[0])
            if checks is not None and tuple(row[-_CHECKS:]) == tuple(checks):
                rows[row[0]] = row[:-_CHECKS]
    return rows
