from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.data import StoredRow, receipt_call
from voicecdr import receipts
from voicecdr.credentials import new_signing_secret
from voicecdr.models import App, CostStatus, Language, ReceiptCall, Service
from voicecdr.rating import Charge

T0 = 1567990800  # 2019-09-09 09:00:00 Asia/Shanghai


def app(language: Language = Language.EN) -> App:
    return App(
        1,
        "A",
        "app1",
        "x",
        new_signing_secret(),
        "Asia/Shanghai",
        language,
        "https://r.example.com/dr",
        1.0,
        0,
    )


def row(service: Service, *, connected: bool = True) -> ReceiptCall:
    """The call of a stored CDR, as a receipt tells of it."""
    stored = StoredRow(
        id=9,
        service=service,
        messageid="784522",
        phone="810022458",
        country_code="91",
        show_phone="085944247",
        time=T0,
        start_time=T0 + 1 if connected else None,
        end_time=T0 + 20,
        second=19 if connected else 0,
        connected=connected,
        hangup_cause="NORMAL_CLEARING",
        hangup_disposition="recv_bye",
        ivr_result="12#",
        record_url="https://rec.example.com/9.wav",
        cost_status=CostStatus.PENDING,
        cycle=0,
        size=0,
        unit_price_nanos=0,
        basic_price_nanos=0,
        cost_nanos=0,
    )
    return receipt_call(stored)


CHARGE = Charge(20, 1, 50_000_000, 5_000_000, 50_000_000)


def test_group_call_receipt_fields() -> None:
    fields = parse_qsl(receipts.form_body(app(), row(Service.GROUP_CALL), CHARGE))
    assert fields == [
        ("phone", "810022458"),
        ("countryCode", "91"),
        ("duration", "20"),
        ("voice_type", "0"),
        ("messageid", "784522"),
        ("basic_price", "0.005"),
        ("second", "19"),
        ("cycle", "20"),
        ("size", "1"),
        ("customer_price", "0.05"),
        ("start_time", "2019-09-09 09:00:01"),
        ("end_time", "2019-09-09 09:00:20"),
        ("result", "Successful connection"),
        ("hangup_cause", "NORMAL_CLEARING"),
        ("hangup_disposition", "recv_bye"),
        ("ivr_result", "12#"),
    ]


@pytest.mark.parametrize("service", [Service.VERIFICATION, Service.NOTIFICATION])
def test_verification_and_notification_receipt_fields(service: Service) -> None:
    body = receipts.form_body(app(Language.ZH), row(service, connected=False), CHARGE)
    fields = dict(parse_qsl(body, keep_blank_values=True))
    assert list(fields) == [
        "phone",
        "countryCode",
        "duration",
        "voice_type",
        "messageid",
        "second",
        "cycle",
        "size",
        "customer_price",
        "start_time",
        "end_time",
        "result",
        "hangup_cause",
        "hangup_disposition",
        "record_url",
    ]
    assert fields["voice_type"] == "1"
    assert fields["start_time"] == ""
    assert fields["result"] == "未接通"
    assert fields["record_url"] == "https://rec.example.com/9.wav"


def test_prices_are_exact_decimals() -> None:
    tiny = Charge(6, 1, 1_000, 10, 1_000)
    fields = dict(parse_qsl(receipts.form_body(app(), row(Service.GROUP_CALL), tiny)))
    assert (fields["customer_price"], fields["basic_price"]) == ("0.000001", "0.00000001")


def test_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_signing_secret()
    body = receipts.form_body(app(), row(Service.GROUP_CALL), CHARGE)
    now = int(datetime.now(UTC).timestamp())
    headers = receipts.headers(secret, "msg_1", now, body)
    Webhook(secret).verify(body, headers, json_parse=False)
    expected = Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, UTC), body)
    assert headers["webhook-signature"] == expected
    with pytest.raises(WebhookVerificationError):
        Webhook(new_signing_secret()).verify(body, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + "&x=1", headers, json_parse=False)


@pytest.mark.parametrize(
    ("status", "body", "delivered"),
    [
        (200, b"success", True),
        (204, b" SUCCESS\n", True),
        (200, b"ok", False),
        (200, b"", False),
        (500, b"success", False),
        (302, b"success", False),
    ],
)
def test_success_means_2xx_and_the_word_success(status: int, body: bytes, delivered: bool) -> None:
    assert receipts.is_success(status, body) is delivered


@given(st.lists(st.tuples(st.sampled_from(["phone", "result", "x"]), st.text()), max_size=5))
def test_form_encoding_matches_urlencode(fields: list[tuple[str, str]]) -> None:
    assert receipts._form_encode(list(fields)) == urlencode(fields)


def test_webhook_ids_are_unique() -> None:
    assert len({receipts.new_webhook_id() for _ in range(100)}) == 100
