"""The rater's write transaction on SQLite: no foreign key checks inside it (its
references are correct by construction), and every writer connection checks them again
afterwards, also after a batch that failed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.integration.test_rating_store import PLAN, load
from tests.support.data import canonical, make_app
from voicecdr.models import UnratedCdr
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import Database, Outbox, RatedBatch, RatingStore
from voicecdr.storage import rating as storage_rating
from voicecdr.workers.rater import Rater


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Database]:
    db = Database(sqlite_url)
    yield db
    db.close()


def _foreign_keys(conn: Any) -> int:
    return int(conn.execute("PRAGMA foreign_keys").fetchone()[0])


def _orphan_receipt(db: Database) -> None:
    """Write a receipt for a CDR that does not exist, through the writer."""
    with db.writer.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO receipts (app_id, cdr_id, webhook_id, status, attempts, "
            "next_attempt_at, created_at) VALUES (1, 999999, 'msg_orphan', 0, 0, 0, 0)"
        )


def _priced_app(db: Database) -> None:
    app = make_app(db, "app1", callback_url="https://hooks.example.com/dr").app
    RatingStore(db).import_plan(app.id, parse_plan_csv(PLAN), source="p.csv", now=1)
    load(db, [canonical(f"c{n}", time=f"2019-09-09 09:00:{n:02d}") for n in range(10)])


def test_the_batch_skips_foreign_key_checks_and_the_writer_keeps_them(
    sqlite_store: Database,
) -> None:
    _priced_app(sqlite_store)
    seen: list[int] = []

    @event.listens_for(sqlite_store.writer, "before_cursor_execute")
    def _record(conn: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO receipts"):
            seen.append(_foreign_keys(conn.connection.driver_connection))

    assert Rater(sqlite_store, batch_size=4).drain() == (10, 0)
    assert seen == [0, 0, 0]  # three batches, each without the checks
    assert len(Outbox(sqlite_store).list()) == 10
    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
        _orphan_receipt(sqlite_store)


def test_a_failed_batch_writes_nothing_and_leaves_the_checks_on(sqlite_store: Database) -> None:
    _priced_app(sqlite_store)

    def boom(_rows: list[UnratedCdr]) -> RatedBatch:
        raise RuntimeError("pricing failed")

    with pytest.raises(RuntimeError):
        RatingStore(sqlite_store).rate_batch(100, boom)
    # Every pooled writer connection checks foreign keys again.
    conns = [sqlite_store.writer.connect() for _ in range(3)]
    try:
        assert [_foreign_keys(c.connection.driver_connection) for c in conns] == [1, 1, 1]
    finally:
        for c in conns:
            c.close()
    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
        _orphan_receipt(sqlite_store)
    assert Outbox(sqlite_store).list() == []
    assert Rater(sqlite_store).drain() == (10, 0)  # the CDRs are still pending


def test_a_connection_whose_checks_cannot_be_restored_is_discarded(sqlite_store: Database) -> None:
    with sqlite_store.writer.connect() as conn:
        driver = conn.connection.driver_connection
        driver.execute("PRAGMA foreign_keys=OFF")
        driver.execute("BEGIN")  # inside a transaction the pragma is silently ignored
        storage_rating._enforce_foreign_keys(conn, driver)
        assert conn.invalidated
    with sqlite_store.writer.connect() as conn:  # a new connection, with the checks on
        assert _foreign_keys(conn.connection.driver_connection) == 1
