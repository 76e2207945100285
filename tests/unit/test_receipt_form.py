"""The rater's receipt renderer against the plain reference it replaced, byte for byte."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.data import StoredRow, receipt_call
from voicecdr import receipts
from voicecdr.models import (
    RESULT_TEXT,
    App,
    CostStatus,
    Language,
    ReceiptContent,
    Service,
    VoiceGroup,
)
from voicecdr.money import MAX_NANOS, from_nanos
from voicecdr.rating import Charge
from voicecdr.timefmt import EpochFormatter, format_epoch, zone

ZONES = ["Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
# Old local mean times (offsets in seconds, not whole minutes) and DST changes included.
EPOCHS = st.integers(min_value=-2_500_000_000, max_value=4_200_000_000)


def reference_body(app: App, row: Any, charge: Charge) -> str:
    """The receipt body as it was built before the renderer: urlencode over the fields."""
    tz = zone(app.timezone)
    group = row.service.voice_group

    def when(epoch: int | None) -> str:
        return "" if epoch is None else format_epoch(epoch, tz)

    def money(nanos: int) -> str:
        return format(from_nanos(nanos), "f")

    duration = max(0, row.end_time - row.time) if row.end_time is not None else 0
    fields: list[tuple[str, str | int]] = [
        ("phone", row.phone),
        ("countryCode", row.country_code),
        ("duration", duration),
        ("voice_type", int(group)),
        ("messageid", row.messageid),
    ]
    if group is VoiceGroup.GROUP_CALL:
        fields.append(("basic_price", money(charge.basic_price_nanos)))
    fields += [
        ("second", row.second),
        ("cycle", charge.cycle),
        ("size", charge.size),
        ("customer_price", money(charge.unit_price_nanos)),
        ("start_time", when(row.start_time)),
        ("end_time", when(row.end_time)),
        ("result", RESULT_TEXT[app.language][row.connected]),
        ("hangup_cause", row.hangup_cause),
        ("hangup_disposition", row.hangup_disposition),
    ]
    if group is VoiceGroup.GROUP_CALL:
        fields.append(("ivr_result", row.ivr_result))
    else:
        fields.append(("record_url", row.record_url or ""))
    return urlencode(fields)


TEXT = st.text(max_size=12) | st.sampled_from(["", "NORMAL_CLEARING", "recv_bye", "12#", "a b"])


@st.composite
def cases(draw: st.DrawFn) -> tuple[App, Any, Charge]:
    app = App(
        1,
        "A",
        "app1",
        "x",
        "whsec_x",
        draw(st.sampled_from(ZONES)),
        draw(st.sampled_from(list(Language))),
        "https://r.example.com/dr",
        1.0,
        0,
    )
    placed = draw(EPOCHS)
    start = draw(st.none() | st.integers(placed - 100, placed + 100))
    end = draw(st.none() | st.integers(placed - 100, placed + 5000))
    row = StoredRow(
        id=draw(st.integers(1, 2**40)),
        service=draw(st.sampled_from(list(Service))),
        messageid=draw(TEXT),
        phone=draw(TEXT),
        country_code=draw(TEXT),
        show_phone="1",
        time=placed,
        start_time=start,
        end_time=end,
        second=draw(st.integers(0, 10_000)),
        connected=draw(st.booleans()),
        hangup_cause=draw(TEXT),
        hangup_disposition=draw(TEXT),
        ivr_result=draw(TEXT),
        record_url=draw(st.none() | TEXT),
        cost_status=CostStatus.PENDING,
        cycle=0,
        size=0,
        unit_price_nanos=0,
        basic_price_nanos=0,
        cost_nanos=0,
    )
    nanos = st.integers(0, MAX_NANOS)  # every storable amount, not just prices
    charge = Charge(
        draw(st.integers(1, 3600)),
        draw(st.integers(0, 10**4)),
        *draw(st.tuples(nanos, nanos, nanos)),
    )
    return app, row, charge


@settings(max_examples=300)
@given(cases())
def test_bodies_are_those_of_the_reference(case: tuple[App, Any, Charge]) -> None:
    app, row, charge = case
    assert receipts.form_body(app, receipt_call(row), charge) == reference_body(app, row, charge)


@settings(max_examples=300)
@given(st.sampled_from(ZONES), st.lists(EPOCHS, min_size=1, max_size=20))
def test_encoded_times_are_format_epoch_encoded(name: str, epochs: list[int]) -> None:
    tz = zone(name)
    plain, encoded = EpochFormatter(tz), EpochFormatter(tz, between="+", colon="%3A")
    # Neighbouring times too: the minute's text is remembered and reused.
    for epoch in [e + d for e in epochs for d in (0, 1, 59, 60)]:
        expected = format_epoch(epoch, tz)
        assert plain(epoch) == expected
        assert encoded(epoch) == expected.replace(" ", "+").replace(":", "%3A")


def test_webhook_ids_are_ordered_and_keep_their_form() -> None:
    ids = receipts.new_webhook_ids(1_567_990_800)
    batch = [next(ids) for _ in range(1000)]
    assert all(re.fullmatch(r"msg_[0-9a-f]{32}", i) for i in batch)
    assert {i[:12] for i in batch} == {f"msg_{1_567_990_800:08x}"}  # the time, then a counter
    assert len(set(batch)) == len(batch)
    assert next(receipts.new_webhook_ids(1_567_990_800)) not in batch  # a random start
    later = next(receipts.new_webhook_ids(1_567_990_801))
    assert later > max(batch)


def test_rendering_is_pinned_byte_for_byte() -> None:
    # The outbox stores what a body is made of and the sender renders it at every
    # attempt, so a receipt recorded by one version may be sent by the next: any change
    # to these bytes changes the bodies of receipts already waiting in the outbox.
    group = ReceiptContent(
        (1567990800, 0, "810022458", "91", "ab 1", 1567990801, 1567990845, 44, 1,
         "NORMAL_CLEARING", "recv_bye", "12#", None),
        20, 3, 36_000_000, 500_000, "Asia/Shanghai", Language.ZH,
    )  # fmt: skip
    assert receipts.render(group) == (
        "phone=810022458&countryCode=91&duration=45&voice_type=0&messageid=ab+1"
        "&basic_price=0.0005&second=44&cycle=20&size=3&customer_price=0.036"
        "&start_time=2019-09-09+09%3A00%3A01&end_time=2019-09-09+09%3A00%3A45"
        "&result=%E6%88%90%E5%8A%9F%E6%8E%A5%E9%80%9A&hangup_cause=NORMAL_CLEARING"
        "&hangup_disposition=recv_bye&ivr_result=12%23"
    )
    missed = ReceiptContent(
        (1567990800, 1, "810022458", "91", "ab1", None, 1567990830, 0, 0, "NO_ANSWER",
         "send_bye", "", "https://r.example.com/a b.wav"),
        6, 0, 12_000_000, 0, "America/New_York", Language.EN,
    )  # fmt: skip
    assert receipts.render(missed) == (
        "phone=810022458&countryCode=91&duration=30&voice_type=1&messageid=ab1&second=0"
        "&cycle=6&size=0&customer_price=0.012&start_time=&end_time=2019-09-08+21%3A00%3A30"
        "&result=Unsuccessful+connection&hangup_cause=NO_ANSWER"
        "&hangup_disposition=send_bye&record_url=https%3A%2F%2Fr.example.com%2Fa+b.wav"
    )
