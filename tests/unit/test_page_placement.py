"""Where a deep page starts (``storage.pages.place`` and ``Learned``): pure functions of
the window's counts, checked here without a database."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voicecdr.storage import counts
from voicecdr.storage.pages import Counts, Learned, Placement, place

# A window [17, 7299]: head [17, 300), whole buckets [300, 7200), tail [7200, 7299].
WINDOW = counts.split(17, 7299)
# 10 rows in the head, 40 in the body (20 before the cut at 600, 20 after), 5 in the tail.
FOUND = Counts(head=10, ahead=20, behind=20, tail=5)


def test_the_window_splits_as_the_counts_assume() -> None:
    assert (WINDOW.lo, WINDOW.hi) == (300, 7200)


def test_a_guess_the_counts_bear_out_is_kept() -> None:
    # Counted with the cut at 600: 10 + 20 rows before it, as the guess says.
    assert place(WINDOW, 35, FOUND, Placement(600, 30)) == Placement(600, 30)


def test_a_guess_the_counts_contradict_is_dropped() -> None:
    # Rows arrived before 600 since the guess was learned: 30 there now, not 27.
    assert place(WINDOW, 35, FOUND, Placement(600, 27)) is None  # in the body: buckets
    assert place(WINDOW, 3, FOUND, Placement(600, 27)) == Placement(17, 0)  # in the head


def test_head_body_and_tail_without_a_guess() -> None:
    assert place(WINDOW, 0, FOUND, None) == Placement(17, 0)
    assert place(WINDOW, 9, FOUND, None) == Placement(17, 0)
    assert place(WINDOW, 10, FOUND, None) is None  # the body: read its buckets
    assert place(WINDOW, 49, FOUND, None) is None
    assert place(WINDOW, 50, FOUND, None) == Placement(7200, 50)  # the tail
    assert place(WINDOW, 10**9, FOUND, None) == Placement(7200, 50)


def test_a_guess_from_the_window_start_always_holds() -> None:
    assert place(WINDOW, 5, FOUND, Placement(17, 0)) == Placement(17, 0)


@given(
    head=st.integers(0, 50),
    buckets=st.lists(st.integers(0, 30), min_size=0, max_size=20),
    tail=st.integers(0, 50),
    data=st.data(),
)
def test_learned_places_every_row_in_its_bucket(
    head: int, buckets: list[int], tail: int, data: st.DataObject
) -> None:
    """For any counts, the page at ``offset`` starts at most one bucket's rows before its
    first row, in the bucket that holds it: skipping ``offset - before`` rows from
    ``since`` lands exactly on row ``offset``."""
    lo = 300
    starts = [lo + 300 * i for i in range(len(buckets))]
    hi = lo + 300 * len(buckets)
    learned = Learned.of(head, list(zip(starts, buckets, strict=True)), hi)
    # Every row's placement: the head's rows from the start, the body's by bucket.
    rows = [17] * head + [s for s, n in zip(starts, buckets, strict=True) for _ in range(n)]
    rows += [hi] * tail
    offset = data.draw(st.integers(0, len(rows)))
    at = learned.place(17, offset)
    assert offset - at.before >= 0
    if offset < len(rows):
        assert rows[at.before] == at.since  # the first row from since is row `before`
        assert rows[offset] == at.since or offset >= head + sum(buckets)
        # Never more than one bucket's rows to skip (or the head's / tail's).
        assert offset - at.before <= max([head, tail, *buckets])
