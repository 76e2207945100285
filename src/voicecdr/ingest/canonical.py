"""Validation of canonical CDRs (SPEC section 4) with one specific message per problem.

Pure: takes a mapping, returns a Cdr or the list of everything wrong with it, so a source
can report all problems of a record at once. The fields and their limits are
``cdrfields``'s. A ``phone`` in international form is split into country code and
national number (``e164``), so the same call written either way is the same record.
A clean record takes a fast path (:func:`checked_record`, shared with the
JSONL import's ``fastjson``) that only ever accepts what the full checks accept.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from hashlib import sha256 as _sha256
from math import floor
from operator import itemgetter
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import Meta

from ..cdrfields import CANONICAL, CANONICAL_NAMES, MAX_SECOND, Field, Kind
from ..e164 import ONE_REGION as _one_region
from ..e164 import SHARED_CODES as _shared_codes
from ..e164 import is_international, region_of, split
from ..e164 import shared_region as _shared_region
from ..models import Cdr, Service
from ..timefmt import parse_iso8601
from .timebounds import TimeBounds

_new_tuple = tuple.__new__

FIELDS = CANONICAL_NAMES
# The limits, from the one table (cdrfields.FIELDS): field -> (max length, required) for
# text, field -> (fewest, most) digits for numbers.
_TEXT = {f.name: (f.most, f.required) for f in CANONICAL if f.kind is Kind.TEXT}
_DIGITS = {f.name: (1, f.most) for f in CANONICAL if f.kind is Kind.DIGITS}
_URL_MOST = next(f.most for f in CANONICAL if f.kind is Kind.URL)
_URL_RE = re.compile(r"https?://[^\s]+", re.IGNORECASE)


class RecordErrors(Exception):
    """Every problem found in one record, as ``field: message`` strings."""

    def __init__(self, errors: list[str], call_id: str | None) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        self.call_id = call_id


def validate(raw: object, bounds: TimeBounds) -> Cdr:
    """Validate one canonical record, its times within ``bounds``; raises RecordErrors
    listing every problem."""
    if type(raw) is dict:
        try:
            return checked_record(_convert(raw, Record), bounds)
        except (msgspec.MsgspecError, ValueError, NotSure):
            pass
    if not isinstance(raw, Mapping):
        raise RecordErrors([f"record: must be a JSON object, not {_kind(raw)}"], None)
    errors: list[str] = []
    call_id = raw.get("call_id") if isinstance(raw.get("call_id"), str) else None

    def take(field: str, check: Callable[[Any], Any]) -> Any:
        try:
            return check(raw.get(field))
        except ValueError as exc:
            errors.append(f"{field}: {exc}")
            return None

    errors.extend(f"{name}: unknown field" for name in raw if name not in _FIELD_SET)
    text = {f: take(f, check) for f, check in _TEXT_CHECKS.items()}
    digits = _number(raw, errors)
    service = take("service", _service)
    placed = take("time", _required_time)
    answered = take("start_time", _optional_time)
    ended = take("end_time", _optional_time)
    second = take("second", _second)
    connected = take("connected", _bool)
    record_url = take("record_url", _url)
    for name, epoch in (("time", placed), ("start_time", answered), ("end_time", ended)):
        problem = None if epoch is None else bounds.problem(epoch)
        if problem is not None:
            errors.append(f"{name}: {raw.get(name)} {problem}")

    if placed is not None and answered is not None and answered < placed:
        errors.append("start_time: must not be before time")
    began = answered if answered is not None else placed
    if ended is not None and began is not None and ended < began:
        errors.append(
            f"end_time: must not be before {'time' if answered is None else 'start_time'}"
        )
    if connected is True and "start_time" not in _failed(errors) and answered is None:
        errors.append("start_time: is required for a connected call")
    if connected is False and second:
        errors.append("second: must be 0 for a call that was not connected")
    if second and answered is not None and ended is not None and second > ended - answered + 1:
        errors.append("second: is longer than end_time - start_time")
    if errors:
        raise RecordErrors(errors, call_id)

    values = {
        **text,
        **digits,
        "service": service,
        "time": placed,
        "start_time": answered,
        "end_time": ended,
        "second": second,
        "connected": connected,
        "record_url": record_url,
    }
    return cdr_with_hash(tuple(map(values.__getitem__, FIELDS)))


# The document content_hash hashes: the record's fields in sorted order, as msgspec
# writes them byte for byte as orjson does (tests pin it).
_Hashed = msgspec.defstruct("_Hashed", sorted(FIELDS), gc=False)
_SORTED = itemgetter(*sorted(range(len(FIELDS)), key=FIELDS.__getitem__))
_SERVICE_AT = FIELDS.index("service")
_PHONE_AT = FIELDS.index("phone")
_CODE_AT = FIELDS.index("country_code")
_encode = msgspec.json.Encoder().encode


def cdr_with_hash(values: tuple[Any, ...]) -> Cdr:
    """The Cdr of a record's validated values (in ``FIELDS`` order), with their
    :func:`content_hash`, equal to the hashes stored by every earlier version (the hashed
    document is a :class:`_Hashed` struct, which msgspec encodes faster than orjson a
    dict), and the region of its number."""
    document = _Hashed(*_SORTED(values))
    document.service = _WIRE_NAMES[values[_SERVICE_AT]]  # type: ignore[attr-defined]
    region = region_of(values[_CODE_AT], values[_PHONE_AT])
    # Straight to tuple.__new__, which is all the NamedTuple's own __new__ does after one
    # more Python call: this runs once per record.
    return _new_tuple(Cdr, (*values, _sha256(_encode(document)).hexdigest(), region))


def _struct_field(f: Field) -> tuple[str, Any] | tuple[str, Any, None]:
    """A canonical field as msgspec checks it: its type and limits, and None as its
    default where it is optional."""
    kind: Any = bool if f.kind is Kind.FLAG else str  # service and times: str too
    if f.kind in (Kind.TEXT, Kind.DIGITS, Kind.URL):
        kind = Annotated[str, Meta(min_length=int(f.required), max_length=f.most)]
    elif f.kind is Kind.SECONDS:
        kind = Annotated[int, Meta(ge=0, le=f.most)]
    return (f.name, kind) if f.required else (f.name, kind | None, None)


# The fast paths' first check, in C: a record's types and limits (from the one table),
# no unknown fields. What msgspec cannot check is :func:`checked_record`'s.
Record = msgspec.defstruct(
    "Record",
    [_struct_field(f) for f in CANONICAL],
    kw_only=True,
    forbid_unknown_fields=True,
    gc=False,
)
_convert = msgspec.convert


class NotSure(Exception):
    """A fast path's doubt: the full validation decides and words the errors."""


def checked_record(r: Any, bounds: TimeBounds) -> Cdr:
    """The Cdr of a :data:`Record` (msgspec checked each field), its times within
    ``bounds``: validate() for a record with nothing wrong, in a fraction of its time (an
    import spends most of its CPU here). Raises NotSure, ValueError (a time
    ``fromisoformat`` cannot read) at the first doubt; property tests pin that it agrees
    with the full path."""
    messageid = r.messageid or ""
    show_phone = r.show_phone or ""
    cause = r.hangup_cause or ""
    disposition = r.hangup_disposition or ""
    ivr = r.ivr_result or ""
    phone, code = r.phone, r.country_code
    if not code or phone[0] == "+":
        phone, code = _split_sure(phone, code)
    digits = phone + code
    # Concatenated: a string is printable exactly when each of its parts is.
    text = r.call_id + r.appkey + messageid + show_phone + cause + disposition + ivr
    service = _SERVICES.get(r.service.upper())
    ascii_digits = digits.isdigit() and digits.isascii() and show_phone.isascii()
    if not (text.isprintable() and ascii_digits) or service is None:
        raise NotSure
    placed = _epoch(r.time)
    answered = _epoch(r.start_time) if r.start_time else None
    ended = _epoch(r.end_time) if r.end_time else None
    second, connected = r.second, r.connected
    began = placed if answered is None else answered
    last = began if ended is None else ended  # the latest of the three, when in order
    if (
        (answered is not None and answered < placed)
        or (ended is not None and ended < began)
        or placed < bounds.earliest
        or last > bounds.latest
        or (connected and answered is None)
        or (not connected and second)
        or (second and answered is not None and ended is not None and second > ended - answered + 1)
    ):
        raise NotSure
    record_url = r.record_url or None
    if record_url is not None and not _URL_RE.fullmatch(record_url):
        raise NotSure
    # region_of written out: a code of one region is one dict lookup.
    region = _one_region_get(code)
    if region is None and code in _shared_codes:
        region = _shared_region(code, phone)
    # What cdr_with_hash does, written out: its generic reorder is measurably slower on
    # this path. Fields in sorted order for the hash, in FIELDS order for the Cdr; the
    # property tests compare both with the full path's.
    document = _Hashed(
        r.appkey,
        r.call_id,
        r.connected,
        code,
        ended,
        cause,
        disposition,
        ivr,
        messageid,
        phone,
        record_url,
        r.second,
        _WIRE_NAMES[service],
        show_phone,
        answered,
        placed,
    )
    digest = _sha256(_encode(document)).hexdigest()
    return _new_tuple(
        Cdr,
        (
            r.call_id,
            r.appkey,
            service,
            messageid,
            phone,
            code,
            show_phone,
            placed,
            answered,
            ended,
            r.second,
            r.connected,
            cause,
            disposition,
            ivr,
            record_url,
            digest,
            region,
        ),
    )


_one_region_get = _one_region.get


def _split_sure(phone: str, code: str | None) -> tuple[str, str]:
    """The fast path's :func:`_number`: phone and country code of an international
    phone; NotSure where the full path would say something is wrong."""
    if not (phone[0] == "+" or (not code and phone.startswith("00"))):
        raise NotSure
    try:
        number = split(phone)
    except ValueError:
        raise NotSure from None
    if code and code != number.country_code:
        raise NotSure
    return number.phone, number.country_code


_fromiso = datetime.fromisoformat


def _epoch(value: str) -> int:
    parsed = _fromiso(value)  # "" and anything unreadable: ValueError, the full path's
    if parsed.tzinfo is None:
        raise NotSure
    # floor(x) == int(x // 1) for every finite float: the full path's value, one call less.
    return floor(parsed.timestamp())


def content_hash(values: Mapping[str, Any]) -> str:
    """Hash of the normalised content: the same call written two ways hashes the same."""
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()


_PHONE_MOST = _DIGITS["phone"][1]


def _number(raw: Mapping[str, Any], errors: list[str]) -> dict[str, str | None]:
    """``phone`` and ``country_code``, as stored: digits. A phone in international form
    (``+``, or ``00`` when no country code is given; docs/reference/api.md) is split by
    e164.split into both; given with a country code too, the two must agree. Problems
    go to ``errors``."""
    phone, code = raw.get("phone"), raw.get("country_code")
    if code is not None and code != "":
        try:
            code = _DIGIT_CHECKS["country_code"](code)
        except ValueError as exc:
            errors.append(f"country_code: {exc}")
            code = None
            if isinstance(phone, str) and phone.startswith("+"):
                return {"phone": None, "country_code": None}
    elif not (isinstance(phone, str) and is_international(phone)):
        errors.append("country_code: is required")  # unless phone is international
    international = isinstance(phone, str) and (
        phone.startswith("+") or (not code and is_international(phone))
    )
    if not international:
        try:
            phone = _DIGIT_CHECKS["phone"](phone)
        except ValueError as exc:
            errors.append(f"phone: {exc}")
            phone = None
        return {"phone": phone, "country_code": code}
    assert isinstance(phone, str)
    if len(phone) > _PHONE_MOST:
        errors.append(f"phone: must be at most {_PHONE_MOST} characters")
        return {"phone": None, "country_code": None}
    try:
        number = split(phone)
    except ValueError as exc:
        errors.append(f"phone: {exc}")
        return {"phone": None, "country_code": None}
    if code and code != number.country_code:
        errors.append(
            f"phone: {phone!r} has country code {number.country_code}, country_code says {code}"
        )
        return {"phone": None, "country_code": None}
    return {"phone": number.phone, "country_code": number.country_code}


def priced_fields(
    service: str, phone: str, country_code: str, second: str
) -> tuple[Service, str, str, int]:
    """What pricing reads of a call (service, phone, country code, seconds), typed in as
    text (the console's cost check) and checked by the rules ingest holds a record to;
    raises RecordErrors naming every problem."""
    errors: list[str] = []
    number = _number({"phone": phone, "country_code": country_code}, errors)
    checked: dict[str, Any] = {}
    for field, value, check in (
        ("service", service, _service),
        ("second", int(second) if second.isascii() and second.isdigit() else second, _second),
    ):
        try:
            checked[field] = check(value)
        except ValueError as exc:
            errors.append(f"{field}: {exc}")
    if errors:
        raise RecordErrors(errors, None)
    return checked["service"], str(number["phone"]), str(number["country_code"]), checked["second"]


def _failed(errors: list[str]) -> set[str]:
    return {e.split(":", 1)[0] for e in errors}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
    }.get(type(value), type(value).__name__)


def _text_check(field: str, max_len: int, required: bool) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value is None or value == "":
            if required:
                raise ValueError("is required")
            return ""
        if isinstance(value, int) and not isinstance(value, bool) and field == "messageid":
            value = str(value)  # switches often send numeric message ids
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_kind(value)}")
        if len(value) > max_len:
            raise ValueError(f"must be at most {max_len} characters")
        if not value.isprintable():
            raise ValueError("must not contain control characters")
        return value

    return check


def _digits_check(low: int, high: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value is None or value == "":
            raise ValueError("is required")
        if not isinstance(value, str):
            raise ValueError(f"must be a string of digits, not {_kind(value)}")
        if not (value.isascii() and value.isdigit()):
            _refuse_other_digits(value)
            raise ValueError("must contain digits only")
        if not low <= len(value) <= high:
            raise ValueError(f"must be {low}-{high} digits")
        return value

    return check


def _ascii_digits(check: Callable[[Any], str]) -> Callable[[Any], str]:
    """``check``, then refuse digits other than ASCII 0-9 (fullwidth, Arabic-Indic...)."""

    def checked(value: Any) -> str:
        text = check(value)
        if not text.isascii():
            _refuse_other_digits(text)
        return text

    return checked


def _refuse_other_digits(value: str) -> None:
    other = next((c for c in value if c.isdigit() and not c.isascii()), None)
    if other is not None:
        raise ValueError(f"must use the ASCII digits 0-9, not {other!r} (U+{ord(other):04X})")


_SERVICE_NAMES = ", ".join(s.wire_name for s in Service)
_SERVICES = {s.name: s for s in Service}
_WIRE_NAMES = {s: s.wire_name for s in Service}  # an enum property per record is measurable


def _service(value: Any) -> Service:
    if not isinstance(value, str) or value.upper() not in Service.__members__:
        raise ValueError(f"must be one of {_SERVICE_NAMES}")
    return Service.from_wire(value)


def _time(*, required: bool) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        if value is None or value == "":
            if required:
                raise ValueError("is required")
            return None
        if not isinstance(value, str):
            raise ValueError(f"must be an ISO 8601 string, not {_kind(value)}")
        return parse_iso8601(value)

    return check


def _second(value: Any) -> int:
    if value is None:
        raise ValueError("is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, not {_kind(value)}")
    if value < 0:
        raise ValueError("must not be negative")
    if value > MAX_SECOND:
        raise ValueError(f"must be at most {MAX_SECOND} (24 hours)")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_kind(value)}")
    return value


# Built once: validate() runs per record, millions of times in an import.
_FIELD_SET = frozenset(FIELDS)
_TEXT_CHECKS = {f: _text_check(f, *spec) for f, spec in _TEXT.items()}
_TEXT_CHECKS["show_phone"] = _ascii_digits(_TEXT_CHECKS["show_phone"])
_DIGIT_CHECKS = {f: _digits_check(*span) for f, span in _DIGITS.items()}
_required_time = _time(required=True)
_optional_time = _time(required=False)


def _url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _URL_RE.fullmatch(value) or len(value) > _URL_MOST:
        raise ValueError(f"must be an http(s) URL of at most {_URL_MOST} characters")
    return value
