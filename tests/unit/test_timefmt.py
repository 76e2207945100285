from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecdr.timefmt import (
    EpochFormatter,
    WindowError,
    format_epoch,
    format_wall,
    parse_api_time,
    parse_cli_time,
    parse_iso8601,
    query_window,
    wall_to_epoch,
    zone,
)

SHANGHAI = zone("Asia/Shanghai")
NEW_YORK = zone("America/New_York")
DAY = timedelta(hours=24)
WEEK = timedelta(days=7)
# 2026-11-27 12:00:00 in Shanghai
NOW = 1795752000.0


def window(start: str, end: str, **kwargs: object) -> tuple[int, int]:
    options: dict[str, object] = {"now": NOW, "max_span": DAY, "max_age": WEEK}
    options.update(kwargs)
    w = query_window(start, end, SHANGHAI, **options)  # type: ignore[arg-type]
    return w.start, w.end


def test_api_time_round_trip_in_app_timezone() -> None:
    epoch = wall_to_epoch(parse_api_time("2019-09-09 09:00:01"), SHANGHAI)
    assert epoch == 1567990801  # 01:00:01 UTC
    assert format_epoch(epoch, SHANGHAI) == "2019-09-09 09:00:01"
    assert format_epoch(epoch, zone("UTC")) == "2019-09-09 01:00:01"


@pytest.mark.parametrize(
    "text",
    [
        "2019-09-09",
        "2019-09-09T09:00:01",
        "2019-9-9 09:00:01",
        "2019-09-09 09:00:01.5",
        " 2019-09-09 09:00:01",
        "2019-09-09 09:00:01 ",
        "2019/09/09 09:00:01",
        "",
    ],
)
def test_api_time_format_is_exact(text: str) -> None:
    with pytest.raises(ValueError, match="yyyy-MM-dd HH:mm:ss"):
        parse_api_time(text)


@pytest.mark.parametrize(
    "text", ["2019-02-30 00:00:00", "2019-09-09 24:00:00", "2019-13-01 00:00:00"]
)
def test_api_time_must_exist(text: str) -> None:
    with pytest.raises(ValueError, match="not a real date"):
        parse_api_time(text)


def test_repeated_wall_time_covers_both_instants() -> None:
    # 2026-11-01 01:30 happens twice in New York (EDT, then EST).
    wall = datetime(2026, 11, 1, 1, 30)
    first = wall_to_epoch(wall, NEW_YORK)
    last = wall_to_epoch(wall, NEW_YORK, latest=True)
    assert last - first == 3600


def test_skipped_wall_time_keeps_the_window_wide() -> None:
    # 2026-03-08 02:30 never happens in New York (clocks jump from 02:00 to 03:00).
    wall = datetime(2026, 3, 8, 2, 30)
    start = wall_to_epoch(datetime(2026, 3, 8, 1, 0), NEW_YORK)
    end = wall_to_epoch(wall, NEW_YORK, latest=True)
    assert format_epoch(end, NEW_YORK) == "2026-03-08 03:30:00"
    assert end - start == 90 * 60  # 01:00 EST to 03:30 EDT: 01:30-01:59 included
    assert wall_to_epoch(wall, NEW_YORK) == end - 3600


def test_window_is_inclusive_and_converted() -> None:
    start, end = window("2026-11-27 00:00:00", "2026-11-27 10:00:00")
    assert format_epoch(start, SHANGHAI) == "2026-11-27 00:00:00"
    assert format_epoch(end, SHANGHAI) == "2026-11-27 10:00:00"


def test_span_of_exactly_the_limit_is_allowed() -> None:
    start, end = window("2026-11-26 10:00:00", "2026-11-27 10:00:00")
    assert end - start == 86400


def test_span_over_the_limit_is_range_too_large() -> None:
    with pytest.raises(WindowError) as info:
        window("2026-11-26 10:00:00", "2026-11-27 10:00:01")
    assert info.value.kind == "range_too_large"
    assert "24 hours" in str(info.value)


def test_start_after_end_is_invalid() -> None:
    with pytest.raises(WindowError) as info:
        window("2026-11-27 10:00:01", "2026-11-27 10:00:00")
    assert (info.value.kind, info.value.field) == ("invalid_parameter", "start_time")


def test_bad_end_time_names_the_field() -> None:
    with pytest.raises(WindowError) as info:
        window("2026-11-27 10:00:00", "tomorrow")
    assert (info.value.kind, info.value.field) == ("invalid_parameter", "end_time")
    assert str(info.value).startswith("end_time ")


def test_start_older_than_max_age_is_out_of_window() -> None:
    with pytest.raises(WindowError) as info:
        window("2026-11-20 11:59:59", "2026-11-20 12:00:00")
    assert info.value.kind == "out_of_window"
    assert window("2026-11-20 12:00:00", "2026-11-20 13:00:00")  # exactly 7 days: fine


def test_unlimited_age() -> None:
    start, _ = window("2019-09-09 09:00:01", "2019-09-09 09:00:11", max_age=None)
    assert start == 1567990801


def test_iso8601_requires_an_offset() -> None:
    assert parse_iso8601("2019-09-09T09:00:01+08:00") == 1567990801
    assert parse_iso8601("2019-09-09T01:00:01Z") == 1567990801
    assert parse_iso8601("2019-09-09T01:00:01.999Z") == 1567990801
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_iso8601("2019-09-09T09:00:01")
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_iso8601("09/09/2019")


# The zero of some scripts whose digits \\d, str.isdigit() and int() take as 0-9.
_OTHER_ZEROS = [0xFF10, 0x0660, 0x06F0, 0x0966, 0x1D7CE]


def _in_script(text: str, zero: int) -> str:
    return text.translate({ord("0") + i: zero + i for i in range(10)})


@pytest.mark.parametrize("zero", _OTHER_ZEROS)
def test_times_take_ascii_digits_only(zero: int) -> None:
    for text in ("2019-09-09 09:00:01", "2019-09-09T09:00:01+08:00"):
        for other in (_in_script(text, zero), text[:-1] + _in_script(text[-1], zero)):
            with pytest.raises(ValueError, match="yyyy-MM-dd HH:mm:ss"):
                parse_cli_time(other, SHANGHAI)
            with pytest.raises(ValueError, match="ISO 8601"):
                parse_iso8601(other)
            with pytest.raises(ValueError, match="with ASCII digits 0-9"):
                parse_api_time(other)
    with pytest.raises(WindowError, match="start_time must be yyyy-MM-dd HH:mm:ss with ASCII"):
        window(_in_script("2026-11-27 09:00:00", zero), "2026-11-27 10:00:00")


@given(
    epoch=st.integers(0, 4_102_444_800),  # 1970 to 2100
    name=st.sampled_from(
        [
            "Asia/Shanghai",
            "America/New_York",
            "Europe/London",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "Africa/Monrovia",
            "UTC",
        ]
    ),
)
def test_fast_formatting_matches_datetime(epoch: int, name: str) -> None:
    tz = zone(name)
    assert format_epoch(epoch, tz) == datetime.fromtimestamp(epoch, tz).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def test_unknown_zone() -> None:
    with pytest.raises(ValueError, match="unknown IANA timezone"):
        zone("Mars/Olympus")


@pytest.mark.parametrize(
    "tz",
    ["Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Africa/Monrovia"],
)
def test_the_page_formatter_agrees_with_format_epoch(tz: str) -> None:
    # Every 72 minutes and 17 s over two years, across DST changes both ways (Lord Howe
    # moves by half an hour), plus seconds around one change, and a zone whose old
    # offset had seconds (Monrovia, -0:44:30 until 1972).
    zone_ = zone(tz)
    fmt = EpochFormatter(zone_)
    epochs = list(range(0, 2 * 365 * 86_400, 4_337)) + list(range(1_710_054_000, 1_710_061_200, 7))
    for epoch in epochs:
        assert fmt(epoch) == format_epoch(epoch, zone_)
    for epoch in range(-1, 63_072_000, 86_399):  # 1970-1971: Monrovia's old offset
        expected = datetime.fromtimestamp(epoch, zone_).strftime("%Y-%m-%d %H:%M:%S")
        assert fmt(epoch) == expected


@pytest.mark.parametrize(
    ("wall", "text"),
    [
        (datetime(1, 1, 1), "0001-01-01 00:00:00"),
        (datetime(999, 2, 3, 4, 5, 6), "0999-02-03 04:05:06"),
        (datetime(9999, 12, 31, 23, 59, 59), "9999-12-31 23:59:59"),
    ],
)
def test_wall_times_render_with_a_four_digit_year(wall: datetime, text: str) -> None:
    # strftime's %Y gives year 1 as "1" on Linux: no such text parses back.
    assert format_wall(wall) == text
    assert parse_api_time(text) == wall
