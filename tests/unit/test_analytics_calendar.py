"""The app's calendar (hours, days, ISO weeks, months across DST changes and odd offsets),
the rollups' buckets agreeing with it, and how a question is read (every refusal names
the parameter to fix)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.analytics import ZONES, hour_label
from voicecdr.analytics import (
    MAX_WINDOW_DAYS,
    AnalyticsError,
    AnalyticsQuery,
    Calendar,
    Dimension,
    Filters,
    parse_query,
)
from voicecdr.models import CostStatus, Service, VoiceGroup
from voicecdr.storage.rollups import Buckets
from voicecdr.timefmt import zone

HOUR, DAY, WEEK, MONTH = Dimension.HOUR, Dimension.DAY, Dimension.WEEK, Dimension.MONTH


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())  # type: ignore[misc]


def at(text: str) -> int:
    """A UTC time, ``yyyy-MM-dd HH:mm[:ss]``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def unit(tz: str, dim: Dimension, epoch: int) -> tuple[int, str]:
    calendar = Calendar(zone(tz))
    start = calendar.start(dim, epoch)
    return start, calendar.label(dim, start)


NY, LON, KOL, KTM, LH, UTC_ = ZONES


@pytest.mark.parametrize(
    ("tz", "dim", "instant", "start", "label"),
    [
        # New York springs forward at 02:00 EST: 01:00 EST, then 03:00 EDT.
        (NY, HOUR, "2026-03-08 06:59", "2026-03-08 06:00", "2026-03-08T01:00-05:00"),
        (NY, HOUR, "2026-03-08 07:00", "2026-03-08 07:00", "2026-03-08T03:00-04:00"),
        (NY, DAY, "2026-03-09 03:59", "2026-03-08 05:00", "2026-03-08"),  # 23 hours
        # It falls back at 02:00 EDT: 01:00 comes twice, two hours told apart by offset.
        (NY, HOUR, "2026-11-01 05:30", "2026-11-01 05:00", "2026-11-01T01:00-04:00"),
        (NY, HOUR, "2026-11-01 06:30", "2026-11-01 06:00", "2026-11-01T01:00-05:00"),
        (NY, DAY, "2026-11-02 04:59", "2026-11-01 04:00", "2026-11-01"),  # 25 hours
        (NY, MONTH, "2026-11-01 03:59", "2026-10-01 04:00", "2026-10"),
        (NY, MONTH, "2026-11-01 04:00", "2026-11-01 04:00", "2026-11"),
        (NY, WEEK, "2026-11-01 12:00", "2026-10-26 04:00", "2026-W44"),
        (NY, WEEK, "2026-11-02 05:00", "2026-11-02 05:00", "2026-W45"),
        (LON, HOUR, "2026-03-29 01:00", "2026-03-29 01:00", "2026-03-29T02:00+01:00"),
        (LON, HOUR, "2026-10-25 01:00", "2026-10-25 01:00", "2026-10-25T01:00+00:00"),
        # +05:30: local hours begin at half past UTC hours, days at 18:30 UTC.
        (KOL, HOUR, "2026-12-01 00:10", "2026-11-30 23:30", "2026-12-01T05:00+05:30"),
        (KOL, DAY, "2026-11-30 18:30", "2026-11-30 18:30", "2026-12-01"),
        (KOL, DAY, "2026-11-30 18:29:59", "2026-11-29 18:30", "2026-11-30"),
        (KOL, MONTH, "2026-11-30 18:30", "2026-11-30 18:30", "2026-12"),
        # +05:45: 2027 begins at 18:15 UTC, in ISO week 2026-W53 (Monday 28 December).
        (KTM, HOUR, "2026-12-31 18:15", "2026-12-31 18:15", "2027-01-01T00:00+05:45"),
        (KTM, HOUR, "2026-12-31 18:14", "2026-12-31 17:15", "2026-12-31T23:00+05:45"),
        (KTM, WEEK, "2026-12-31 18:15", "2026-12-27 18:15", "2026-W53"),
        (KTM, MONTH, "2026-12-31 18:15", "2026-12-31 18:15", "2027-01"),
        (KTM, DAY, "2026-12-31 18:14", "2026-12-30 18:15", "2026-12-31"),
        (UTC_, WEEK, "2027-01-03 23:59", "2026-12-28 00:00", "2026-W53"),
        (UTC_, WEEK, "2027-01-04 00:00", "2027-01-04 00:00", "2027-W01"),
        (UTC_, WEEK, "2026-01-01 00:00", "2025-12-29 00:00", "2026-W01"),
        (UTC_, MONTH, "2026-12-31 23:59", "2026-12-01 00:00", "2026-12"),
        # Lord Howe changes by half an hour: the hour it cuts starts at the change.
        (LH, HOUR, "2026-04-04 14:59", "2026-04-04 14:00", "2026-04-05T01:00+11:00"),
        (LH, HOUR, "2026-04-04 15:10", "2026-04-04 15:00", "2026-04-05T01:30+10:30"),
        (LH, HOUR, "2026-10-03 15:29", "2026-10-03 14:30", "2026-10-04T01:00+10:30"),
        (LH, HOUR, "2026-10-03 15:40", "2026-10-03 15:30", "2026-10-04T02:30+11:00"),
        (LH, DAY, "2026-10-03 15:40", "2026-10-03 13:30", "2026-10-04"),
    ],
)
def test_calendar_units(tz: str, dim: Dimension, instant: str, start: str, label: str) -> None:
    assert unit(tz, dim, at(instant)) == (at(start), label)


def test_the_repeated_hour_is_two_groups() -> None:
    calendar = Calendar(zone("America/New_York"))
    first, second = (calendar.start(HOUR, utc(2026, 11, 1, h, 30)) for h in (5, 6))
    assert second - first == 3600
    assert calendar.label(HOUR, first) != calendar.label(HOUR, second)
    assert calendar.start(DAY, first) == calendar.start(DAY, second)


instants = st.integers(utc(2025, 12, 1), utc(2027, 2, 1))


@settings(max_examples=400, deadline=None)
@given(tz=st.sampled_from(ZONES), epoch=instants)
def test_buckets_agree_with_the_calendar(tz: str, epoch: int) -> None:
    calendar = Calendar(zone(tz))
    buckets = Buckets(zone(tz))
    hour, day = calendar.start(HOUR, epoch), calendar.start(DAY, epoch)
    assert buckets(epoch) == (hour, day)
    assert buckets(epoch) == (hour, day)  # as cached for its quarter hour
    for dim in (HOUR, DAY, WEEK, MONTH):
        start = calendar.start(dim, epoch)
        assert start <= epoch
        assert calendar.start(dim, start) == start  # a unit holds its own start
    # An hour is the run of instants sharing local hour and offset, named by its first.
    assert calendar.label(HOUR, hour) == hour_label(epoch, zone(tz))
    assert calendar.label(DAY, day) == datetime.fromtimestamp(epoch, zone(tz)).date().isoformat()


# -- reading a question ----------------------------------------------------------------------

WINDOW = {"from": "2026-12-01", "to": "2026-12-02"}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({**WINDOW, "colour": "red"}, "colour"),
        ({"to": "2026-12-02"}, "from"),
        ({"from": " ", "to": "2026-12-02"}, "from"),
        ({"from": "2026-12-01"}, "to"),
        ({"from": "2026-13-01", "to": "2026-12-02"}, "from"),
        ({"from": "yesterday", "to": "2026-12-02"}, "from"),
        ({"from": "2026-12-01T10", "to": "2026-12-02"}, "from"),
        ({"from": "2026-12-01 10:00", "to": "2026-12-02"}, "from"),
        ({"from": "2026-12-01", "to": "2026-12-02 25:00:00"}, "to"),
        ({"from": "2026-12-01", "to": "2026-12-01"}, "to"),
        ({"from": "2026-12-02", "to": "2026-12-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-12-01"}, "to"),
        ({**WINDOW, "compare": "next"}, "compare"),
        ({**WINDOW, "group_by": "colour"}, "group_by"),
        ({**WINDOW, "group_by": "day,day"}, "group_by"),
        ({**WINDOW, "group_by": "country,countrycode"}, "group_by"),
        ({**WINDOW, "group_by": "day,service,country"}, "group_by"),
        ({**WINDOW, "group_by": "day,hour"}, "group_by"),
        ({**WINDOW, "service": "fax"}, "service"),
        ({**WINDOW, "voice_type": "2"}, "voice_type"),
        ({**WINDOW, "country_code": "+91"}, "country_code"),
        ({**WINDOW, "country_code": "12345"}, "country_code"),
        ({**WINDOW, "connected": "maybe"}, "connected"),
        ({**WINDOW, "cost_status": "free"}, "cost_status"),
    ],
)
def test_every_refusal_names_its_parameter(params: dict[str, str], parameter: str) -> None:
    with pytest.raises(AnalyticsError) as refused:
        parse_query(params, zone("Asia/Kolkata"))
    assert refused.value.parameter == parameter
    assert str(refused.value)


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-12-01", utc(2026, 11, 30, 18, 30)),  # local midnight
        ("2026-12-01 10:00:00", utc(2026, 12, 1, 4, 30)),  # NXCloud's format
        ("2026-12-01T10:00", utc(2026, 12, 1, 4, 30)),
        ("2026-12-01T10:00:00", utc(2026, 12, 1, 4, 30)),
        (" 2026-12-01T10:00:00 ", utc(2026, 12, 1, 4, 30)),
        ("2026-12-01T10:00:00+05:45", utc(2026, 12, 1, 4, 15)),  # its own offset
        ("2026-12-01T04:30:00Z", utc(2026, 12, 1, 4, 30)),
    ],
)
def test_accepted_time_forms(text: str, epoch: int) -> None:
    query = parse_query({"from": text, "to": "2026-12-05"}, zone("Asia/Kolkata"))
    assert query.start == epoch


def test_ambiguous_and_skipped_local_times_read_as_their_earliest_instant() -> None:
    new_york = zone("America/New_York")
    twice = parse_query({"from": "2026-11-01 01:30:00", "to": "2026-11-02"}, new_york)
    assert twice.start == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, before 01:30 EST
    skipped = parse_query({"from": "2026-03-08 02:30:00", "to": "2026-03-09"}, new_york)
    assert skipped.start == utc(2026, 3, 8, 6, 30)


def test_a_full_question() -> None:
    query = parse_query(
        {
            "from": "2026-12-01",
            "to": "2026-12-08",
            "group_by": " Day , destination",
            "service": "verification",
            "voice_type": "1",
            "country_code": "91",
            "connected": "yes",
            "cost_status": "FINAL",
            "compare": "previous",
            "format": "csv",
            "app": "app1",
        },
        zone("UTC"),
    )
    assert query == AnalyticsQuery(
        utc(2026, 12, 1),
        utc(2026, 12, 8),
        (DAY, Dimension.PREFIX),
        Filters(Service.VERIFICATION, VoiceGroup.VERIFICATION, "91", True, CostStatus.FINAL),
        compare=True,
    )
    assert query.previous() == AnalyticsQuery(
        utc(2026, 11, 24), utc(2026, 12, 1), query.group_by, query.filters
    )


def test_the_longest_window() -> None:
    tz = zone("UTC")
    longest = parse_query({"from": "2026-01-01", "to": "2027-02-05"}, tz)
    assert longest.end - longest.start == MAX_WINDOW_DAYS * 86_400
    with pytest.raises(AnalyticsError, match="400 days"):
        parse_query({"from": "2026-01-01", "to": "2027-02-05 00:00:01"}, tz)


def test_sums_add_adds_every_field() -> None:
    from dataclasses import astuple

    from voicecdr.analytics import SUM_NAMES, Sums

    total = Sums(*range(1, len(SUM_NAMES) + 1))
    total.add(Sums(*(10 * n for n in range(1, len(SUM_NAMES) + 1))))
    assert astuple(total) == tuple(11 * n for n in range(1, len(SUM_NAMES) + 1))
