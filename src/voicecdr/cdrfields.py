"""The stored CDR's fields, declared once in :data:`FIELDS`, and every list of them the
code uses, derived from it: the canonical record's fields and limits (the validator and
its msgspec fast path), the columns a CDR is inserted with (storage/writes.py), the
columns of a row the query API reads and the NXCloud field each renders to, and the
columns a receipt body is rendered from.

``models.Cdr`` stays a class with its fields written out (the type checker needs them
so); ``tests/unit/test_cdrfields.py`` holds it, the other shapes (pricing's
``models.UnratedCdr``, a receipt's ``models.ReceiptCall``), the schema and the migrated
databases to this table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_SECOND = 86_400  # a billable call longer than a day is a switch bug, not a call


class Kind(enum.Enum):
    """How the canonical validator reads a field."""

    TEXT = "text"  # printable, at most ``most`` characters
    DIGITS = "digits"  # ASCII digits 0-9, at most ``most`` of them
    SERVICE = "service"  # a service's wire name
    TIME = "time"  # ISO 8601 with an offset
    SECONDS = "seconds"  # a whole number from 0 to ``most``
    FLAG = "flag"  # true or false
    URL = "url"  # http(s), at most ``most`` characters


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a stored CDR: its ``name`` (on ``Cdr``, a row's, and in the
    canonical format, where they carry it), its ``column`` in ``cdrs`` (None for
    ``appkey``, stored as the app's id), for a canonical field its ``kind``, limit
    (``most``; 0: none) and whether it is ``required``, and for a field of the query
    API's rows the NXCloud field it is ``rendered`` as. ``rated``: written by rating."""

    name: str
    column: str | None
    kind: Kind | None = None
    most: int = 0
    required: bool = False
    rendered: str | None = None
    rated: bool = False


_TEXT, _DIGITS, _TIME = Kind.TEXT, Kind.DIGITS, Kind.TIME

# In the schema's column order; ``appkey`` (no column) stands after ``call_id``, where
# ``Cdr`` has it. The canonical fields' order is ``Cdr``'s and the validator's messages'.
FIELDS = (
    Field("id", "id", rendered="id"),
    Field("app_id", "app_id"),
    Field("call_id", "call_id", _TEXT, 128, required=True),
    Field("appkey", None, _TEXT, 64, required=True),
    Field("content_hash", "content_hash"),
    Field("service", "service", Kind.SERVICE, required=True, rendered="voice_type"),
    Field("voice_group", "voice_group"),
    Field("messageid", "messageid", _TEXT, 128, rendered="messageid"),
    # ``phone`` may come in international form (``+``/``00``), then without a country
    # code: the validator splits it (e164.py); stored, both are digits.
    Field("phone", "phone", _DIGITS, 32, required=True, rendered="phone"),
    Field("country_code", "country_code", _DIGITS, 4, rendered="countryCode"),
    Field("show_phone", "show_phone", _TEXT, 64, rendered="show_phone"),
    Field("time", "placed_at", _TIME, required=True, rendered="time"),
    Field("start_time", "answered_at", _TIME, rendered="start_time"),
    Field("end_time", "ended_at", _TIME, rendered="end_time"),
    Field("second", "billsec", Kind.SECONDS, MAX_SECOND, required=True, rendered="second"),
    Field("connected", "connected", Kind.FLAG, required=True, rendered="result"),
    Field("hangup_cause", "hangup_cause", _TEXT, 64, rendered="hangup_cause"),
    Field("hangup_disposition", "hangup_disposition", _TEXT, 64, rendered="hangup_disposition"),
    Field("ivr_result", "ivr_result", _TEXT, 64, rendered="ivr_result"),
    Field("record_url", "record_url", Kind.URL, 2048, rendered="record_url"),
    Field("cost_status", "cost_status", rendered="cost_status", rated=True),
    Field("cycle", "cycle", rendered="cycle", rated=True),
    Field("size", "size", rendered="size", rated=True),
    Field("unit_price_nanos", "unit_price_nanos", rendered="customer_price", rated=True),
    Field("basic_price_nanos", "basic_price_nanos", rendered="basic_price", rated=True),
    Field("cost_nanos", "cost_nanos", rendered="cost", rated=True),
    Field("ingested_at", "ingested_at"),
    Field("rate_plan_id", "rate_plan_id", rated=True),
    Field("pending_reason", "pending_reason", rated=True),
    Field("rated_at", "rated_at", rated=True),
    Field("revision", "revision", rated=True),
    Field("rate_prefix", "rate_prefix", rated=True),
    # ISO 3166-1 alpha-2 of country_code + phone (e164.region_of), NULL where none.
    Field("region", "region"),
)

# The columns of ``cdrs``, in order (the schema's, on both databases).
COLUMNS = tuple(f.column for f in FIELDS if f.column is not None)
# The canonical record's fields, in the order of ``Cdr``; ``Cdr`` adds its content hash
# and the region of its number (derived from it, so not hashed).
CANONICAL = tuple(f for f in FIELDS if f.kind is not None)
CANONICAL_NAMES = tuple(f.name for f in CANONICAL)
CDR_NAMES = (*CANONICAL_NAMES, "content_hash", "region")
# What ingest writes: every column but the id (the database's) and what rating writes.
INSERT_COLUMNS = tuple(
    f.column for f in FIELDS if f.column is not None and f.column != "id" and not f.rated
)
# A row as the query API reads it (``storage.pages.ROW_FIELDS``): the fields an NXCloud
# row renders, as columns and by name (tests read rows by these names).
_SHOWN = tuple(f for f in FIELDS if f.rendered is not None)
ROW_FIELDS = tuple(f.column for f in _SHOWN if f.column is not None)
ROW_NAMES = tuple(f.name for f in _SHOWN)
# The part of a row that rating writes, and the call's part: what ingest wrote.
RATED_FIELDS = tuple(f.column for f in _SHOWN if f.column is not None and f.rated)
CALL_FIELDS = tuple(f.column for f in _SHOWN if f.kind is not None and f.column is not None)
# Stored field (column) -> the NXCloud row field it renders as.
RENDERED = {f.column: f.rendered for f in _SHOWN if f.column is not None}
# What a receipt body tells of its call, in ``models.ReceiptCall``'s order (the
# migration 0005 and the receipt tests build it by position): when, the service, the
# numbers and message id, then the call's fields from its answer on.
_ANSWERED = CALL_FIELDS.index("answered_at")
RECEIPT_FIELDS = (
    "placed_at",
    "service",
    "phone",
    "country_code",
    "messageid",
    *CALL_FIELDS[_ANSWERED:],
)
