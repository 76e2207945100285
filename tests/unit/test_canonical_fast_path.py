"""validate() has a fast path for clean records; it must agree with the full checks."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_canonical import record
from voicecdr.ingest.canonical import RecordErrors, validate


def full(raw: dict[str, Any]) -> object:
    # A read-only mapping is not a dict, so it always takes the full path.
    try:
        return validate(MappingProxyType(raw))
    except RecordErrors as exc:
        return exc.errors


def either(raw: dict[str, Any]) -> object:
    try:
        return validate(raw)
    except RecordErrors as exc:
        return exc.errors


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 100_000),
    st.sampled_from(
        [
            "",
            "91",
            "810022458",
            "+91",
            "group_call",
            "NOTIFICATION",
            "fax",
            "2019-09-09T09:00:00+08:00",
            "2019-09-09T09:00:01+08:00",
            "2019-09-09T09:00:30+08:00",
            "2019-09-09T08:59:00",
            "2019-09-09T01:00:01Z",
            "https://r.example.com/a.wav",
            "ftp://x",
            "a\nb",
            "x" * 129,
        ]
    ),
    st.text(max_size=8),
)
fields = st.sampled_from(
    [
        "call_id",
        "appkey",
        "service",
        "messageid",
        "phone",
        "country_code",
        "show_phone",
        "time",
        "start_time",
        "end_time",
        "second",
        "connected",
        "hangup_cause",
        "hangup_disposition",
        "ivr_result",
        "record_url",
        "extra",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(fields, values, max_size=4), st.lists(fields, max_size=2))
def test_fast_path_agrees_with_full_checks(changes: dict[str, Any], drop: list[str]) -> None:
    raw = record(**changes)
    for name in drop:
        raw.pop(name, None)
    assert either(raw) == full(raw)


def test_clean_record_takes_fast_path_and_matches() -> None:
    raw = record()
    assert validate(raw) == validate(MappingProxyType(raw))
