"""Splitting an export window into spans the server allows, and reading window bounds."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from voicecdr.client._timeutil import spans, to_wall, zone
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
