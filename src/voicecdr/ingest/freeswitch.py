"""FreeSWITCH ``mod_json_cdr`` CDRs: decode what it sends, map it to a canonical record.

What mod_json_cdr sends (one CDR per POST, to ``url?uuid=<uuid>``) depends on its
``encode`` option:

- ``encode=true``: ``application/x-www-form-urlencoded``, body ``cdr=<url-encoded JSON>``;
- ``encode=base64``: ``application/x-www-form-base64-encoded``, body ``cdr=<base64 JSON>``
  (the base64 is not url-encoded, so ``+`` is data, not a space);
- ``encode=false``: the JSON itself, as ``application/json`` (older releases label it
  ``application/x-www-form-plaintext``).

When a POST fails, mod_json_cdr writes the same encoded text (without ``cdr=``) to
``<uuid>.cdr.json`` in its error-log directory: :func:`decode_document` reads all of them.

With ``encode-values`` on (its default) every channel variable's value is url-encoded
inside the JSON; the values read here are decoded, which is harmless when the option is
off because the variables voicecdr reads never legitimately contain ``%``. Decoding is
strict: a broken escape, or escapes that decode to bytes that are not UTF-8, refuse the
CDR with the variable's name (never a U+FFFD stored in its place).

The mapping (SPEC section 4): ``call_id`` = ``variables.uuid``; ``appkey``,
``messageid``, ``service``, ``country_code``, ``ivr_result`` (and ``record_url``) from
``voicecdr_*`` channel variables; ``phone`` and ``show_phone`` from the first
``callflow`` entry's ``caller_profile`` (``destination_number``, ``caller_id_number``);
``time``/``start_time``/``end_time`` from ``start_epoch``/``answer_epoch``/``end_epoch``;
``second`` = ``billsec``; ``connected`` = the call was answered (``answer_epoch`` > 0);
``hangup_cause`` and ``sip_hangup_disposition``. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from ..e164 import national
from ..timefmt import epoch_to_iso
from .core import BOM, Item
from .timebounds import LATEST_EPOCH

PLAIN_TYPES = ("application/json", "application/x-www-form-plaintext", "text/plain", "")
FORM_TYPES = ("application/x-www-form-urlencoded", "application/x-www-form-base64-encoded")
_EPOCH_RE = re.compile(r"[0-9]{1,12}")
_BROKEN_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")  # a % without two hex digits after it

# Canonical field -> where it comes from in a mod_json_cdr document.
NAMES: Mapping[str, str] = {
    "call_id": "variables.uuid",
    "appkey": "variables.voicecdr_appkey",
    "service": "variables.voicecdr_service",
    "messageid": "variables.voicecdr_messageid",
    "country_code": "variables.voicecdr_country_code",
    "ivr_result": "variables.voicecdr_ivr_result",
    "record_url": "variables.voicecdr_record_url",
    "phone": "callflow.caller_profile.destination_number",
    "show_phone": "callflow.caller_profile.caller_id_number",
    "time": "variables.start_epoch",
    "start_time": "variables.answer_epoch",
    "connected": "variables.answer_epoch",
    "end_time": "variables.end_epoch",
    "second": "variables.billsec",
    "hangup_cause": "variables.hangup_cause",
    "hangup_disposition": "variables.sip_hangup_disposition",
}


class UndecodableCdr(ValueError):
    """The bytes are not a mod_json_cdr CDR in any encoding it uses; the message says why."""


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def decode_document(data: bytes, content_type: str = "") -> dict[str, Any]:
    """The JSON object in a mod_json_cdr body or error-log file, whatever its encoding.

    ``content_type`` is the request's (empty for a file: the encoding is then recognised
    from the text itself).
    """
    kind = media_type(content_type)
    text = data.strip().removeprefix(BOM)
    if kind not in PLAIN_TYPES and kind not in FORM_TYPES:
        raise UndecodableCdr(f"unsupported content type {kind!r}")
    if kind in FORM_TYPES or text.startswith(b"cdr="):
        text = _form_value(_cdr_field(text), base64_form=kind == FORM_TYPES[1])
    elif kind == "" and text[:3].upper() == b"%7B":  # error-log file written with encode=true
        text = _unescape_cdr(text)
    elif kind == "" and text and text[:1] not in b"{[":  # ... and with encode=base64
        text = _base64(text)
    if not text:
        raise UndecodableCdr("body is empty")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UndecodableCdr(f"CDR is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise UndecodableCdr("CDR must be a JSON object")
    return doc


def _cdr_field(form: bytes) -> bytes:
    """The (still encoded) value of the form's one ``cdr`` field, wherever it is."""
    values = [value for name, value in _fields(form) if name == b"cdr"]
    if not values:
        raise UndecodableCdr("form body has no cdr= field")
    if len(values) > 1:
        raise UndecodableCdr(f"form body has {len(values)} cdr= fields; send exactly one")
    return values[0]


def _fields(form: bytes) -> list[tuple[bytes, bytes]]:
    """``(name, value)`` of each ``name=value`` of a form or query string, still encoded."""
    return [(name, value) for name, _, value in (f.partition(b"=") for f in form.split(b"&"))]


def _form_value(value: bytes, *, base64_form: bool) -> bytes:
    if not base64_form and (value[:3].upper() == b"%7B" or value.startswith(b"{")):
        return _unescape_cdr(value.replace(b"+", b" "))
    # Base64 is sent as is; tolerate a proxy or client that url-encoded it anyway.
    return _base64(_unescape_cdr(value) if b"%" in value else value)


def _unescape_cdr(text: bytes) -> bytes:
    try:
        return _unescape(text)
    except ValueError as exc:
        raise UndecodableCdr(f"cdr= {exc}") from None


def _unescape(text: bytes) -> bytes:
    """Percent-decoding that refuses a ``%`` not followed by two hex digits (where
    ``urllib`` would keep it as it is)."""
    broken = _BROKEN_ESCAPE.search(text)
    if broken is not None:
        escape = text[broken.start() : broken.start() + 3].decode("ascii", "backslashreplace")
        raise ValueError(
            f"has a broken percent-escape {escape!r}: % must be followed by two hex "
            "digits (a literal % is written %25)"
        )
    return unquote_to_bytes(text)


def _unescape_text(value: bytes) -> str:
    """The text a url-encoded value stands for; ValueError when its escapes are broken
    or decode to bytes that are not UTF-8."""
    try:
        return _unescape(value).decode()
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 once its percent-escapes are decoded") from None


def _base64(value: bytes) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise UndecodableCdr("cdr= is neither url-encoded nor base64 JSON") from None


def query_uuid(query: bytes) -> str | None:
    """The ``uuid`` mod_json_cdr adds to the URL (the last one, if repeated), decoded
    strictly; UndecodableCdr when it is broken."""
    found = None
    for name, value in _fields(query):
        if name == b"uuid":
            found = value
    if found is None:
        return None
    try:
        return _unescape_text(found.replace(b"+", b" ")) or None
    except ValueError as exc:
        raise UndecodableCdr(f"query parameter uuid {exc}") from None


def to_item(
    doc: Mapping[str, Any],
    index: int = 0,
    *,
    line: int | None = None,
    file: str | None = None,
    uuid: str | None = None,
) -> Item:
    """Map one decoded mod_json_cdr document to an Item carrying a canonical record.

    ``uuid`` is the ``?uuid=`` of the request, used when the document lacks one.
    """
    errors: list[str] = []
    variables = doc.get("variables")
    if not isinstance(variables, Mapping):
        message = "missing" if variables is None else "must be a JSON object"
        return Item(index, None, line, f"variables: {message}", file)
    profile = _caller_profile(doc.get("callflow"))

    def var(name: str) -> str | None:
        value = variables.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            errors.append(f"variables.{name}: must be a string")
            return None
        if "%" not in value:
            return value
        try:
            return _unescape_text(value.encode())
        except ValueError as exc:
            errors.append(f"variables.{name}: {exc}")
            return None

    def epoch(name: str) -> int | None:
        value = var(name)
        if value is None:
            return None
        if not _EPOCH_RE.fullmatch(value):
            errors.append(f"variables.{name}: must be whole seconds since 1970, not {value!r}")
            return None
        if int(value) > LATEST_EPOCH:
            # Python's datetime ends at year 9999; a later epoch is a corrupt CDR, not a 500.
            errors.append(f"variables.{name}: {value} is after the year 9999")
            return None
        return int(value)

    placed, answered, ended = epoch("start_epoch"), epoch("answer_epoch"), epoch("end_epoch")
    billsec = var("billsec")
    second: int | str | None = billsec
    if billsec is not None and billsec.isascii() and billsec.isdigit():
        second = int(billsec)
    elif billsec is not None:
        errors.append(f"variables.billsec: must be a whole number of seconds, not {billsec!r}")
        second = None
    country_code = var("voicecdr_country_code")
    service = var("voicecdr_service")
    if variables.get("voicecdr_service") in (None, ""):
        errors.append("variables.voicecdr_service: missing")
    record = {
        "call_id": var("uuid") or _text(profile.get("uuid")) or uuid,
        "appkey": var("voicecdr_appkey"),
        "service": service,
        "messageid": var("voicecdr_messageid"),
        "country_code": country_code,
        "ivr_result": var("voicecdr_ivr_result"),
        "record_url": var("voicecdr_record_url"),
        "phone": national(
            _text(profile.get("destination_number")) or var("destination_number"), country_code
        ),
        "show_phone": _text(profile.get("caller_id_number")) or var("caller_id_number"),
        "time": epoch_to_iso(placed) if placed else None,
        "start_time": epoch_to_iso(answered) if answered else None,
        "end_time": epoch_to_iso(ended) if ended else None,
        "second": second,
        "connected": bool(answered),
        "hangup_cause": var("hangup_cause"),
        "hangup_disposition": var("sip_hangup_disposition"),
    }
    return Item(index, record, line, file=file, errors=tuple(errors), names=NAMES)


def _caller_profile(callflow: object) -> Mapping[str, Any]:
    # Current releases send a list, newest profile first (after a transfer the first one
    # holds the number finally dialled); older ones an object (the only profile kept).
    first = callflow[0] if isinstance(callflow, list) and callflow else callflow
    profile = first.get("caller_profile") if isinstance(first, Mapping) else None
    return profile if isinstance(profile, Mapping) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
