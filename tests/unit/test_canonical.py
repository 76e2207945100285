from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from voicecdr.ingest.canonical import RecordErrors, validate
from voicecdr.ingest.timebounds import ANY_TIME, TimeBounds, TimeLimits
from voicecdr.models import Service

# The records below are of 2019-09-09 01:00 UTC; they are checked an hour later.
NOW = 1_567_990_800 + 3600
BOUNDS = TimeLimits().bounds(NOW)


def record(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "call_id": "7f1c2a8e-0d7e-4a55-9c56-2f0e0b7a11aa",
        "appkey": "app1",
        "service": "group_call",
        "messageid": "5f2b9c",
        "phone": "810022458",
        "country_code": "91",
        "show_phone": "085944247",
        "time": "2019-09-09T09:00:00+08:00",
        "start_time": "2019-09-09T09:00:01+08:00",
        "end_time": "2019-09-09T09:00:20+08:00",
        "second": 19,
        "connected": True,
        "hangup_cause": "NORMAL_CLEARING",
        "hangup_disposition": "recv_bye",
        "ivr_result": "12#",
        "record_url": None,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def errors_of(raw: object) -> list[str]:
    with pytest.raises(RecordErrors) as info:
        validate(raw, BOUNDS)
    return info.value.errors


def test_valid_record() -> None:
    cdr = validate(record(), BOUNDS)
    assert cdr.service is Service.GROUP_CALL
    assert (cdr.time, cdr.start_time, cdr.end_time) == (1567990800, 1567990801, 1567990820)
    assert cdr.ivr_result == "12#"
    assert len(cdr.content_hash) == 64


def test_optional_fields_may_be_absent() -> None:
    cdr = validate(
        record(
            messageid=...,
            show_phone=...,
            hangup_cause=...,
            ivr_result=...,
            hangup_disposition=...,
            record_url=...,
        ),
        BOUNDS,
    )
    assert (cdr.messageid, cdr.show_phone, cdr.ivr_result) == ("", "", "")


def test_same_call_written_two_ways_hashes_the_same() -> None:
    utc = record(
        time="2019-09-09T01:00:00Z",
        start_time="2019-09-09T01:00:01Z",
        end_time="2019-09-09T01:00:20+00:00",
    )
    assert validate(utc, BOUNDS).content_hash == validate(record(), BOUNDS).content_hash
    assert (
        validate(record(second=18), BOUNDS).content_hash != validate(record(), BOUNDS).content_hash
    )


def test_numeric_messageid_is_accepted_as_text() -> None:
    assert validate(record(messageid=784522), BOUNDS).messageid == "784522"


def other_digit(field: str, digit: str) -> str:
    return f"{field}: must use the ASCII digits 0-9, not {digit!r} (U+{ord(digit):04X})"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"call_id": ...}, "call_id: is required"),
        ({"call_id": "x" * 129}, "call_id: must be at most 128 characters"),
        ({"appkey": 5}, "appkey: must be a string, not a number"),
        ({"service": "sms"}, "service: must be one of group_call, verification, notification"),
        ({"phone": "91-810022458"}, "phone: must contain digits only"),
        ({"phone": "\u0661\u0662\u0663"}, other_digit("phone", "\u0661")),
        ({"phone": "\uff18\uff11\uff10\uff10"}, other_digit("phone", "\uff18")),
        ({"country_code": "\u0669\u0661"}, other_digit("country_code", "\u0669")),
        ({"show_phone": "\uff10\uff18\uff15\uff19"}, other_digit("show_phone", "\uff10")),
        ({"show_phone": "08\u06659"}, other_digit("show_phone", "\u0665")),
        ({"time": "\uff12\uff10\uff11\uff19-09-09T09:00:00+08:00"}, "time: must be ISO 8601"),
        ({"end_time": "2019-09-09T09:00:2\u0660+08:00"}, "end_time: must be ISO 8601"),
        ({"phone": 810022458}, "phone: must be a string of digits, not a number"),
        ({"phone": "1" * 33}, "phone: must be 1-32 digits"),
        ({"country_code": "12345"}, "country_code: must be 1-4 digits"),
        ({"country_code": ...}, "country_code: is required"),
        ({"time": "2019-09-09 09:00:00"}, "time: has no UTC offset; add one, e.g. +08:00 or Z"),
        ({"time": "yesterday"}, "time: must be ISO 8601 with an offset"),
        ({"time": 1567990800}, "time: must be an ISO 8601 string, not a number"),
        ({"start_time": "2019-09-09T08:59:59+08:00"}, "start_time: must not be before time"),
        ({"end_time": "2019-09-09T09:00:00+08:00"}, "end_time: must not be before start_time"),
        ({"second": -1}, "second: must not be negative"),
        ({"second": 86401}, "second: must be at most 86400 (24 hours)"),
        ({"second": 19.5}, "second: must be a whole number, not a number"),
        ({"second": True}, "second: must be a whole number, not a boolean"),
        ({"second": 30}, "second: is longer than end_time - start_time"),
        ({"connected": "yes"}, "connected: must be true or false, not a string"),
        ({"start_time": None}, "start_time: is required for a connected call"),
        ({"connected": False}, "second: must be 0 for a call that was not connected"),
        ({"record_url": "ftp://x/y.wav"}, "record_url: must be an http(s) URL"),
        ({"hangup_cause": "NORMAL\nCLEARING"}, "hangup_cause: must not contain control characters"),
        ({"countryCode": "91"}, "countryCode: unknown field"),
    ],
)
def test_each_problem_has_a_specific_message(changes: dict[str, Any], expected: str) -> None:
    assert any(e.startswith(expected) for e in errors_of(record(**changes))), errors_of(
        record(**changes)
    )


def unanswered(placed: str, ended: str | None = None) -> dict[str, Any]:
    return record(time=placed, start_time=None, end_time=ended or placed, connected=False, second=0)


def both_paths(raw: dict[str, Any], bounds: TimeBounds = BOUNDS) -> list[str]:
    """The errors of the fast path (a dict) and of the full one (any other mapping)."""
    found = []
    for shape in (dict, MappingProxyType):
        with pytest.raises(RecordErrors) as info:
            validate(shape(raw), bounds)
        found.append(info.value.errors)
    assert found[0] == found[1]
    return found[0]


AGE = "is more than 3660 days ago; to import older calls, raise VOICECDR_INGEST_MAX_AGE_DAYS"
AHEAD = (
    "is more than 15 minutes in the future; check the sender's clock and UTC offset "
    "(VOICECDR_INGEST_MAX_FUTURE_MINUTES)"
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            unanswered("0001-01-01T00:00:00+08:00"),
            [
                f"time: 0001-01-01T00:00:00+08:00 {AGE}",
                f"end_time: 0001-01-01T00:00:00+08:00 {AGE}",
            ],
        ),
        (
            unanswered("9999-12-31T23:59:59Z"),
            [f"time: 9999-12-31T23:59:59Z {AHEAD}", f"end_time: 9999-12-31T23:59:59Z {AHEAD}"],
        ),
        (
            unanswered("2019-09-09T09:00:00+08:00", "2019-09-09T10:15:01+08:00"),
            [f"end_time: 2019-09-09T10:15:01+08:00 {AHEAD}"],
        ),
        (
            unanswered("2009-09-01T01:59:59Z", "2019-09-09T01:00:00Z"),
            [f"time: 2009-09-01T01:59:59Z {AGE}"],
        ),
    ],
)
def test_times_must_lie_in_the_configured_range_around_now(
    raw: dict[str, Any], expected: list[str]
) -> None:
    assert both_paths(raw) == expected


def test_the_range_is_inclusive_and_configurable() -> None:
    oldest = "2009-09-01T02:00:00Z"  # 3660 days before NOW
    latest = "2019-09-09T10:15:00+08:00"  # 15 minutes after NOW
    assert validate(unanswered(oldest, latest), BOUNDS).end_time == NOW + 900
    tight = TimeLimits(max_age_days=1, max_future_minutes=0).bounds(NOW)
    ahead = "2019-09-09T10:00:01+08:00"
    assert both_paths(unanswered(ahead), tight)[0] == (
        f"time: {ahead} is more than 0 minutes in the future; check the "
        "sender's clock and UTC offset (VOICECDR_INGEST_MAX_FUTURE_MINUTES)"
    )
    old = "2019-09-08T01:59:59Z"
    assert both_paths(unanswered(old), tight)[0] == f"time: {old} {AGE.replace('3660', '1')}"
    unlimited = TimeLimits(max_age_days=0).bounds(NOW)
    assert validate(unanswered("1970-01-01T00:00:00Z"), unlimited).time == 0
    before = "1969-12-31T23:59:59Z"
    assert both_paths(unanswered(before), unlimited)[0] == f"time: {before} is before 1970"
    last = "9999-12-31T23:59:59-00:01"
    assert both_paths(unanswered(last), ANY_TIME)[0] == f"time: {last} is after the year 9999"


def test_times_are_ordered() -> None:
    assert both_paths(record(start_time="2019-09-09T08:59:59+08:00")) == [
        "start_time: must not be before time"
    ]
    assert "end_time: must not be before time" in both_paths(
        unanswered("2019-09-09T09:00:00+08:00", "2019-09-09T08:59:59+08:00")
    )


def test_unanswered_call_without_start_time() -> None:
    cdr = validate(
        record(connected=False, second=0, start_time=None, end_time="2019-09-09T09:00:15+08:00"),
        BOUNDS,
    )
    assert cdr.start_time is None
    assert not cdr.connected


def test_all_problems_are_reported_at_once() -> None:
    errors = errors_of(record(phone="abc", service="fax", second=-5))
    assert [e.split(":")[0] for e in errors] == ["phone", "service", "second"]


@pytest.mark.parametrize("raw", [[], "text", 5, None])
def test_non_objects_are_rejected(raw: object) -> None:
    assert errors_of(raw)[0].startswith("record: must be a JSON object")


def test_call_id_is_kept_for_the_report() -> None:
    with pytest.raises(RecordErrors) as info:
        validate(record(phone="x"), BOUNDS)
    assert info.value.call_id == "7f1c2a8e-0d7e-4a55-9c56-2f0e0b7a11aa"
