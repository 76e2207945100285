"""Splitting an export window into spans the server allows, and reading window bounds."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from voicecdr.client import ClientError, WindowError
from voicecdr.client._timeutil import format_api_time, iter_spans, spans, to_wall, zone
from voicecdr.timefmt import wall_to_epoch

SHANGHAI = zone("Asia/Shanghai")
NEW_YORK = zone("America/New_York")
DAY = timedelta(hours=24)


def wall(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


def test_three_days_are_three_full_spans_each_one_second_after_the_last() -> None:
    got = spans(wall("2026-11-20 00:00:00"), wall("2026-11-23 00:00:00"), SHANGHAI)
    assert got == [
        (wall("2026-11-20 00:00:00"), wall("2026-11-21 00:00:00")),
        (wall("2026-11-21 00:00:01"), wall("2026-11-22 00:00:01")),
        (wall("2026-11-22 00:00:02"), wall("2026-11-23 00:00:00")),
    ]
    assert all(hi - lo <= DAY for lo, hi in got)


def test_a_short_window_is_one_span_and_a_single_second_works() -> None:
    one = wall("2026-11-20 09:00:00")
    assert spans(one, one, SHANGHAI) == [(one, one)]
    with pytest.raises(ValueError, match="after"):
        spans(one, one - timedelta(seconds=1), SHANGHAI)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-10-30 01:30:00", "2026-11-03 12:00:00"),  # clocks go back on 11-01 at 02:00
        ("2026-03-06 02:30:00", "2026-03-10 12:00:00"),  # clocks go forward on 03-08 at 02:00
        ("2026-10-31 01:30:30", "2026-11-02 01:30:30"),  # a boundary lands in the repeated hour
    ],
)
def test_across_dst_the_spans_cover_every_instant_exactly_once(start: str, end: str) -> None:
    # The server reads a span's start as its earliest instant and its end as its latest
    # (voicecdr.timefmt.wall_to_epoch); the spans must tile the window's instants.
    got = spans(wall(start), wall(end), NEW_YORK)
    ranges = [
        (wall_to_epoch(lo, NEW_YORK), wall_to_epoch(hi, NEW_YORK, latest=True)) for lo, hi in got
    ]
    for (_, prev_end), (next_start, _) in itertools.pairwise(ranges):
        assert next_start == prev_end + 1
    assert ranges[0][0] == wall_to_epoch(wall(start), NEW_YORK)
    assert ranges[-1][1] == wall_to_epoch(wall(end), NEW_YORK, latest=True)
    assert all(hi - lo <= DAY for lo, hi in got)


def test_window_bounds_accept_the_api_format_iso_with_offset_and_datetimes() -> None:
    assert to_wall("2026-11-20 09:00:00", SHANGHAI) == wall("2026-11-20 09:00:00")
    assert to_wall("2026-11-20T01:00:00Z", SHANGHAI) == wall("2026-11-20 09:00:00")
    assert to_wall("2026-11-20T06:30:00+05:30", SHANGHAI) == wall("2026-11-20 09:00:00")
    aware = datetime(2026, 11, 20, 1, 0, 0, 999, tzinfo=zone("UTC"))
    assert to_wall(aware, SHANGHAI) == wall("2026-11-20 09:00:00")
    assert to_wall(wall("2026-11-20 09:00:00"), SHANGHAI) == wall("2026-11-20 09:00:00")


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T09:00:00",
        "yesterday",
        "2026-11-20 9:00:00",
        "2026-11-20 09:00:0\N{FULLWIDTH DIGIT ZERO}",
        "2026-11-20 09:00:0\N{ARABIC-INDIC DIGIT ZERO}",
    ],
)
def test_window_bounds_without_an_offset_or_garbage_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"offset|neither"):
        to_wall(text, SHANGHAI)


# The ends of the calendar: every window a user can type is split or refused by name.
FIRST, LAST = datetime.min, datetime.max.replace(microsecond=0)


@pytest.mark.parametrize("tz", [SHANGHAI, NEW_YORK, zone("Pacific/Kiritimati"), zone("UTC")])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (LAST - timedelta(days=1, hours=23, minutes=59, seconds=59), LAST),
        (LAST - timedelta(hours=3), LAST),
        (LAST, LAST),
        (FIRST, FIRST + timedelta(days=2)),
        (FIRST, FIRST),
    ],
)
def test_windows_at_the_ends_of_the_calendar_are_split_without_overflow(
    tz: ZoneInfo, start: datetime, end: datetime
) -> None:
    got = spans(start, end, tz)
    assert got[0][0] == start
    assert got[-1][1] == end
    assert all(lo <= hi and hi - lo <= DAY for lo, hi in got)
    assert all(b[0] - a[1] == timedelta(seconds=1) for a, b in itertools.pairwise(got))


def test_a_window_of_every_year_is_split_lazily() -> None:
    first = list(itertools.islice(iter_spans(FIRST, LAST, SHANGHAI), 2))
    assert first == [
        (FIRST, FIRST + DAY),
        (FIRST + DAY + timedelta(seconds=1), FIRST + 2 * DAY + timedelta(seconds=1)),
    ]


@pytest.mark.parametrize(
    ("text", "tz"),
    [
        ("0001-01-01T00:00:00+14:00", SHANGHAI),
        ("9999-12-31T23:59:59-12:00", SHANGHAI),
        ("0001-01-01T00:00:00Z", NEW_YORK),
        ("9999-12-31T23:00:00Z", zone("Pacific/Kiritimati")),
    ],
)
def test_a_bound_outside_the_calendar_in_the_apps_timezone_is_refused_by_name(
    text: str, tz: ZoneInfo
) -> None:
    with pytest.raises(WindowError, match=r"outside the years 0001-9999") as caught:
        to_wall(text, tz)
    assert text in str(caught.value)
    assert isinstance(caught.value, ClientError)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (FIRST, "0001-01-01 00:00:00"),
        (datetime(999, 2, 3, 4, 5, 6), "0999-02-03 04:05:06"),
        (LAST, "9999-12-31 23:59:59"),
    ],
)
def test_api_times_have_a_four_digit_year(moment: datetime, text: str) -> None:
    assert format_api_time(moment) == text
