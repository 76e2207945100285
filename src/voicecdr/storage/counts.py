"""Exact totals and deep pages at first-page cost: per-bucket row counts.

Every stored CDR adds one to the count of its (app, voice group, 5-minute bucket of
``placed_at``) in ``cdr_counts``, in the transaction that stores it; rows never move
between buckets (nothing updates ``app_id``, ``voice_group`` or ``placed_at``) and rows
only leave with their whole bucket (retention), which removes the bucket's count in the
same transaction. So within one snapshot the counts agree with the rows exactly, whatever
order or lateness the records arrived in, and however often they are re-rated.

A query window ``[start, end]`` (seconds, inclusive) is then three pieces:

    head: [start, lo)   rows counted in the table, less than one bucket of them
    body: [lo, hi)      whole buckets: their counts
    tail: [hi, end]     rows counted in the table, less than one bucket

and a page at ``offset`` starts at the bucket holding that row, found by a running sum
of the body's counts, so the database skips at most one bucket of rows instead of
``offset`` rows (``pages`` has the statements).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

BUCKET_SECONDS = 300


def bucket_of(placed_at: int) -> int:
    """The start of the bucket holding ``placed_at``."""
    return placed_at - placed_at % BUCKET_SECONDS


def tally(keys: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    """``(app_id, voice_group, placed_at)`` of new rows -> ``(app_id, voice_group,
    bucket, n)`` increments, sorted so concurrent writers lock count rows in one order."""
    counted = Counter((app, group, placed - placed % BUCKET_SECONDS) for app, group, placed in keys)
    return sorted((*key, n) for key, n in counted.items())


@dataclass(frozen=True, slots=True)
class Split:
    """A window cut at bucket boundaries: whole buckets fill ``[lo, hi)``."""

    start: int
    end: int
    lo: int
    hi: int


def split(start: int, end: int) -> Split:
    """Cut the inclusive window ``[start, end]``. Without a whole bucket inside it,
    ``lo == hi`` and the window is counted row by row (it holds less than two buckets)."""
    lo = -(-start // BUCKET_SECONDS) * BUCKET_SECONDS  # first boundary at or after start
    hi = (end + 1) // BUCKET_SECONDS * BUCKET_SECONDS  # last boundary at or before end + 1
    if lo >= hi:
        return Split(start, end, end + 1, end + 1)
    return Split(start, end, lo, hi)
