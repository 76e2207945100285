"""The client's receipt verifier against what voicecdr's own sender builds and signs."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from tests.support.data import StoredRow, receipt_call
from voicecdr import receipts
from voicecdr.client import GroupCallReceipt, ReceiptVerifier, SignatureError, VoiceReceipt
from voicecdr.credentials import new_signing_secret
from voicecdr.models import App, CostStatus, Language, Service
from voicecdr.rating import Charge

T0 = 1567990800  # 2019-09-09 09:00:00 Asia/Shanghai


def make_app(language: Language) -> App:
    return App(1, "A", "app1", "x", new_signing_secret(), "Asia/Shanghai", language, None, 1, 0)


def make_row(service: Service, *, connected: bool) -> Any:
    return StoredRow(
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
        hangup_cause="NORMAL_CLEARING" if connected else "NO_ANSWER",
        hangup_disposition="recv_bye",
        ivr_result="12#",
        record_url="https://rec.example.com/9.wav",
        cost_status=CostStatus.FINAL,
        cycle=20,
        size=1 if connected else 0,
        unit_price_nanos=36_000_000,
        basic_price_nanos=500_000,
        cost_nanos=36_000_000 if connected else 500_000,
    )


@pytest.mark.parametrize("language", [Language.EN, Language.ZH])
@pytest.mark.parametrize("service", list(Service))
@pytest.mark.parametrize("connected", [True, False])
def test_a_sent_receipt_verifies_and_parses_back_to_the_call(
    language: Language, service: Service, connected: bool
) -> None:
    app = make_app(language)
    row = make_row(service, connected=connected)
    charge = Charge(20, row.size, row.unit_price_nanos, row.basic_price_nanos, row.cost_nanos)
    body = receipts.form_body(app, receipt_call(row), charge)
    now = int(time.time())
    headers = receipts.headers(app.signing_secret, "msg_1", now, body)

    receipt = ReceiptVerifier(app.signing_secret, timezone=app.timezone).receive(
        body.encode(), headers
    )
    assert receipt.webhook_id == "msg_1"
    assert receipt.connected is connected
    assert receipt.messageid == "784522"
    assert receipt.second == row.second
    assert (receipt.cycle, receipt.size) == (20, row.size)
    assert receipt.customer_price == Decimal("0.036")
    assert receipt.end_time is not None
    assert receipt.end_time.timestamp() == T0 + 20
    assert (receipt.start_time is not None) is connected
    if service is Service.GROUP_CALL:
        assert isinstance(receipt, GroupCallReceipt)
        assert receipt.ivr_result == "12#"
        assert receipt.charge == Decimal(row.cost_nanos) / 10**9
    else:
        assert isinstance(receipt, VoiceReceipt)
        assert receipt.record_url == "https://rec.example.com/9.wav"
        if connected:
            assert receipt.charge == Decimal("0.036")

    with pytest.raises(SignatureError):
        ReceiptVerifier(new_signing_secret()).receive(body.encode(), headers)
