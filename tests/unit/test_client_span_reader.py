"""The exactly-once paging plan of one span, fed with hand-made pages, and its id set."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecdr.client import IncompleteExport, Page, Record
from voicecdr.client._protocol import IdSet, SpanReader
from voicecdr.client._timeutil import zone

PLACED = datetime(2026, 11, 20, 9, tzinfo=zone("Asia/Shanghai"))


def rec(record_id: int) -> Record:
    return Record(
        id=record_id,
        result="Successful connection",
        cycle=20,
        time=PLACED,
        start_time=None,
        end_time=None,
        phone="1",
        second=1,
        country_code="91",
        messageid="m",
        customer_price=0,  # type: ignore[arg-type]
        show_phone="2",
        size=1,
    )


def page(number: int, total: int, ids: list[int]) -> Page:
    return Page(total, number, 3, [rec(i) for i in ids])


def ids(records: list[Record]) -> list[int]:
    return [r.id for r in records]


def test_a_quiet_span_is_read_page_by_page_and_stops_at_the_total() -> None:
    reader = SpanReader(page_size=3)
    assert ids(reader.feed(page(1, 6, [1, 2, 3]))) == [1, 2, 3]
    assert reader.next_page() == 2
    assert ids(reader.feed(page(2, 6, [4, 5, 6]))) == [4, 5, 6]
    assert reader.next_page() is None  # 2 x 3 covers the total: no empty third page


def test_an_empty_span_takes_one_request() -> None:
    reader = SpanReader(page_size=1000)
    assert reader.feed(page(1, 0, [])) == []
    assert reader.next_page() is None


def test_a_record_stored_into_the_read_part_is_found_by_a_recheck() -> None:
    reader = SpanReader(page_size=3)
    reader.feed(page(1, 5, [1, 2, 3]))
    # Record 9 was stored before record 2: every later row shifted by one place.
    assert ids(reader.feed(page(2, 6, [3, 4, 5]))) == [4, 5]
    assert reader.next_page() == 1  # 5 ids seen, the total says 6: page again
    assert ids(reader.feed(page(1, 6, [1, 9, 2]))) == [9]
    assert ids(reader.feed(page(2, 6, [3, 4, 5]))) == []
    assert reader.next_page() is None
    assert reader.rechecks == 1


def test_a_total_that_keeps_growing_ends_in_incomplete_export() -> None:
    reader = SpanReader(page_size=3, max_rechecks=1)
    reader.feed(page(1, 4, [1, 2, 3]))
    reader.feed(page(2, 5, [4]))  # one new record slipped in before the last page
    assert reader.next_page() == 1
    reader.feed(page(1, 6, [1, 2, 3]))
    with pytest.raises(IncompleteExport, match="re-checks"):
        reader.feed(page(2, 7, [4]))


class SmallIdSet(IdSet):
    """Sweeps after a few ids, so short examples reach the bitmaps."""

    SPARSE_MAX = 2
    FIRST_SWEEP = 4


@given(st.lists(st.integers(-20_000, 40_000) | st.integers(-(2**70), 2**70), max_size=300))
def test_an_id_set_answers_as_a_set_does(values: list[int]) -> None:
    kept, reference = SmallIdSet(), set()
    for value in values:
        assert kept.add(value) is (value not in reference)
        reference.add(value)
        assert len(kept) == len(reference)
    assert all(value in kept for value in reference)
    assert not any(value + 1 in kept for value in reference if value + 1 not in reference)


def test_a_dense_span_of_ids_in_any_order_is_kept_exactly() -> None:
    rng = random.Random(3)
    dense = rng.sample(range(1_000_000, 1_250_000), 100_000)  # 40% of a counter's ids
    stray = [rng.getrandbits(40) for _ in range(2_000)] + [-5, 0, 7]
    kept = IdSet()
    assert all(kept.add(value) for value in dense + stray)
    assert not any(kept.add(value) for value in dense[::7] + stray[::3])
    assert len(kept) == len(set(dense + stray))
    missing = set(range(1_000_000, 1_250_000)) - set(dense)
    assert not any(value in kept for value in missing)


def test_a_recheck_in_a_dense_span_yields_only_the_new_record() -> None:
    def answer(number: int, total: int, ordered: list[int]) -> Page:
        return Page(total, number, 1000, [rec(i) for i in ordered[(number - 1) * 1000 :][:1000]])

    before, after = list(range(5_000, 9_000)), [4_242, *range(5_000, 9_000)]
    reader = SpanReader(page_size=1000)
    got = [reader.feed(answer(n, 4_000, before)) for n in (1, 2, 3)]
    # Record 4,242 is stored into the part already read: page 4 repeats id 7,999.
    got += [reader.feed(answer(n, 4_001, after)) for n in (4, 5)]
    assert [len(fresh) for fresh in got] == [1000, 1000, 1000, 999, 1]
    assert reader.next_page() == 1
    again = [r for n in range(1, 6) for r in reader.feed(answer(n, 4_001, after))]
    assert ids(again) == [4_242]
    assert reader.next_page() is None
