"""Typed records and pages of the query API, for both voice types.

Records are built leniently from the wire: NXCloud's documentation types ``messageid`` and
``size`` as strings while its examples send numbers, so each field is coerced to one type
here and the row exactly as received stays in :attr:`Record.raw`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from ._exceptions import ProtocolError
from ._timeutil import aware, parse_api_time

CONNECTED_RESULTS = frozenset({"Successful connection", "成功接通"})

GROUP_CALL_FIELDS = (
    "id",
    "result",
    "cycle",
    "time",
    "start_time",
    "end_time",
    "phone",
    "basic_price",
    "second",
    "countryCode",
    "messageid",
    "customer_price",
    "show_phone",
    "size",
    "ivr_result",
)
VOICE_FIELDS = (
    "id",
    "result",
    "cycle",
    "time",
    "start_time",
    "end_time",
    "phone",
    "second",
    "voice_type",
    "countryCode",
    "messageid",
    "customer_price",
    "show_phone",
    "size",
)
EXTENDED_FIELDS = ("cost", "cost_status", "hangup_cause", "hangup_disposition", "record_url")


class VoiceType(enum.IntEnum):
    """The query API's ``voiceType``."""

    GROUP_CALL = 0
    VERIFICATION_NOTIFICATION = 1

    @property
    def fields(self) -> tuple[str, ...]:
        """NXCloud's row fields for this voice type, in the API's order."""
        return GROUP_CALL_FIELDS if self is VoiceType.GROUP_CALL else VOICE_FIELDS


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One call attempt. Times are aware datetimes in the client's timezone; prices are
    exact Decimals. ``cost`` and the fields after it are only sent with ``extended=1``."""

    id: int
    result: str
    cycle: int
    time: datetime
    start_time: datetime | None
    end_time: datetime | None
    phone: str
    second: int
    country_code: str
    messageid: str
    customer_price: Decimal
    show_phone: str
    size: int
    cost: Decimal | None = None
    cost_status: str | None = None
    hangup_cause: str | None = None
    hangup_disposition: str | None = None
    record_url: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def connected(self) -> bool:
        return self.result in CONNECTED_RESULTS

    @property
    def charge(self) -> Decimal:
        """``cost`` when the endpoint sent it; otherwise size x customer_price for a
        connected call and the basic price for an unconnected one."""
        if self.cost is not None:
            return self.cost
        if self.connected:
            return self.size * self.customer_price
        return self._unconnected_price()

    def _unconnected_price(self) -> Decimal:
        return Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupCallRecord(Record):
    """A group call (``voiceType=0``)."""

    basic_price: Decimal
    ivr_result: str

    def _unconnected_price(self) -> Decimal:
        return self.basic_price


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceRecord(Record):
    """A verification (``voice_type`` 1) or notification (``voice_type`` 2) call."""

    voice_type: int


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of the query API."""

    total: int
    page: int
    page_size: int
    records: list[Record]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _int(value: Any, name: str) -> int:
    try:
        number = Decimal(str(value)) if not isinstance(value, int) else value
        if number != int(number):
            raise ValueError
        return int(number)
    except (ValueError, InvalidOperation, TypeError):
        raise ProtocolError(f"row field {name} is not a whole number: {value!r}") from None


def _price(value: Any, name: str) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ProtocolError(f"row field {name} is not a number: {value!r}") from None


def _time(value: Any, tz: ZoneInfo, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return aware(parse_api_time(str(value)), tz)
    except ValueError:
        raise ProtocolError(f"row field {name} is not yyyy-MM-dd HH:mm:ss: {value!r}") from None


def _optional_text(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    return None if value is None else str(value)


def record_from_row(row: Mapping[str, Any], voice_type: VoiceType, tz: ZoneInfo) -> Record:
    """Build a typed record from one wire row (parsed with Decimal floats)."""
    if not isinstance(row, Mapping) or "id" not in row:
        raise ProtocolError(f"row without an id: {row!r}")
    placed = _time(row.get("time"), tz, "time")
    if placed is None:
        raise ProtocolError(f"row {row['id']!r} has no time")
    common: dict[str, Any] = {
        "id": _int(row["id"], "id"),
        "result": _text(row.get("result")),
        "cycle": _int(row.get("cycle", 0), "cycle"),
        "time": placed,
        "start_time": _time(row.get("start_time"), tz, "start_time"),
        "end_time": _time(row.get("end_time"), tz, "end_time"),
        "phone": _text(row.get("phone")),
        "second": _int(row.get("second", 0), "second"),
        "country_code": _text(row.get("countryCode")),
        "messageid": _text(row.get("messageid")),
        "customer_price": _price(row.get("customer_price"), "customer_price"),
        "show_phone": _text(row.get("show_phone")),
        "size": _int(row.get("size", 0), "size"),
        "cost": None if row.get("cost") is None else _price(row["cost"], "cost"),
        "cost_status": _optional_text(row, "cost_status"),
        "hangup_cause": _optional_text(row, "hangup_cause"),
        "hangup_disposition": _optional_text(row, "hangup_disposition"),
        "record_url": _optional_text(row, "record_url"),
        "raw": row,
    }
    if voice_type is VoiceType.GROUP_CALL:
        return GroupCallRecord(
            **common,
            basic_price=_price(row.get("basic_price"), "basic_price"),
            ivr_result=_text(row.get("ivr_result")),
        )
    return VoiceRecord(**common, voice_type=_int(row.get("voice_type", 0), "voice_type"))
