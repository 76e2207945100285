"""The hot paths' kept connections (``engine.Pinned``), on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import psycopg
import pytest

from voicecdr.storage import Database
from voicecdr.storage.engine import Pinned


def _connection(cursor: Any) -> Any:
    return cursor.connection


def test_each_thread_keeps_its_own_connection_outside_the_pool(db: Database) -> None:
    first = db.pinned.run(_connection)
    assert db.pinned.run(_connection) is first
    elsewhere: list[Any] = []
    thread = threading.Thread(target=lambda: elsewhere.append(db.pinned.run(_connection)))
    thread.start()
    thread.join()
    assert elsewhere[0] is not first
    # Detached: the pool holds no slot for them and hands out connections of its own.
    pool = db.pinned._engine.pool
    assert pool.checkedout() == 0
    fairy = pool.connect()
    try:
        assert fairy.driver_connection not in (first, elsewhere[0])
    finally:
        fairy.close()


def test_failed_work_is_rolled_back_and_the_connection_kept(db: Database) -> None:
    kept = db.pinned.run(_connection)

    def fails(cursor: Any) -> None:
        cursor.execute("BEGIN")
        cursor.execute("SELECT 1")
        raise ValueError("the work's own error")

    with pytest.raises(ValueError, match="own error"):
        db.pinned.run(fails)
    assert not db.pinned.run(_in_transaction)  # rolled back
    assert db.pinned.run(_connection) is kept


def _in_transaction(cursor: Any) -> bool:
    connection = cursor.connection
    if isinstance(connection, sqlite3.Connection):
        return connection.in_transaction
    return bool(connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


def test_close_closes_kept_connections_and_later_work_opens_new_ones(database_url: str) -> None:
    db = Database(database_url)
    pinned = Pinned(db.reader)
    kept = pinned.run(_connection)
    pinned.close()
    with pytest.raises((sqlite3.ProgrammingError, psycopg.OperationalError), match="closed"):
        kept.execute("SELECT 1")
    # Like an engine's dispose: usable after, on a new connection.
    assert pinned.run(lambda c: tuple(c.execute("SELECT 3").fetchone())) == (3,)
    assert pinned.run(_connection) is not kept
    pinned.close()
    db.close()


@pytest.mark.postgres
def test_a_kept_connection_the_server_dropped_is_replaced(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        backend = db.pinned.run(lambda c: c.execute("SELECT pg_backend_pid()").fetchone()[0])
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        again = db.pinned.run(lambda c: c.execute("SELECT pg_backend_pid()").fetchone()[0])
        assert again != backend
    finally:
        db.close()
