"""mod_json_cdr bodies and documents -> canonical records (pure: no database)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from tests.support import freeswitch as fs
from tests.unit.test_canonical import BOUNDS
from voicecdr.ingest.canonical import validate
from voicecdr.ingest.core import Item, Rejection, check
from voicecdr.ingest.freeswitch import UndecodableCdr, decode_document, query_uuid, to_item
from voicecdr.models import Service


def mapped(doc: dict[str, Any], **kwargs: Any) -> Item:
    return to_item(doc, **kwargs)


def errors_of(item: Item) -> list[str]:
    """What the ingest core reports for this item (mapping and validation)."""
    result = check(item, BOUNDS)
    return result.errors if isinstance(result, Rejection) else []


@pytest.mark.parametrize("encoding", fs.ENCODINGS)
@pytest.mark.parametrize("encode_values", [True, False])
def test_every_encoding_decodes_to_the_same_record(encoding: str, encode_values: bool) -> None:
    doc = fs.cdr()
    body, content_type = fs.body(fs.encode_values(doc) if encode_values else doc, encoding)
    item = to_item(decode_document(body, content_type + "; charset=utf-8"))
    assert item.errors == ()
    cdr = validate(item.raw, BOUNDS)
    assert cdr.call_id == "3b5c7d1e-9a2f-4e6b-8c1d-0f2e3a4b5c6d"
    assert (cdr.appkey, cdr.service, cdr.messageid) == (
        "app1",
        Service.NOTIFICATION,
        "5f2b9c0e7a6d4b1c",
    )
    assert (cdr.phone, cdr.country_code, cdr.show_phone) == ("810022458", "91", "085944247")
    assert (cdr.time, cdr.start_time, cdr.end_time) == (fs.START, fs.START + 1, fs.START + 20)
    assert (cdr.second, cdr.connected, cdr.ivr_result) == (19, True, "12#")
    assert (cdr.hangup_cause, cdr.hangup_disposition) == ("NORMAL_CLEARING", "recv_bye")


def test_url_encoded_values_are_decoded() -> None:
    doc = fs.encode_values(fs.cdr(extra_vars={"voicecdr_ivr_result": "1#2*"}))
    assert doc["variables"]["voicecdr_ivr_result"] == "1%232%2A"
    assert validate(to_item(doc).raw, BOUNDS).ivr_result == "1#2*"


def test_unanswered_call() -> None:
    cdr = validate(to_item(fs.cdr(answered=False)).raw, BOUNDS)
    assert (cdr.connected, cdr.second, cdr.start_time) == (False, 0, None)
    assert cdr.end_time == fs.START + 32
    assert (cdr.hangup_cause, cdr.hangup_disposition) == ("NO_ANSWER", "send_cancel")


def test_older_callflow_object_form() -> None:
    assert validate(to_item(fs.cdr(callflow_as_object=True)).raw, BOUNDS).phone == "810022458"


def test_e164_destination_loses_plus_and_country_code() -> None:
    assert validate(to_item(fs.cdr(destination="+91810022458")).raw, BOUNDS).phone == "810022458"
    other = fs.cdr(destination="+44207946000")
    assert validate(to_item(other).raw, BOUNDS).phone == "44207946000"


def test_e164_destination_without_a_country_code_is_split() -> None:
    doc = fs.cdr(destination="+1 416 555 0123", drop_vars=("voicecdr_country_code",))
    cdr = validate(to_item(doc).raw, BOUNDS)
    assert (cdr.country_code, cdr.phone, cdr.region) == ("1", "4165550123", "CA")


def test_uuid_from_query_when_variables_lack_it() -> None:
    doc = fs.cdr(drop_vars=("uuid",))
    del doc["callflow"][0]["caller_profile"]["uuid"]
    assert validate(to_item(doc, uuid="from-query").raw, BOUNDS).call_id == "from-query"


@pytest.mark.parametrize(
    ("changes", "drop", "expected"),
    [
        ({}, ("voicecdr_appkey",), "variables.voicecdr_appkey: missing"),
        ({}, ("voicecdr_service",), "variables.voicecdr_service: missing"),
        ({}, ("voicecdr_country_code",), "variables.voicecdr_country_code: missing"),
        ({}, ("start_epoch",), "variables.start_epoch: missing"),
        ({}, ("billsec",), "variables.billsec: missing"),
        (
            {"voicecdr_service": "fax"},
            (),
            "variables.voicecdr_service: must be one of group_call, verification, notification",
        ),
        (
            {"start_epoch": "yesterday"},
            (),
            "variables.start_epoch: must be whole seconds since 1970, not 'yesterday'",
        ),
        (
            {"billsec": "-3"},
            (),
            "variables.billsec: must be a whole number of seconds, not '-3'",
        ),
        (
            {"voicecdr_country_code": "+91"},
            (),
            "variables.voicecdr_country_code: must contain digits only",
        ),
        (
            {"end_epoch": str(fs.START - 5)},
            (),
            "variables.end_epoch: must not be before start_time",
        ),
    ],
)
def test_problems_name_the_freeswitch_variable(
    changes: dict[str, str], drop: tuple[str, ...], expected: str
) -> None:
    item = to_item(fs.cdr(extra_vars=changes, drop_vars=drop))
    assert expected in errors_of(item)


def test_every_problem_is_reported_once() -> None:
    item = to_item(
        fs.cdr(drop_vars=("voicecdr_appkey", "start_epoch"), extra_vars={"billsec": "x"})
    )
    assert sorted(errors_of(item)) == [
        "variables.billsec: must be a whole number of seconds, not 'x'",
        "variables.start_epoch: missing",
        "variables.voicecdr_appkey: missing",
    ]


def test_missing_variables_object() -> None:
    assert to_item({"callflow": []}).error == "variables: missing"
    assert to_item({"variables": []}).error == "variables: must be a JSON object"


def test_destination_digits_are_checked() -> None:
    item = to_item(fs.cdr(destination="sip:alice"))
    assert "callflow.caller_profile.destination_number: must contain digits only" in errors_of(item)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", "application/json", "body is empty"),
        (b"{not json", "application/json", "CDR is not valid JSON"),
        (b"[1, 2]", "application/json", "CDR must be a JSON object"),
        (b"uuid=1", "application/x-www-form-urlencoded", "form body has no cdr= field"),
        (b"cdr=%%%", "application/x-www-form-base64-encoded", "broken percent-escape"),
        (b"cdr=!!notbase64!!", "application/x-www-form-urlencoded", "neither url-encoded"),
        (b"{}", "text/xml", "unsupported content type 'text/xml'"),
    ],
)
def test_undecodable_bodies(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(UndecodableCdr, match=message):
        decode_document(body, content_type)


@pytest.mark.parametrize("encoding", ["plain", "urlencoded", "base64"])
def test_error_log_files_in_every_encoding(encoding: str) -> None:
    """mod_json_cdr's error log holds the text it failed to post, minus the cdr= prefix."""
    text = orjson.dumps(fs.cdr())
    data = {
        "plain": text,
        "urlencoded": quote(text, safe="").encode(),
        "base64": base64.b64encode(text),
    }[encoding]
    assert decode_document(data + b"\n")["variables"]["uuid"] == fs.cdr()["variables"]["uuid"]


def test_an_epoch_after_year_9999_is_an_error_not_a_crash() -> None:
    """Found by the API fuzzer: a 12-digit start_epoch made datetime raise (HTTP 500)."""
    item = to_item(fs.cdr(extra_vars={"start_epoch": "999999999999"}))
    assert "variables.start_epoch: 999999999999 is after the year 9999" in errors_of(item)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("12%ZZ", "has a broken percent-escape '%ZZ'"),
        ("12%4", "has a broken percent-escape '%4'"),
        ("12%", "has a broken percent-escape '%'"),
        ("%ff", "is not UTF-8 once its percent-escapes are decoded"),
        ("%C3%28", "is not UTF-8 once its percent-escapes are decoded"),
    ],
)
def test_broken_percent_escapes_refuse_the_cdr_naming_the_variable(
    value: str, problem: str
) -> None:
    # mod_json_cdr url-encodes every value: one that does not decode is corrupt, and
    # storing U+FFFD (or the escape as it is) in its place would lose the real value.
    for name in ("voicecdr_ivr_result", "voicecdr_appkey", "hangup_cause"):
        item = to_item(fs.cdr(extra_vars={name: value}))
        errors = errors_of(item)
        assert any(e.startswith(f"variables.{name}: {problem}") for e in errors), errors
        assert "\ufffd" not in repr(item.raw)


def test_a_broken_escape_in_the_service_variable_is_reported_once() -> None:
    item = to_item(fs.cdr(extra_vars={"voicecdr_service": "notif%ication"}))
    assert errors_of(item) == [
        "variables.voicecdr_service: has a broken percent-escape '%ic': % must be followed "
        "by two hex digits (a literal % is written %25)"
    ]


def test_a_percent_encoded_utf8_value_is_decoded() -> None:
    item = to_item(fs.cdr(extra_vars={"voicecdr_ivr_result": "%E4%B8%80%231"}))
    assert validate(item.raw, BOUNDS).ivr_result == "\u4e00#1"


@pytest.mark.parametrize("encoding", ["urlencoded", "base64"])
@pytest.mark.parametrize(
    "form", ["uuid=abc&{cdr}", "{cdr}&uuid=abc", "a=1&{cdr}&b=%ZZ", "x&{cdr}", "=&{cdr}"]
)
def test_the_cdr_field_is_found_wherever_it_is_in_the_form(form: str, encoding: str) -> None:
    body, content_type = fs.body(fs.cdr(), encoding)
    text = form.format(cdr=body.decode()).encode()
    assert decode_document(text, content_type)["variables"]["uuid"] == fs.cdr()["variables"]["uuid"]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ("uuid=abc&cdrx={cdr}", "form body has no cdr= field"),
        ("uuid=abc", "form body has no cdr= field"),
        ("{cdr}&{cdr}", "form body has 2 cdr= fields; send exactly one"),
        ("uuid=1&{cdr}&cdr=", "form body has 2 cdr= fields; send exactly one"),
    ],
)
def test_a_form_without_one_cdr_field_is_refused(form: str, message: str) -> None:
    body, content_type = fs.body(fs.cdr(), "urlencoded")
    with pytest.raises(UndecodableCdr, match=message):
        decode_document(form.format(cdr=body.decode()).encode(), content_type)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"cdr=%7B%ZZ%7D", "application/x-www-form-urlencoded"),
        (b"cdr=%7B%22a%22:%22%4", "application/x-www-form-urlencoded"),
        (b"%7B%22a%22:%22x%G1%22%7D", ""),  # an error-log file written with encode=true
    ],
)
def test_a_broken_escape_in_the_encoded_cdr_is_refused(body: bytes, content_type: str) -> None:
    with pytest.raises(UndecodableCdr, match="cdr= has a broken percent-escape"):
        decode_document(body, content_type)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"uuid=abc-1", "abc-1"),
        (b"x=1&uuid=a%2Fb", "a/b"),
        (b"uuid=", None),
        (b"", None),
        (b"uuid=%E4%B8%80", "\u4e00"),
    ],
)
def test_query_uuid(query: bytes, expected: str | None) -> None:
    assert query_uuid(query) == expected


@pytest.mark.parametrize("query", [b"uuid=%ZZ", b"uuid=%ff", b"uuid=a%4", b"uuid=\xff"])
def test_a_broken_query_uuid_is_refused(query: bytes) -> None:
    with pytest.raises(UndecodableCdr, match="query parameter uuid"):
        query_uuid(query)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("start_epoch", "1", "is more than 3660 days ago"),
        ("start_epoch", "253402300799", "is more than 15 minutes in the future"),
        ("end_epoch", str(fs.START + 3 * 3600), "is more than 15 minutes in the future"),
    ],
)
def test_epochs_far_from_now_are_refused(variable: str, value: str, message: str) -> None:
    errors = errors_of(to_item(fs.cdr(extra_vars={variable: value})))
    assert any(e.startswith(f"variables.{variable}: ") and message in e for e in errors), errors


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("start_epoch", "\uff11567990800", "must be whole seconds since 1970"),
        ("start_epoch", "%EF%BC%91567990800", "must be whole seconds since 1970"),
        ("billsec", "\u0661\u0669", "must be a whole number of seconds"),
        ("voicecdr_country_code", "\u0669\u0661", "must use the ASCII digits 0-9"),
    ],
)
def test_only_ascii_digits_count(variable: str, value: str, message: str) -> None:
    errors = errors_of(to_item(fs.cdr(extra_vars={variable: value})))
    assert any(e.startswith(f"variables.{variable}: {message}") for e in errors), errors


def test_destination_with_other_digits_is_refused() -> None:
    item = to_item(fs.cdr(destination="\uff18\uff11\uff10"))
    assert errors_of(item) == [
        "callflow.caller_profile.destination_number: must use the ASCII digits 0-9, "
        "not '\uff18' (U+FF18)"
    ]
