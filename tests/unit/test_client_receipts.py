"""Receipt verification: our Standard Webhooks verifier against the reference package
(``standardwebhooks``) both ways, and the NXCloud receipt form for both voice types."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import standardwebhooks

from voicecdr.client import (
    GroupCallReceipt,
    MalformedReceipt,
    ReceiptVerifier,
    SignatureError,
    VoiceReceipt,
    WebhookVerifier,
    parse_receipt,
    sign,
    verify_signature,
)
from voicecdr.credentials import new_signing_secret

GROUP_FORM = {
    "phone": "810022458",
    "countryCode": "91",
    "duration": "20",
    "voice_type": "0",
    "messageid": "784522",
    "basic_price": "0.005",
    "second": "19",
    "cycle": "20",
    "size": "1",
    "customer_price": "0.036",
    "start_time": "2026-11-20 09:00:01",
    "end_time": "2026-11-20 09:00:20",
    "result": "Successful connection",
    "hangup_cause": "NORMAL_CLEARING",
    "hangup_disposition": "recv_bye",
    "ivr_result": "12#",
}
VOICE_FORM = {
    "phone": "85987053821",
    "countryCode": "55",
    "duration": "4",
    "voice_type": "1",
    "messageid": "35618",
    "second": "3",
    "cycle": "1",
    "size": "3",
    "customer_price": "0.012",
    "start_time": "2026-11-20 09:00:01",
    "end_time": "2026-11-20 09:00:04",
    "result": "Successful connection",
    "hangup_cause": "NORMAL_CLEARING",
    "hangup_disposition": "send_bye",
    "record_url": "https://r.example.com/a.wav",
}


def signed(
    secret: str, body: bytes, *, msg_id: str = "msg_1", at: int | None = None
) -> dict[str, str]:
    """Headers as the reference implementation signs them."""
    stamp = int(time.time()) if at is None else at
    signature = standardwebhooks.Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(stamp, UTC), body.decode()
    )
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def test_ours_accepts_what_the_reference_signs() -> None:
    secret = new_signing_secret()
    body = urlencode(GROUP_FORM).encode()
    assert verify_signature(secret, body, signed(secret, body)) == "msg_1"


def test_the_reference_accepts_what_ours_signs() -> None:
    secret = new_signing_secret()
    body = urlencode(VOICE_FORM).encode()
    stamp = int(time.time())
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, "msg_2", stamp, body),
    }
    standardwebhooks.Webhook(secret).verify(body, headers, json_parse=False)
    # The key is the base64-decoded part after whsec_, and the reference's signature text
    # is byte-for-byte ours.
    reference = standardwebhooks.Webhook(secret).sign(
        "msg_2", datetime.fromtimestamp(stamp, UTC), body.decode()
    )
    assert headers["webhook-signature"] == reference


def test_a_changed_body_id_or_timestamp_is_refused() -> None:
    secret = new_signing_secret()
    body = urlencode(GROUP_FORM).encode()
    headers = signed(secret, body)
    with pytest.raises(SignatureError, match="no webhook-signature matches"):
        verify_signature(secret, body.replace(b"0.036", b"0.001"), headers)
    with pytest.raises(SignatureError):
        verify_signature(secret, body, {**headers, "webhook-id": "msg_other"})
    stamp = str(int(headers["webhook-timestamp"]) + 1)
    with pytest.raises(SignatureError):
        verify_signature(secret, body, {**headers, "webhook-timestamp": stamp})
    with pytest.raises(SignatureError):
        verify_signature(new_signing_secret(), body, headers)


def test_the_tolerance_window_bounds_replays_both_ways() -> None:
    secret = new_signing_secret()
    body = b"a=1"
    now = 1_800_000_000
    old = signed(secret, body, at=now - 301)
    with pytest.raises(SignatureError, match="too old"):
        verify_signature(secret, body, old, now=now)
    assert verify_signature(secret, body, old, now=now, tolerance=600) == "msg_1"
    future = signed(secret, body, at=now + 301)
    with pytest.raises(SignatureError, match="future"):
        verify_signature(secret, body, future, now=now)
    assert verify_signature(secret, body, signed(secret, body, at=now - 300), now=now)


def test_any_of_several_signatures_may_match_and_other_versions_are_skipped() -> None:
    old, new = new_signing_secret(), new_signing_secret()
    body = b"phone=1"
    headers = signed(new, body)
    stamp = int(headers["webhook-timestamp"])
    junk = "v1a," + base64.b64encode(b"x" * 64).decode()
    headers["webhook-signature"] = " ".join(
        [junk, "v1,not-base64!", sign(old, "msg_1", stamp, body), headers["webhook-signature"]]
    )
    assert verify_signature(old, body, headers) == "msg_1"
    assert verify_signature(new, body, headers) == "msg_1"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_refused(missing: str) -> None:
    secret = new_signing_secret()
    headers = signed(secret, b"a=1")
    del headers[missing]
    with pytest.raises(SignatureError, match="missing"):
        verify_signature(secret, b"a=1", headers)


def test_header_names_are_case_insensitive_and_timestamps_must_be_numbers() -> None:
    secret = new_signing_secret()
    headers = {k.title(): v for k, v in signed(secret, b"a=1").items()}
    assert WebhookVerifier(secret).verify(b"a=1", headers) == "msg_1"
    with pytest.raises(SignatureError, match="Unix seconds"):
        WebhookVerifier(secret).verify(b"a=1", {**headers, "Webhook-Timestamp": "soon"})
    for digits in ("\N{SUPERSCRIPT TWO}", "\N{FULLWIDTH DIGIT ONE}" * 10):
        with pytest.raises(SignatureError, match="Unix seconds"):
            WebhookVerifier(secret).verify(b"a=1", {**headers, "Webhook-Timestamp": digits})


def test_a_group_call_receipt_is_typed() -> None:
    receipt = parse_receipt(urlencode(GROUP_FORM).encode())
    assert isinstance(receipt, GroupCallReceipt)
    assert receipt.voice_type == 0
    assert receipt.basic_price == Decimal("0.005")
    assert receipt.customer_price == Decimal("0.036")
    assert receipt.ivr_result == "12#"
    assert receipt.connected
    assert receipt.charge == Decimal("0.036")
    assert receipt.start_time is not None
    assert receipt.start_time.isoformat() == "2026-11-20T09:00:01+08:00"
    assert receipt.raw == GROUP_FORM


def test_a_verification_receipt_is_typed_and_an_unconnected_call_costs_its_basic_price() -> None:
    receipt = parse_receipt(urlencode(VOICE_FORM).encode(), timezone="UTC")
    assert isinstance(receipt, VoiceReceipt)
    assert receipt.record_url == "https://r.example.com/a.wav"
    assert receipt.charge == Decimal("0.036")
    assert receipt.end_time is not None
    assert receipt.end_time.isoformat() == "2026-11-20T09:00:04+00:00"
    missed = {**GROUP_FORM, "result": "未接通", "start_time": "", "size": "0", "second": "0"}
    unconnected = parse_receipt(missed)
    assert not unconnected.connected
    assert unconnected.start_time is None
    assert unconnected.charge == Decimal("0.005")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "form"),
        (urlencode({k: v for k, v in GROUP_FORM.items() if k != "phone"}).encode(), "phone"),
        (urlencode({**GROUP_FORM, "size": "one"}).encode(), "size"),
        (urlencode({**GROUP_FORM, "size": "\N{SUPERSCRIPT TWO}"}).encode(), "size"),
        (urlencode({**GROUP_FORM, "second": "\N{FULLWIDTH DIGIT ONE}"}).encode(), "second"),
        (urlencode({**GROUP_FORM, "customer_price": "cheap"}).encode(), "customer_price"),
        # Decimal() takes these; the server writes a price as plain ASCII digits only.
        (urlencode({**GROUP_FORM, "customer_price": "\uff10.\uff15"}).encode(), "customer_price"),
        (urlencode({**GROUP_FORM, "customer_price": "NaN"}).encode(), "customer_price"),
        (urlencode({**GROUP_FORM, "basic_price": "Infinity"}).encode(), "basic_price"),
        (urlencode({**GROUP_FORM, "basic_price": "1e3"}).encode(), "basic_price"),
        (urlencode({**GROUP_FORM, "start_time": "09:00"}).encode(), "start_time"),
        (urlencode({**GROUP_FORM, "voice_type": "2"}).encode(), "voice_type"),
    ],
)
def test_malformed_receipts_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(MalformedReceipt, match=message):
        parse_receipt(body)


def test_the_receiver_verifies_before_it_parses() -> None:
    secret = new_signing_secret()
    body = urlencode(VOICE_FORM).encode()
    receiver = ReceiptVerifier(secret, timezone="Asia/Shanghai")
    receipt = receiver.receive(body, signed(secret, body, msg_id="msg_abc"))
    assert receipt.webhook_id == "msg_abc"
    assert receipt.messageid == "35618"
    with pytest.raises(SignatureError):
        receiver.receive(b"not even a form", signed(new_signing_secret(), b"not even a form"))
