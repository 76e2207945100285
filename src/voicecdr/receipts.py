"""Receipts: NXCloud's voice receipt form body and its Standard Webhooks signature.

Pure. The outbox stores what a body is made of rather than the body (see
``ReceiptContent``): the call, which never changes after ingest, and the charge, timezone
and language as they were when the CDR became final. The sender renders the body from
them at each attempt, so every retry sends the same bytes under the same ``webhook-id``;
only the timestamp and signature are made anew (the receiver's replay window needs a fresh
one). The rendering is therefore part of the stored format: a change to it would change
the bodies of receipts already recorded (``tests/unit/test_receipt_form.py`` pins it).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import quote_plus

from .client import sign
from .models import RESULT_TEXT, App, Language, ReceiptCall, ReceiptContent, Service
from .money import text as money_text
from .rating import Charge
from .timefmt import EpochFormatter, zone

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
# quote_plus for ASCII text as one str.translate: unreserved characters stay, a space
# becomes "+", everything else "%XX".
_ASCII_QUOTE = str.maketrans(
    {
        chr(b): chr(b) if chr(b) in _UNRESERVED else "+" if b == 32 else f"%{b:02X}"
        for b in range(128)
    }
)


def _form_encode(fields: list[tuple[str, str | int]]) -> str:
    """Exactly ``urlencode(fields)``, faster: urllib's per-character quoting was half of
    the rater's time when every priced CDR gets a receipt."""
    return "&".join(f"{name}={_quote(str(value))}" for name, value in fields)


def _quote(text: str) -> str:
    """``quote_plus(text)``: letters and digits alone are left as they are without a
    look at each character."""
    if text.isascii():
        return text if text.isalnum() else text.translate(_ASCII_QUOTE)
    return quote_plus(text)


_ID_SPACE = 1 << 96


def new_webhook_ids(now: int) -> Iterator[str]:
    """Webhook ids, ``msg_`` and 32 hex digits: the time (8 digits of Unix seconds), then
    a random 96-bit number counting up. Unique like random ids (96 random bits per second
    and stream), but ordered, so the outbox's unique index takes a batch's ids at a few
    places instead of at thousands of random ones: random ids made the receipt INSERTs
    of a rater's transaction on SQLite ~1.4x slower. A receiver sees the ids of one
    stream count up, so a stream must serve one app only."""
    stamp = f"msg_{now % (1 << 32):08x}"
    start = secrets.randbits(96)
    serial = 0
    while True:
        yield f"{stamp}{(start + serial) % _ID_SPACE:024x}"
        serial += 1


def new_webhook_id() -> str:
    return next(new_webhook_ids(int(time.time())))


_CACHE_LIMIT = 4096


class ReceiptForm:
    """Receipt bodies in one timezone and language (:func:`form_body`), rendered many at
    a time: what the bodies share is resolved once, and the encoding of values that
    repeat (prices, hangup causes, IVR results) is remembered."""

    __slots__ = ("_money", "_result", "_texts", "_when")

    def __init__(self, timezone: str, language: Language) -> None:
        self._when = EpochFormatter(zone(timezone), between="+", colon="%3A")
        failed, connected = RESULT_TEXT[language]
        self._result = (_quote(failed), _quote(connected))
        self._money: dict[int, str] = {}
        self._texts: dict[str, str] = {}

    def body(self, call: ReceiptCall, cycle: int, size: int, unit: int, basic: int) -> str:
        """The body for ``call`` charged ``size`` cycles of ``cycle`` seconds at ``unit``
        (``basic`` when it did not connect), in nanos."""
        # In ReceiptCall's order (cdrfields.RECEIPT_FIELDS).
        placed, service, phone, cc, mid, start, end, second, connected, cause, disp, ivr, url = call
        money, texts, when = self._money, self._texts, self._when
        # Phone numbers and message ids are mostly letters and digits, left as they are.
        if not (phone.isascii() and phone.isalnum()):
            phone = _quote(phone)
        if not (cc.isascii() and cc.isalnum()):
            cc = _quote(cc)
        if not (mid.isascii() and mid.isalnum()):
            mid = _quote(mid)
        if service == Service.GROUP_CALL:
            group = f"&basic_price={money.get(basic) or self._remember_money(basic)}"
            last = f"&ivr_result={texts.get(ivr) or self._remember_text(ivr)}"
        else:
            group = ""
            last = f"&record_url={_quote(url) if url else ''}"
        return (
            f"phone={phone}&countryCode={cc}"
            f"&duration={end - placed if end is not None and end > placed else 0}"
            f"&voice_type={0 if service == Service.GROUP_CALL else 1}&messageid={mid}"
            f"{group}&second={second}&cycle={cycle}&size={size}"
            f"&customer_price={money.get(unit) or self._remember_money(unit)}"
            f"&start_time={'' if start is None else when(start)}"
            f"&end_time={'' if end is None else when(end)}"
            f"&result={self._result[bool(connected)]}"
            f"&hangup_cause={texts.get(cause) or self._remember_text(cause)}"
            f"&hangup_disposition={texts.get(disp) or self._remember_text(disp)}"
            f"{last}"
        )

    def _remember_money(self, nanos: int) -> str:
        if len(self._money) >= _CACHE_LIMIT:
            self._money.clear()
        text = self._money[nanos] = money_text(nanos)
        return text

    def _remember_text(self, text: str) -> str:
        if len(self._texts) >= _CACHE_LIMIT:
            self._texts.clear()
        quoted = self._texts[text] = _quote(text)
        return quoted


def render(content: ReceiptContent) -> str:
    """The ``application/x-www-form-urlencoded`` receipt body (SPEC section 3) of a
    recorded receipt."""
    c = content
    form = _form(c.timezone, c.language)
    return form.body(c.call, c.cycle, c.size, c.unit_price_nanos, c.basic_price_nanos)


def form_body(app: App, call: ReceiptCall, charge: Charge) -> str:
    """The receipt body for a stored CDR's ``call`` charged ``charge``, in ``app``'s
    timezone and language.

    ``duration`` is the whole call, from placing it to hanging up, in seconds; ``second``
    is the billable talk time.
    """
    return render(receipt_content(app, call, charge))


def receipt_content(app: App, call: ReceiptCall, charge: Charge) -> ReceiptContent:
    """What the receipt of ``call`` charged ``charge`` is rendered from."""
    ch = charge
    return ReceiptContent(
        call,
        ch.cycle,
        ch.size,
        ch.unit_price_nanos,
        ch.basic_price_nanos,
        app.timezone,
        app.language,
    )


@lru_cache(maxsize=64)
def _form(timezone: str, language: Language) -> ReceiptForm:
    return ReceiptForm(timezone, language)


def signature(signing_secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value: ``v1,`` + base64 HMAC-SHA256 of
    ``id.timestamp.body`` keyed with the secret's decoded bytes. The client SDK's signer,
    so what receivers verify with the SDK is what the sender signs, by construction."""
    return sign(signing_secret, webhook_id, timestamp, body.encode())


def headers(signing_secret: str, webhook_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/x-www-form-urlencoded",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(signing_secret, webhook_id, timestamp, body),
    }


def is_success(status: int, body: bytes) -> bool:
    """Delivered means a 2xx answer whose body, trimmed, is ``success`` in any case."""
    return 200 <= status < 300 and body.strip().lower() == b"success"
