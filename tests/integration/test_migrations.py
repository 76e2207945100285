"""Migrations build exactly the schema the code declares, and run both ways."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.support.data import canonical, make_app
from voicecdr.errors import SchemaOutOfDate
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.rating import parse_plan_csv
from voicecdr.receipts import render
from voicecdr.storage import migrate
from voicecdr.storage.outbox import Outbox
from voicecdr.storage.rating import RatingStore
from voicecdr.storage.schema import declared_name, metadata_for
from voicecdr.storage.store import Store
from voicecdr.workers.rater import Rater

PLAN = "service,prefix,cycle,unit_price,basic_price\n*,,20,0.05,0.005\n"


def test_migrated_schema_matches_the_declared_tables(store: Store) -> None:
    # Each database against its own declaration (schema.py): on PostgreSQL that includes
    # cdr_keys, rate_limit_state, the partition-wide keys of cdrs and receipts without a
    # foreign key to cdrs. Only the day partitions are left out: they are made at run
    # time, not declared (``declared_name``).
    with store.writer.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": declared_name})
        diff = compare_metadata(context, metadata_for(store.dialect))
    assert diff == []


def test_downgrade_and_upgrade_again(store: Store) -> None:
    assert migrate.current_revision(store) == migrate.head_revision()
    migrate.downgrade(store, "base")
    assert migrate.current_revision(store) is None
    with pytest.raises(SchemaOutOfDate, match="voicecdr db upgrade"):
        migrate.require_current(store)
    before, after = migrate.upgrade(store)
    assert (before, after) == (None, migrate.head_revision())
    migrate.upgrade(store)  # a second upgrade is a no-op
    migrate.require_current(store)


def test_downgrade_below_0005_stores_the_bodies_receipts_would_send(store: Store) -> None:
    # From 0005 receipts keep what their body is made of; 0004 needs the body itself.
    app = make_app(store, "app1", callback_url="https://hooks.example.com/dr").app
    RatingStore(store).import_plan(app.id, parse_plan_csv(PLAN), source="t", now=1)
    records = [canonical(f"c{i}", second=19 + i, messageid=f"m {i}") for i in range(3)]
    Ingestor(store).ingest(Item(i, r) for i, r in enumerate(records))
    assert Rater(store).drain() == (3, 0)
    due = Outbox(store).claim_due(now=2**40, limit=10, per_app=10, busy={}, lease=1)
    assert len(due) == 3
    expected = {x.id: render(x.content) for x in due if x.content is not None}
    migrate.downgrade(store, "0004")
    with store.reader.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT id, payload FROM receipts")).all())
    assert stored == expected
    migrate.upgrade(store)
    due = Outbox(store).claim_due(now=2**41, limit=10, per_app=10, busy={}, lease=1)
    assert {x.id: x.payload for x in due} == expected


def test_0008_adds_the_disabled_state_and_its_downgrade_drops_only_that(store: Store) -> None:
    make_app(store, "app1")
    Ingestor(store).ingest([Item(0, canonical("c1"))])
    store.update_app("app1", {"disabled_at": 1_700_000_000}, now=1)
    migrate.downgrade(store, "0007")
    with store.reader.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("apps")}
        assert "disabled_at" not in columns
        assert conn.execute(sa.text("SELECT count(*) FROM cdrs")).scalar() == 1
    migrate.upgrade(store)
    app = store.get_app("app1")
    assert app is not None
    assert app.disabled_at is None  # every app is in service after the upgrade
