"""Migrations build exactly the schema the code declares, and run both ways."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from voicecdr.errors import SchemaOutOfDate
from voicecdr.storage import migrate
from voicecdr.storage.schema import metadata
from voicecdr.storage.store import Store


def test_migrated_schema_matches_the_declared_tables(store: Store) -> None:
    with store.writer.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # rate_limit_state is PostgreSQL-only and declared apart on purpose.
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name == "rate_limit_state")]
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
