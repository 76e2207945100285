"""Validation of canonical CDRs (SPEC section 4) with one specific message per problem.

Pure: takes a mapping, returns a Cdr or the list of everything wrong with it, so a source
can report all problems of a record at once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ..models import Cdr, Service
from ..timefmt import parse_iso8601

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


def validate(raw: object) -> Cdr:
    """Validate one canonical record; raises RecordErrors listing every problem."""
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

    errors.extend(f"{name}: unknown field" for name in raw if name not in FIELDS)
    text = {f: take(f, _text_check(f, *spec)) for f, spec in _TEXT.items()}
    digits = {f: take(f, _digits_check(*span)) for f, span in _DIGITS.items()}
    service = take("service", _service)
    placed = take("time", _time(required=True))
    answered = take("start_time", _time(required=False))
    ended = take("end_time", _time(required=False))
    second = take("second", _second)
    connected = take("connected", _bool)
    record_url = take("record_url", _url)

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
        "service": service.wire_name,
        "time": placed,
        "start_time": answered,
        "end_time": ended,
        "second": second,
        "connected": connected,
        "record_url": record_url,
    }
    return Cdr(
        call_id=text["call_id"],
        appkey=text["appkey"],
        service=service,
        messageid=text["messageid"],
        phone=digits["phone"],
        country_code=digits["country_code"],
        show_phone=text["show_phone"],
        time=placed,
        start_time=answered,
        end_time=ended,
        second=second,
        connected=connected,
        hangup_cause=text["hangup_cause"],
        hangup_disposition=text["hangup_disposition"],
        ivr_result=text["ivr_result"],
        record_url=record_url,
        content_hash=content_hash(values),
    )


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
            raise ValueError("must contain digits only")
        if not low <= len(value) <= high:
            raise ValueError(f"must be {low}-{high} digits")
        return value

    return check


def _service(value: Any) -> Service:
    names = ", ".join(s.wire_name for s in Service)
    if not isinstance(value, str) or value.upper() not in Service.__members__:
        raise ValueError(f"must be one of {names}")
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


def _url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _URL_RE.fullmatch(value) or len(value) > 2048:
        raise ValueError("must be an http(s) URL of at most 2048 characters")
    return value
