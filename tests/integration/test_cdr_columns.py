"""The migrated ``cdrs`` table has the declared columns (voicecdr.cdrfields), and a CDR
goes in and comes back out through them field by field, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from tests.support.data import cdr, make_app, read_cdrs
from voicecdr.cdrfields import COLUMNS, FIELDS, RATED_FIELDS
from voicecdr.models import VoiceGroup
from voicecdr.storage import CdrWriter, Database

T0 = 1567990800  # 2019-09-09 09:00:00 Asia/Shanghai


def test_migrated_cdrs_table_has_the_declared_columns_in_order(db: Database) -> None:
    with db.reader.connect() as conn:
        columns = [c["name"] for c in sa.inspect(conn).get_columns("cdrs")]
    assert tuple(columns) == COLUMNS


def test_each_cdr_field_is_stored_in_its_column_and_read_back(db: Database) -> None:
    app_id = make_app(db).app.id
    stored = cdr(
        "call-1",
        service="notification",
        messageid="m-1",
        show_phone="0859",
        hangup_cause="NORMAL_CLEARING",
        hangup_disposition="recv_bye",
        ivr_result="3#",
        record_url="https://r.example.com/1.wav",
    )
    CdrWriter(db).store([(app_id, stored)], now=T0 + 99)
    with db.reader.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM cdrs")).one()._mapping
    for field in FIELDS:
        if field.column is not None and field.name in stored._fields:
            value = getattr(stored, field.name)
            assert row[field.column] == value, field.column
    assert (row["app_id"], row["ingested_at"]) == (app_id, T0 + 99)
    assert row["voice_group"] == int(stored.service.voice_group)
    assert all(row[c] == 0 for c in RATED_FIELDS)

    page = read_cdrs(db, app_id, VoiceGroup.VERIFICATION, 0, 2**40, offset=0, limit=1)
    (read,) = page.rows
    assert read.id == row["id"]
    for name in read._fields:
        if name in stored._fields:
            assert getattr(read, name) == getattr(stored, name), name
