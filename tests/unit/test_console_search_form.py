"""The Calls page's search form read into a storage search, and its page links."""

from __future__ import annotations

from datetime import datetime

from voicecdr.console.pages.calls import page_links
from voicecdr.console.searchform import read_form
from voicecdr.models import CostStatus, VoiceGroup
from voicecdr.storage.search import CallFilter
from voicecdr.timefmt import zone

TZ = zone("Asia/Shanghai")
NOW = datetime(2026, 12, 7, 15, 30, tzinfo=TZ).timestamp()


def form(**params: str):  # type: ignore[no-untyped-def]
    return read_form(params, 7, TZ, NOW, 24)


def test_the_default_is_today_in_the_apps_timezone_voice_type_1() -> None:
    read = form()
    assert read.errors == {}
    assert read.values["from"] == "2026-12-07T00:00"
    assert read.values["to"] == "2026-12-08T00:00"
    assert read.search is not None
    midnight = int(datetime(2026, 12, 7, tzinfo=TZ).timestamp())
    assert (read.search.start, read.search.end) == (midnight, midnight + 86_400 - 1)
    assert read.search.group is VoiceGroup.VERIFICATION
    assert read.search.filter.empty
    assert (read.page, read.size) == (1, 50)


def test_every_filter_is_read() -> None:
    read = form(
        phone=" 138-0013 8000 ", match="prefix", country="+86", connected="no",
        cost_status="pending", messageid="m1", voice_type="0", size="20", page="3",
    )  # fmt: skip
    assert read.errors == {}
    assert read.search is not None
    assert read.search.group is VoiceGroup.GROUP_CALL
    assert read.search.messageid == "m1"
    assert read.search.filter == CallFilter("13800138000", True, "86", False, CostStatus.PENDING)
    assert (read.page, read.size) == (3, 20)
    # Page links keep the search (the given values) and leave out what is empty.
    assert "page=4" in read.query(page=4)
    assert "messageid=m1" in read.query()
    assert "page" not in read.query()


def test_bad_fields_are_each_named() -> None:
    read = form(**{"from": "soon", "phone": "12ab", "country": "12345", "page": "0"})
    assert read.search is None
    assert set(read.errors) == {"from", "phone", "country", "page"}
    assert read.errors["phone"].key == "calls.bad_phone"
    too_long = form(**{"from": "2026-12-01T00:00", "to": "2026-12-03T00:00"})
    assert too_long.errors["to"].key == "calls.too_long"
    assert too_long.errors["to"].values == {"hours": "24"}
    backwards = form(**{"from": "2026-12-02T00:00", "to": "2026-12-01T00:00"})
    assert backwards.errors["to"].key == "calls.to_before_from"


def test_page_links_show_the_ends_and_the_neighbours() -> None:
    assert page_links(1, 1) == [1]
    assert page_links(1, 3) == [1, 2, 3]
    assert page_links(10, 50) == [1, None, 8, 9, 10, 11, 12, None, 50]
    assert page_links(50, 50) == [1, None, 48, 49, 50]
    assert page_links(99, 5) == [1, None, 3, 4, 5]  # past the end: the last pages


def test_a_day_with_a_clock_change_is_24_hours_on_the_wall_clock() -> None:
    new_york = zone("America/New_York")
    fall_back = read_form(
        {"from": "2026-11-01T00:00", "to": "2026-11-02T00:00"}, 7, new_york, NOW, 24
    )
    assert fall_back.errors == {}
    assert fall_back.search is not None
    assert fall_back.search.end - fall_back.search.start + 1 == 25 * 3600
