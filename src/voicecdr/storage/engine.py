"""Engines for SQLite and PostgreSQL, and the translation of driver errors.

SQLite is used the way it is safest under concurrency: WAL, ``synchronous=FULL`` (a
commit survives power loss), a busy timeout, and explicit ``BEGIN IMMEDIATE`` on the
writer so two writers queue instead of failing on a lock upgrade.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from ..errors import ConfigError, DatabaseUnavailable, StorageError

_T = TypeVar("_T")


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


def sqlite_engine(
    url: URL, *, writer: bool, durable: bool = True, cache_mib: int | None = None
) -> Engine:
    """An engine whose connections are set up as the module docstring says. ``cache_mib``:
    a page cache of that size per connection instead of SQLite's 2 MiB default."""
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
        if cache_mib is not None:
            cursor.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")  # in KiB when < 0
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


def postgres_engine(
    url: URL,
    *,
    ping: bool = True,
    isolation_level: str | None = None,
    pool: tuple[int, int] = (8, 8),
) -> Engine:
    """The pooled engine (``pool``: connections kept, and opened beyond them at busy
    times). Without ``ping`` a checkout costs no round trip: for hot paths that use
    :func:`on_driver`, which reconnects when a connection is found lost."""
    options: dict[str, Any] = {"isolation_level": isolation_level} if isolation_level else {}
    return sa.create_engine(
        url,
        pool_size=pool[0],
        max_overflow=pool[1],
        pool_pre_ping=ping,
        **options,
        connect_args={
            "connect_timeout": 10,
            "application_name": "voicecdr",
            # A commit is on disk before it returns, whatever the server's default: an
            # ingest answer says "accepted" only for records that survive a crash.
            "options": "-c synchronous_commit=on",
        },
    )


def on_driver(engine: Engine, work: Callable[[Any], _T], *, begin: str | None = None) -> _T:
    """``work(cursor)`` on a bare driver cursor of a pooled connection, then commit.

    For the hot paths (the query API's reads, the rate limiter), where SQLAlchemy's
    per-statement cost is measurable. ``begin`` is sent first when the driver does not
    open the transaction itself (sqlite3 in autocommit mode). A connection found lost is
    dropped and ``work`` run once more on a new one, so ``work`` must be safe to repeat.
    """
    for attempt in (1, 2):
        raw = engine.raw_connection()
        try:
            return _committed(raw, work, begin)
        except Exception as exc:
            if attempt == 1 and lost_connection(exc):
                raw.invalidate()
                continue
            with contextlib.suppress(Exception):
                raw.rollback()
            raise
        finally:
            raw.close()
    raise AssertionError("unreachable")


def _committed(connection: Any, work: Callable[[Any], _T], begin: str | None) -> _T:
    cursor = connection.cursor()
    if begin is not None:
        cursor.execute(begin)
    result = work(cursor)
    connection.commit()
    return result


class Pinned:
    """One driver connection per thread, taken from ``engine`` once and kept, for the
    hot paths' one-statement work (the query API's page read, the rate limiter's token).

    :func:`on_driver` pays the pool's checkout and its reset on return for every call, a
    cost the hot paths feel (docs/performance.md#kept-connections). A kept connection is
    detached from the pool (it does not hold a pool slot; the pool opens another when it
    needs one) and closed by :meth:`close`, which, like an engine's ``dispose``, leaves it
    usable: a later :meth:`run` opens a new one. Safe only for work that leaves the
    connection as it found it: committed, outside a transaction.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._kept: set[Any] = set()  # every thread's connection, for close()
        self._lock = threading.Lock()
        self._generation = 0  # moved on by close(): older connections are closed

    def run(self, work: Callable[[Any], _T], *, begin: str | None = None) -> _T:
        """``work(cursor)`` on this thread's connection, then commit; as
        :func:`on_driver`, a connection found lost is replaced and ``work`` run once
        more, so it must be safe to repeat."""
        for attempt in (1, 2):
            connection = self._connection()
            try:
                return _committed(connection, work, begin)
            except Exception as exc:
                if lost_connection(exc):
                    self._drop(connection)
                    if attempt == 1:
                        continue
                else:
                    try:
                        connection.rollback()
                    except Exception:
                        self._drop(connection)
                raise
        raise AssertionError("unreachable")

    def _connection(self) -> Any:
        local = self._local
        kept = getattr(local, "connection", None)
        if kept is not None and local.generation == self._generation:
            return kept
        fairy = self._engine.raw_connection()
        connection: Any = fairy.driver_connection
        fairy.detach()
        with self._lock:
            self._kept.add(connection)
            local.connection, local.generation = connection, self._generation
        return connection

    def _drop(self, connection: Any) -> None:
        self._local.connection = None
        with self._lock:
            self._kept.discard(connection)
        with contextlib.suppress(Exception):
            connection.close()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            self._generation += 1
            kept, self._kept = self._kept, set()
        for connection in kept:
            with contextlib.suppress(Exception):
                connection.close()


def lost_connection(exc: BaseException) -> bool:
    """Whether a driver error means the connection is gone (not the statement at fault):
    no SQLSTATE (never connected, or cut off), class 08, or a server shutting down."""
    psycopg = _psycopg()
    if psycopg is not None and isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        return state.startswith(("08", "57P")) or (
            isinstance(exc, psycopg.OperationalError) and not state
        )
    return False


def _psycopg() -> Any:
    """The psycopg module if it is loaded, else None: none of its errors can arise before
    it is. Not imported here, so that a process on SQLite never loads the PostgreSQL
    driver (docs/performance.md#postgresql-driver-loaded-only-when-used)."""
    return sys.modules.get("psycopg")


def _driver_errors() -> tuple[type[Exception], ...]:
    psycopg = _psycopg()
    base = (sa.exc.SQLAlchemyError, sqlite3.Error)
    return base if psycopg is None else (*base, psycopg.Error)


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn any driver or SQLAlchemy error into StorageError, keeping it as the cause.

    Faults of the database itself rather than of the request (server down or gone,
    read-only file system, full disk) become :class:`DatabaseUnavailable` with a message
    that names the fault. Messages are built from fixed phrases, never the driver's text,
    which may carry host names or SQL with values.
    """
    try:
        yield
    except _driver_errors() as exc:
        cause = getattr(exc, "orig", None) or exc
        fault = _fault(exc, cause)
        if fault is not None:
            raise DatabaseUnavailable(f"{action} failed: {fault}") from exc
        raise StorageError(f"{action} failed: {_problem(cause)}") from exc


def _problem(cause: BaseException) -> str:
    # A fixed phrase for what an operator can fix; else only the error's type.
    if isinstance(cause, sqlite3.DatabaseError) and "file is not a database" in str(cause):
        return "the database file is not an SQLite database"
    return type(cause).__name__


# SQLite reports these as OperationalError (or DatabaseError) with fixed messages; the
# extended result codes would be better but Python < 3.11 builds may lack them.
_SQLITE_FAULTS = (
    ("readonly database", "database is read-only"),
    ("database or disk is full", "database or disk is full"),
    ("disk i/o error", "disk I/O error"),
    ("unable to open database file", "database file cannot be opened"),
)


# How a Citus coordinator reports a worker it cannot reach: 08006 when it connects, and
# the generic XX000 when a connection it held breaks mid-transaction. Only the text tells.
_CITUS_NODE_DOWN = (
    "connection to the remote node",
    "failure on connection marked as essential",
    "could not establish any connections to the node",
)


def _fault(exc: BaseException, cause: BaseException) -> str | None:
    if isinstance(cause, sqlite3.Error):
        text = str(cause).lower()
        return next((fault for needle, fault in _SQLITE_FAULTS if needle in text), None)
    psycopg = _psycopg()
    if psycopg is not None and isinstance(cause, psycopg.Error):
        state = cause.sqlstate or ""
        if state == "25006":  # read_only_sql_transaction: a standby, or read-only mode
            return "database is read-only"
        if state == "53100":
            return "database or disk is full"
        if state.startswith("57P"):  # operator intervention: shutdown, starting up
            return "database server is shutting down or starting up"
        if state in ("XX000", "08006") and str(cause).startswith(_CITUS_NODE_DOWN):
            return "a database node is unreachable (a Citus worker down or restarting)"
        if lost_connection(cause):
            return "database server unreachable or the connection was lost"
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return "database server unreachable or the connection was lost"
    return None
