"""NXCloud voice receipts (delivery reports): the form voicecdr pushes to an app's
``callback_url`` when a call's cost is final, verified and typed.

A receiver answers ``success`` (any case, surrounding blanks ignored) with a 2xx status
once it has stored the receipt; anything else is retried by the sender. Receipts are
delivered at least once: the same ``webhook_id`` may arrive again, so store by it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from ._exceptions import MalformedReceipt
from ._models import CONNECTED_RESULTS
from ._timeutil import aware, parse_api_time, zone
from ._webhooks import DEFAULT_TOLERANCE, WebhookVerifier

GROUP_CALL_RECEIPT_FIELDS = (
    "phone",
    "countryCode",
    "duration",
    "voice_type",
    "messageid",
    "basic_price",
    "second",
    "cycle",
    "size",
    "customer_price",
    "start_time",
    "end_time",
    "result",
    "hangup_cause",
    "hangup_disposition",
    "ivr_result",
)
VOICE_RECEIPT_FIELDS = (
    *(f for f in GROUP_CALL_RECEIPT_FIELDS if f not in ("basic_price", "ivr_result")),
    "record_url",
)
_REQUIRED = ("phone", "countryCode", "voice_type", "messageid", "result")


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """One priced call. ``webhook_id`` is set when the receipt was verified."""

    phone: str
    country_code: str
    duration: int
    voice_type: int
    messageid: str
    second: int
    cycle: int
    size: int
    customer_price: Decimal
    start_time: datetime | None
    end_time: datetime | None
    result: str
    hangup_cause: str
    hangup_disposition: str
    webhook_id: str = ""
    raw: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def connected(self) -> bool:
        return self.result in CONNECTED_RESULTS

    @property
    def charge(self) -> Decimal:
        """size x customer_price for a connected call, the basic price otherwise."""
        if self.connected:
            return self.size * self.customer_price
        return self._unconnected_price()

    def _unconnected_price(self) -> Decimal:
        return Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupCallReceipt(Receipt):
    """A group call's receipt (``voice_type=0``)."""

    basic_price: Decimal
    ivr_result: str

    def _unconnected_price(self) -> Decimal:
        return self.basic_price


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceReceipt(Receipt):
    """A verification or notification call's receipt (``voice_type=1``)."""

    record_url: str | None


def _form(body: bytes | str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(body, Mapping):
        return {str(k): str(v) for k, v in body.items()}
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    except (UnicodeDecodeError, ValueError):
        raise MalformedReceipt("the body is not an x-www-form-urlencoded form") from None


def _int(form: Mapping[str, str], name: str) -> int:
    value = form.get(name, "") or "0"
    if not (value.isascii() and value.isdigit()):  # not isdigit() alone: "²", other scripts
        raise MalformedReceipt(f"{name} is not a whole number: {value!r}")
    return int(value)


def _price(form: Mapping[str, str], name: str) -> Decimal:
    value = form.get(name, "") or "0"
    # The server writes plain ASCII decimals; Decimal() also takes "NaN", "1e3", "1_0"
    # and the digits of every script.
    if not _PLAIN_DECIMAL.fullmatch(value):
        raise MalformedReceipt(
            f"{name} is not a decimal number written with ASCII digits 0-9: {value!r}"
        )
    return Decimal(value)


_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _time(form: Mapping[str, str], name: str, tz: ZoneInfo) -> datetime | None:
    value = form.get(name, "")
    if not value:
        return None
    try:
        return aware(parse_api_time(value), tz)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise MalformedReceipt(f"{name} is not yyyy-MM-dd HH:mm:ss: {value!r}")
    return parsed.astimezone(tz)


def parse_receipt(
    body: bytes | str | Mapping[str, str], *, timezone: str = "Asia/Shanghai", webhook_id: str = ""
) -> Receipt:
    """Parse a receipt form (the raw body, or already-parsed fields) into a
    :class:`GroupCallReceipt` or :class:`VoiceReceipt`. Times are read as wall-clock
    times in ``timezone``, the app's. Raises :class:`MalformedReceipt`."""
    form = _form(body)
    missing = [name for name in _REQUIRED if name not in form]
    if missing:
        raise MalformedReceipt(f"missing field(s): {', '.join(missing)}")
    tz = zone(timezone)
    voice_type = _int(form, "voice_type")
    common: dict[str, Any] = {
        "phone": form["phone"],
        "country_code": form["countryCode"],
        "duration": _int(form, "duration"),
        "voice_type": voice_type,
        "messageid": form["messageid"],
        "second": _int(form, "second"),
        "cycle": _int(form, "cycle"),
        "size": _int(form, "size"),
        "customer_price": _price(form, "customer_price"),
        "start_time": _time(form, "start_time", tz),
        "end_time": _time(form, "end_time", tz),
        "result": form["result"],
        "hangup_cause": form.get("hangup_cause", ""),
        "hangup_disposition": form.get("hangup_disposition", ""),
        "webhook_id": webhook_id,
        "raw": form,
    }
    if voice_type == 0:
        return GroupCallReceipt(
            **common,
            basic_price=_price(form, "basic_price"),
            ivr_result=form.get("ivr_result", ""),
        )
    if voice_type == 1:
        return VoiceReceipt(**common, record_url=form.get("record_url") or None)
    raise MalformedReceipt(f"voice_type must be 0 or 1, not {voice_type}")


class ReceiptVerifier:
    """Verify and parse receipts for one app: ``receive(body, headers)`` checks the
    Standard Webhooks signature first and only then reads the form."""

    def __init__(
        self,
        signing_secret: str,
        *,
        timezone: str = "Asia/Shanghai",
        tolerance: int = DEFAULT_TOLERANCE,
    ) -> None:
        self._verifier = WebhookVerifier(signing_secret, tolerance=tolerance)
        self._timezone = timezone
        zone(timezone)

    def receive(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> Receipt:
        """The typed receipt; raises :class:`SignatureError` or :class:`MalformedReceipt`."""
        webhook_id = self._verifier.verify(body, headers, now=now)
        return parse_receipt(body, timezone=self._timezone, webhook_id=webhook_id)
