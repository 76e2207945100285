"""mod_json_cdr bodies and documents -> canonical records (pure: no database)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from tests.support import freeswitch as fs
from voicecdr.ingest.canonical import RecordErrors, validate
from voicecdr.ingest.core import Item
from voicecdr.ingest.freeswitch import UndecodableCdr, decode_document, to_item
from voicecdr.models import Service


def mapped(doc: dict[str, Any], **kwargs: Any) -> Item:
    return to_item(doc, **kwargs)


def errors_of(item: Item) -> list[str]:
    """What the ingest core would report for this item (mapping and validation)."""
    if item.error:
        return [item.error]
    try:
        validate(item.raw)
    except RecordErrors as exc:
        rejection = item.reject(exc.errors)
        found = [e.partition(": ")[0] for e in item.errors]
        return [*item.errors, *(e for e in rejection.errors if e.partition(": ")[0] not in found)]
    return list(item.errors)


@pytest.mark.parametrize("encoding", fs.ENCODINGS)
@pytest.mark.parametrize("encode_values", [True, False])
def test_every_encoding_decodes_to_the_same_record(encoding: str, encode_values: bool) -> None:
    doc = fs.cdr()
    body, content_type = fs.body(fs.encode_values(doc) if encode_values else doc, encoding)
    item = to_item(decode_document(body, content_type + "; charset=utf-8"))
    assert item.errors == ()
    cdr = validate(item.raw)
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
    assert validate(to_item(doc).raw).ivr_result == "1#2*"


def test_unanswered_call() -> None:
    cdr = validate(to_item(fs.cdr(answered=False)).raw)
    assert (cdr.connected, cdr.second, cdr.start_time) == (False, 0, None)
    assert cdr.end_time == fs.START + 32
    assert (cdr.hangup_cause, cdr.hangup_disposition) == ("NO_ANSWER", "send_cancel")


def test_older_callflow_object_form() -> None:
    assert validate(to_item(fs.cdr(callflow_as_object=True)).raw).phone == "810022458"


def test_e164_destination_loses_plus_and_country_code() -> None:
    assert validate(to_item(fs.cdr(destination="+91810022458")).raw).phone == "810022458"
    other = fs.cdr(destination="+44207946000")
    assert validate(to_item(other).raw).phone == "44207946000"


def test_uuid_from_query_when_variables_lack_it() -> None:
    doc = fs.cdr(drop_vars=("uuid",))
    del doc["callflow"][0]["caller_profile"]["uuid"]
    assert validate(to_item(doc, uuid="from-query").raw).call_id == "from-query"


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
        (b"cdr=%%%", "application/x-www-form-base64-encoded", "neither url-encoded nor base64"),
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
