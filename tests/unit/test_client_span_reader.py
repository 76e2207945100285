"""The exactly-once paging plan of one span, fed with hand-made pages."""

from __future__ import annotations

from datetime import datetime

import pytest

from voicecdr.client import IncompleteExport, Page, Record
from voicecdr.client._protocol import SpanReader
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
