"""Validation of canonical CDRs (SPEC section 4) with one specific message per problem.

Pure: takes a mapping, returns a Cdr or the list of everything wrong with it, so a source
can report all problems of a record at once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from hashlib import sha256 as _sha256
from typing import Any

import msgspec
import orjson

from ..models import Cdr, Service
from ..timefmt import parse_iso8601
from .timebounds import TimeBounds

_new_tuple = tuple.__new__

MAX_SECOND = 86_400  # a billable call longer than a day is a switch bug, not a call
FIELDS = (
    "call_id",
    "appkey",
    "service",
    "messageid",
    "phone",
    "country_code",
    "show_phone",
    "time",
    "start_time",
    "end_time",
    "second",
    "connected",
    "hangup_cause",
    "hangup_disposition",
    "ivr_result",
    "record_url",
)
_DIGITS = {"phone": (1, 32), "country_code": (1, 4)}
_TEXT = {  # field: (max length, required)
    "call_id": (128, True),
    "appkey": (64, True),
    "messageid": (128, False),
    "show_phone": (64, False),
    "hangup_cause": (64, False),
    "hangup_disposition": (64, False),
    "ivr_result": (64, False),
}
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
            return _fast(raw, bounds)
        except _Slow:
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
    digits = {f: take(f, check) for f, check in _DIGIT_CHECKS.items()}
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

    return _build(text, digits, service, placed, answered, ended, second, connected, record_url)


def _build(
    text: dict[str, str],
    digits: dict[str, str],
    service: Service,
    placed: int,
    answered: int | None,
    ended: int | None,
    second: int,
    connected: bool,
    record_url: str | None,
) -> Cdr:
    return cdr_with_hash(
        text["call_id"],
        text["appkey"],
        service,
        text["messageid"],
        digits["phone"],
        digits["country_code"],
        text["show_phone"],
        placed,
        answered,
        ended,
        second,
        connected,
        text["hangup_cause"],
        text["hangup_disposition"],
        text["ivr_result"],
        record_url,
    )


class _Hashed(msgspec.Struct, gc=False):
    """The document :func:`content_hash` hashes, fields in sorted order (see cdr_with_hash)."""

    appkey: str
    call_id: str
    connected: bool
    country_code: str
    end_time: int | None
    hangup_cause: str
    hangup_disposition: str
    ivr_result: str
    messageid: str
    phone: str
    record_url: str | None
    second: int
    service: str
    show_phone: str
    start_time: int | None
    time: int


_encode = msgspec.json.Encoder().encode


def cdr_with_hash(
    call_id: str,
    appkey: str,
    service: Service,
    messageid: str,
    phone: str,
    country_code: str,
    show_phone: str,
    placed: int,
    answered: int | None,
    ended: int | None,
    second: int,
    connected: bool,
    hangup_cause: str,
    hangup_disposition: str,
    ivr_result: str,
    record_url: str | None,
) -> Cdr:
    """The Cdr of validated values, with their :func:`content_hash`. Runs once per record
    of an import, so the hashed document is a :class:`_Hashed` struct encoded by msgspec
    (about a third of the time of building a dict for orjson): its fields are in sorted
    order and msgspec writes JSON byte for byte as orjson does, so the bytes hashed are
    exactly ``content_hash``'s (tests pin both), and equal to the hashes stored by every
    earlier version."""
    values = _Hashed(
        appkey,
        call_id,
        connected,
        country_code,
        ended,
        hangup_cause,
        hangup_disposition,
        ivr_result,
        messageid,
        phone,
        record_url,
        second,
        _WIRE_NAMES[service],
        show_phone,
        answered,
        placed,
    )
    digest = _sha256(_encode(values)).hexdigest()
    # Straight to tuple.__new__, which is all the NamedTuple's own __new__ does after one
    # more Python call: this runs once per record.
    return _new_tuple(
        Cdr,
        (
            call_id,
            appkey,
            service,
            messageid,
            phone,
            country_code,
            show_phone,
            placed,
            answered,
            ended,
            second,
            connected,
            hangup_cause,
            hangup_disposition,
            ivr_result,
            record_url,
            digest,
        ),
    )


class _Slow(Exception):
    """The fast path's doubt: let the full validation decide and word the errors."""


def _fast(raw: dict[str, Any], bounds: TimeBounds) -> Cdr:
    """validate() for a record with nothing wrong, in a fraction of its time (an import
    spends most of its CPU here). Raises _Slow at the first doubt; the equivalence with
    the full path is pinned by a property test."""
    if not _FIELD_SET.issuperset(raw):
        raise _Slow
    get = raw.get
    text: dict[str, str] = {}
    for name, max_len, required in _TEXT_SPEC:  # a plain loop: no call per field
        value = get(name)
        if value is None or value == "":
            if required:
                raise _Slow
            value = ""
        elif type(value) is not str or len(value) > max_len or not value.isprintable():
            raise _Slow
        text[name] = value
    if not text["show_phone"].isascii():  # it may hold non-ASCII digits: words them
        raise _Slow
    phone, country_code = get("phone"), get("country_code")
    if not (
        type(phone) is str
        and type(country_code) is str
        and 1 <= len(phone) <= 32
        and 1 <= len(country_code) <= 4
        and phone.isascii()
        and phone.isdigit()
        and country_code.isascii()
        and country_code.isdigit()
    ):
        raise _Slow
    service_name, second, connected = get("service"), get("second"), get("connected")
    if type(service_name) is not str or type(second) is not int or type(connected) is not bool:
        raise _Slow
    service = _SERVICES.get(service_name.upper())
    if service is None or not 0 <= second <= MAX_SECOND:
        raise _Slow
    try:
        placed = _fast_time(get("time"))
        answered = _fast_time(get("start_time"))
        ended = _fast_time(get("end_time"))
    except (ValueError, TypeError):
        raise _Slow from None
    if placed is None:
        raise _Slow
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
        raise _Slow
    record_url = get("record_url")
    if record_url == "":
        record_url = None
    elif record_url is not None and not (
        type(record_url) is str and len(record_url) <= 2048 and _URL_RE.fullmatch(record_url)
    ):
        raise _Slow
    digits = {"phone": phone, "country_code": country_code}
    return _build(text, digits, service, placed, answered, ended, second, connected, record_url)


def _fast_time(value: Any) -> int | None:
    if value is None or value == "":
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise _Slow
    return int(parsed.timestamp() // 1)


def content_hash(values: Mapping[str, Any]) -> str:
    """Hash of the normalised content: the same call written two ways hashes the same."""
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()


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
_TEXT_SPEC = tuple((f, n, required) for f, (n, required) in _TEXT.items())
_TEXT_CHECKS = {f: _text_check(f, *spec) for f, spec in _TEXT.items()}
_TEXT_CHECKS["show_phone"] = _ascii_digits(_TEXT_CHECKS["show_phone"])
_DIGIT_CHECKS = {f: _digits_check(*span) for f, span in _DIGITS.items()}
_required_time = _time(required=True)
_optional_time = _time(required=False)


def _url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _URL_RE.fullmatch(value) or len(value) > 2048:
        raise ValueError("must be an http(s) URL of at most 2048 characters")
    return value
