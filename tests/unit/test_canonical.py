from __future__ import annotations

from typing import Any

import pytest

from voicecdr.ingest.canonical import RecordErrors, validate
from voicecdr.models import Service


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
        validate(raw)
    return info.value.errors


def test_valid_record() -> None:
    cdr = validate(record())
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
        )
    )
    assert (cdr.messageid, cdr.show_phone, cdr.ivr_result) == ("", "", "")


def test_same_call_written_two_ways_hashes_the_same() -> None:
    utc = record(
        time="2019-09-09T01:00:00Z",
        start_time="2019-09-09T01:00:01Z",
        end_time="2019-09-09T01:00:20+00:00",
    )
    assert validate(utc).content_hash == validate(record()).content_hash
    assert validate(record(second=18)).content_hash != validate(record()).content_hash


def test_numeric_messageid_is_accepted_as_text() -> None:
    assert validate(record(messageid=784522)).messageid == "784522"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"call_id": ...}, "call_id: is required"),
        ({"call_id": "x" * 129}, "call_id: must be at most 128 characters"),
        ({"appkey": 5}, "appkey: must be a string, not a number"),
        ({"service": "sms"}, "service: must be one of group_call, verification, notification"),
        ({"phone": "+91810022458"}, "phone: must contain digits only"),
        ({"phone": "١٢٣"}, "phone: must contain digits only"),
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


def test_unanswered_call_without_start_time() -> None:
    cdr = validate(
        record(connected=False, second=0, start_time=None, end_time="2019-09-09T09:00:15+08:00")
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
        validate(record(phone="x"))
    assert info.value.call_id == "7f1c2a8e-0d7e-4a55-9c56-2f0e0b7a11aa"
