"""Engines for SQLite and PostgreSQL, and the translation of driver errors.

SQLite is used the way it is safest under concurrency: WAL, ``synchronous=FULL`` (a
commit survives power loss), a busy timeout, and explicit ``BEGIN IMMEDIATE`` on the
writer so two writers queue instead of failing on a lock upgrade.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from ..errors import ConfigError, StorageError


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"database URL is not valid: {_redact(url)}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite")
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+psycopg")
    raise ConfigError(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://")


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable>"


def sqlite_engine(url: URL, *, writer: bool, durable: bool = True) -> Engine:
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=8,
        max_overflow=8,
    )
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below decide transactions, not the driver's heuristics.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


def postgres_engine(url: URL) -> Engine:
    return sa.create_engine(
        url,
        pool_size=8,
        max_overflow=8,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": 10,
            "application_name": "voicecdr",
            # A commit is on disk before it returns, whatever the server's default: an
            # ingest answer says "accepted" only for records that survive a crash.
            "options": "-c synchronous_commit=on",
        },
    )


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn any driver or SQLAlchemy error into StorageError, keeping it as the cause."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise StorageError(f"{action} failed: {type(cause).__name__}") from exc
