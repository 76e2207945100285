"""The one declaration of a CDR's fields (voicecdr.cdrfields) is what every shape of a CDR
follows: the models, the schema, the canonical limits, the rendered and receipt fields."""

from __future__ import annotations

from typing import Any, get_args
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.unit.test_canonical import BOUNDS, record
from voicecdr import cdrfields
from voicecdr.cdrfields import (
    CANONICAL,
    CDR_NAMES,
    COLUMNS,
    FIELDS,
    RATED_FIELDS,
    RECEIPT_FIELDS,
    RENDERED,
    ROW_FIELDS,
    ROW_NAMES,
    Kind,
)
from voicecdr.client import _models as client_models
from voicecdr.ingest.canonical import RecordErrors, validate
from voicecdr.ingest.fastjson import decode_line
from voicecdr.models import Cdr, CostStatus, Language, ReceiptCall, Service, UnratedCdr, VoiceGroup
from voicecdr.money import json_number
from voicecdr.rows import RowRenderer
from voicecdr.storage import schema
from voicecdr.storage.rating import UNRATED
from voicecdr.timefmt import EpochFormatter

_NAME = {f.column: f.name for f in FIELDS}


def test_the_models_have_the_declared_fields_in_order() -> None:
    assert Cdr._fields == CDR_NAMES
    assert [_NAME[c] for c in ROW_FIELDS] == list(ROW_NAMES)


def test_the_stored_tuples_are_declared_columns() -> None:
    # Pricing's and receipts' tuples are stored columns, one type per column.
    assert set(UNRATED) <= set(COLUMNS)
    assert len(get_args(UnratedCdr)) == len(UNRATED)
    assert len(get_args(ReceiptCall)) == len(RECEIPT_FIELDS)


@pytest.mark.parametrize(
    "metadata", [schema.metadata_for("sqlite"), schema.metadata_for("postgresql")]
)
def test_the_declared_cdrs_table_has_the_declared_columns_in_order(metadata: Any) -> None:
    assert tuple(metadata.tables["cdrs"].c.keys()) == COLUMNS


def test_every_column_is_declared_once() -> None:
    names = [f.name for f in FIELDS]
    assert len(set(COLUMNS)) == len(COLUMNS)
    assert len(set(names)) == len(names)


def test_rendered_fields_are_the_client_sdks() -> None:
    # The wire contract lives in the client SDK; every field it reads comes from exactly
    # one stored field, and every stored field a row reads is rendered.
    wire = {
        *client_models.GROUP_CALL_FIELDS,
        *client_models.VOICE_FIELDS,
        *client_models.EXTENDED_FIELDS,
    }
    assert set(RENDERED.values()) == wire
    assert len(RENDERED) == len(wire)
    assert tuple(RENDERED) == ROW_FIELDS


def _distinct_row() -> tuple[Any, ...]:
    """A stored row (ROW_FIELDS) whose values tell which field each came from."""
    values: dict[str, Any] = {
        "id": 41,
        "service": int(Service.NOTIFICATION),
        "placed_at": 1_567_990_800,
        "answered_at": 1_567_990_801,
        "ended_at": 1_567_990_845,
        "billsec": 44,
        "connected": 1,
        "cost_status": int(CostStatus.FINAL),
        "cycle": 6,
        "size": 8,
        "unit_price_nanos": 1_100_000,
        "basic_price_nanos": 2_200_000,
        "cost_nanos": 8_800_000,
    }
    return tuple(values.get(c, f"<{c}>") for c in ROW_FIELDS)


@pytest.mark.parametrize("group", list(VoiceGroup))
def test_row_renderer_reads_each_column_into_its_rendered_field(group: VoiceGroup) -> None:
    # RowRenderer unpacks rows positionally (the fastest read there is): it must read
    # them in ROW_FIELDS order, each stored field into the one RENDERED names.
    tz = ZoneInfo("Asia/Shanghai")
    row = _distinct_row()
    (rendered,) = RowRenderer(group, tz, Language.EN, extended=True).render_all([row])
    stored = dict(zip(ROW_FIELDS, row, strict=True))
    when, money = EpochFormatter(tz), json_number
    expected_of = {
        "placed_at": when,
        "answered_at": when,
        "ended_at": when,
        "connected": lambda v: "Successful connection",
        "cost_status": lambda v: CostStatus(v).wire_name,
        "unit_price_nanos": money,
        "basic_price_nanos": money,
        "cost_nanos": money,
    }
    fields = client_models.VoiceType(group).fields + client_models.EXTENDED_FIELDS
    assert tuple(rendered) == fields
    for column, value in stored.items():
        name = RENDERED[column]
        if name in rendered:
            want = expected_of.get(column, lambda v: v)(value)
            assert orjson.dumps(rendered[name]) == orjson.dumps(want), column


def test_receipt_fields_are_the_calls_row_fields() -> None:
    # The call, never the charge: a receipt's body reads the same at every attempt.
    assert set(RECEIPT_FIELDS) <= set(ROW_FIELDS) - set(RATED_FIELDS)


def test_canonical_fields_are_the_validators() -> None:
    assert tuple(f.name for f in CANONICAL) == CDR_NAMES[:-2]
    assert set(record()) == set(cdrfields.CANONICAL_NAMES)


_LIMITED = [f for f in CANONICAL if f.kind in (Kind.TEXT, Kind.DIGITS)]


@pytest.mark.parametrize("field", _LIMITED, ids=lambda f: f.name)
def test_each_length_limit_holds_on_every_path(field: cdrfields.Field) -> None:
    # The table's limit is the validator's and the fast paths': its length passes all
    # three, one more character is refused by all three.
    char = "7" if field.kind is Kind.DIGITS else "x"
    at_most = record(**{field.name: char * field.most})
    too_long = record(**{field.name: char * (field.most + 1)})
    cdr = validate(at_most, BOUNDS)
    assert getattr(cdr, field.name) == char * field.most
    assert decode_line(orjson.dumps(at_most), BOUNDS) == cdr
    assert decode_line(orjson.dumps(too_long), BOUNDS) is None
    with pytest.raises(RecordErrors, match=field.name):
        validate(too_long, BOUNDS)


def test_second_and_record_url_limits_hold_on_every_path() -> None:
    longest = cdrfields.MAX_SECOND
    url = "https://r.example.com/" + "a" * (2048 - 22)
    fine = record(second=19, record_url=url)
    assert decode_line(orjson.dumps(fine), BOUNDS) == validate(fine, BOUNDS)
    for changes in ({"record_url": url + "a"}, {"second": longest + 1}):
        raw = record(**changes)
        assert decode_line(orjson.dumps(raw), BOUNDS) is None
        with pytest.raises(RecordErrors, match=next(iter(changes))):
            validate(raw, BOUNDS)
