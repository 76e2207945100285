"""Driver errors become our StorageError at the storage boundary, faults named plainly."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
import sqlalchemy as sa

from voicecdr.errors import DatabaseUnavailable, StorageError
from voicecdr.storage.engine import translated


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (sqlite3.OperationalError("attempt to write a readonly database"), "database is read-only"),
        (sqlite3.OperationalError("database or disk is full"), "database or disk is full"),
        (sqlite3.OperationalError("disk I/O error"), "disk I/O error"),
        (sqlite3.OperationalError("unable to open database file"), "cannot be opened"),
        # Raised by psycopg itself where the store drives it directly (COPY), not wrapped.
        (psycopg.OperationalError("connection failed: refused"), "database server unreachable"),
        (psycopg.errors.AdminShutdown("terminating connection"), "shutting down"),
        (psycopg.errors.ReadOnlySqlTransaction("read-only"), "database is read-only"),
        (psycopg.errors.DiskFull("could not extend file"), "database or disk is full"),
        # A Citus worker the coordinator cannot reach: on connecting, and mid-transaction.
        (
            psycopg.errors.ConnectionFailure(
                "connection to the remote node postgres@10.0.0.7:5432 failed with the "
                "following error: Connection refused"
            ),
            "a database node is unreachable",
        ),
        (
            psycopg.errors.InternalError_(
                "failure on connection marked as essential: 10.0.0.7:5432"
            ),
            "a database node is unreachable",
        ),
        (
            sa.exc.OperationalError(
                "INSERT", {}, sqlite3.OperationalError("database or disk is full")
            ),
            "database or disk is full",
        ),
    ],
)
def test_faults_are_named(error: Exception, message: str) -> None:
    with pytest.raises(DatabaseUnavailable) as raised, translated("store CDRs"):
        raise error
    assert str(raised.value).startswith("store CDRs failed: ")
    assert message in str(raised.value)
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.IntegrityError("UNIQUE constraint failed: cdrs.call_id"),
        psycopg.errors.UndefinedTable('relation "cdrs" does not exist'),
        psycopg.errors.InternalError_("cannot modify table cdrs: a parallel operation"),
        sa.exc.OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: cdrs")),
    ],
)
def test_other_errors_stay_unnamed_storage_errors(error: Exception) -> None:
    with pytest.raises(StorageError) as raised, translated("query CDRs"):
        raise error
    assert not isinstance(raised.value, DatabaseUnavailable)
    # The driver's text (SQL, values, host names) never reaches the message.
    assert "cdrs" not in str(raised.value)
