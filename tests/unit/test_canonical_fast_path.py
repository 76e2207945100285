"""validate() has a fast path for clean records; it must agree with the full checks."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_canonical import BOUNDS, record
from voicecdr.ingest.canonical import FIELDS, RecordErrors, content_hash, validate
from voicecdr.ingest.fastjson import decode_line
from voicecdr.ingest.timebounds import TimeBounds


def full(raw: dict[str, Any], bounds: TimeBounds = BOUNDS) -> object:
    # A read-only mapping is not a dict, so it always takes the full path.
    try:
        return validate(MappingProxyType(raw), bounds)
    except RecordErrors as exc:
        return exc.errors


def either(raw: dict[str, Any], bounds: TimeBounds = BOUNDS) -> object:
    try:
        return validate(raw, bounds)
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
            "0001-01-01T00:00:00+08:00",
            "9999-12-31T23:59:59Z",
            "\uff18\uff11\uff10",  # fullwidth digits
            "08\u0665",  # an Arabic-Indic digit
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


# BOUNDS, or bounds that end exactly where record()'s times do (09:00:00 to 09:00:20).
bounds_choices = st.sampled_from([BOUNDS, TimeBounds(1_567_990_800, 1_567_990_820, 1, 0)])


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(fields, values, max_size=4), st.lists(fields, max_size=2), bounds_choices)
def test_fast_path_agrees_with_full_checks(
    changes: dict[str, Any], drop: list[str], bounds: TimeBounds
) -> None:
    raw = record(**changes)
    for name in drop:
        raw.pop(name, None)
    assert either(raw, bounds) == full(raw, bounds)


def test_clean_record_takes_fast_path_and_matches() -> None:
    raw = record()
    assert validate(raw, BOUNDS) == validate(MappingProxyType(raw), BOUNDS)


# The JSONL import's compiled path (ingest/fastjson.py) decodes bytes, not a dict: it must
# accept exactly the lines that orjson + the full checks accept, with the same Cdr, and
# leave every other line to them (None).
def from_line(line: bytes, bounds: TimeBounds = BOUNDS) -> object:
    cdr = decode_line(line, bounds)
    if cdr is not None:
        return cdr
    return full_of_line(line, bounds)


def full_of_line(line: bytes, bounds: TimeBounds = BOUNDS) -> object:
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not JSON"
    return full(raw, bounds) if isinstance(raw, dict) else "not an object"


times = st.sampled_from(
    [
        "2019-09-09t09:00:00z",  # msgspec's datetime would take these; the full path not
        "2019-09-09T09:00:59.9999999+08:00",  # ...nor round this one up a second
        "2019-09-09 09:00:00+08:00",
        "2019-09-09T09:00+08:00",
        "20190909T090000+0800",
        "2019-09-09T09:00:00.5+08:00",
    ]
)
json_values = st.one_of(
    values,
    times,
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**64 - 1),  # what orjson.dumps can write
    st.lists(st.integers(-5, 5), max_size=2),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
)


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(fields, json_values, max_size=4), st.lists(fields, max_size=2), bounds_choices
)
def test_compiled_line_path_agrees_with_full_checks(
    changes: dict[str, Any], drop: list[str], bounds: TimeBounds
) -> None:
    raw = record(**changes)
    for name in drop:
        raw.pop(name, None)
    line = orjson.dumps(raw) + b"\n"
    assert from_line(line, bounds) == full_of_line(line, bounds)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([b"", b"}", b"{", b'"', b"\\ud800", b"\xff"]))
def test_compiled_line_path_never_accepts_what_orjson_refuses(noise: bytes, piece: bytes) -> None:
    line = orjson.dumps(record())[:-1] + b',"x":"' + noise + piece + b'"}'
    assert from_line(line) == full_of_line(line)


@pytest.mark.parametrize("number", [b"99999999999999999999999", b"19.0", b"1e1", b"-0"])
def test_numbers_beyond_64_bits_or_written_as_floats(number: bytes) -> None:
    # orjson reads 99999999999999999999999 as a float, msgspec as an int: the full
    # path must decide.
    line = orjson.dumps(record())[:-1] + b',"second":' + number + b"}"
    assert from_line(line) == full_of_line(line)


def test_duplicate_keys_take_the_last_value_as_orjson_does() -> None:
    line = orjson.dumps(record())[:-1] + b',"second":18}'
    assert decode_line(line, BOUNDS) == validate(record(second=18), BOUNDS)


def test_clean_line_takes_compiled_path_and_hashes_as_before() -> None:
    raw = record(record_url="https://r.example.com/a.wav", ivr_result="")
    cdr = decode_line(orjson.dumps(raw), BOUNDS)
    assert cdr is not None
    assert cdr == validate(MappingProxyType(raw), BOUNDS)
    values = {f: getattr(cdr, f) for f in FIELDS}
    values["service"] = cdr.service.wire_name
    assert cdr.content_hash == content_hash(values)  # the hash existing databases hold


def test_hashed_document_is_written_byte_for_byte_as_orjson_writes_it() -> None:
    # cdr_with_hash encodes a msgspec struct where content_hash's definition uses orjson:
    # every code point (in every field kind the document has) must come out the same,
    # and both must refuse what cannot be UTF-8 (lone surrogates).
    from voicecdr.ingest.canonical import _encode, _Hashed

    def document(text: str, number: int | None) -> _Hashed:
        return _Hashed(
            text,
            text,
            True,
            text,
            number,
            text,
            text,
            text,
            text,
            text,
            None,
            0,
            "group_call",
            text,
            number,
            -(2**63),
        )

    for start in range(0, 0x110000, 512):
        text = "".join(chr(c) for c in range(start, start + 512) if not 0xD800 <= c < 0xE000)
        doc = document(text, start)
        assert _encode(doc) == orjson.dumps({f: getattr(doc, f) for f in doc.__struct_fields__})
    for bad in ("\ud800", "a\udfffb"):
        with pytest.raises(UnicodeEncodeError):
            _encode(document(bad, None))
        with pytest.raises(orjson.JSONEncodeError):
            orjson.dumps({"a": bad})


@pytest.mark.parametrize(
    "changes",
    [
        {"time": "0001-01-01T00:00:00+08:00"},
        {"end_time": "9999-12-31T23:59:59Z"},
        {"show_phone": "\uff10\uff18\uff15"},
        {"show_phone": "\u0660\u0668"},
        {"phone": "81\uff10"},
    ],
)
def test_fast_paths_refuse_what_the_full_path_refuses(changes: dict[str, Any]) -> None:
    # Fullwidth and Arabic-Indic digits, and times far from now: none taken by a fast path.
    raw = record(**changes)
    assert decode_line(orjson.dumps(raw), BOUNDS) is None
    assert isinstance(either(raw), list)
    assert either(raw) == full(raw)
