"""The database: its engines, kept connections and pools, for the repositories that take it
(``AppStore``, ``CdrWriter``, ``PageReader``, ``RatingStore``, ``Outbox``,
``SharedRateLimiter``, and the retention, listing and migrate functions).

Reads and writes go through separate engines on SQLite (readers in parallel, one writer at
a time with ``BEGIN IMMEDIATE``) and share one pooled engine on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from ..errors import ConfigError, SchemaOutOfDate
from . import citus
from .engine import Pinned, parse_url, postgres_engine, sqlite_engine, translated
from .partitions import Partitions

# The SQLite writer's page cache for bulk imports. With the default 2 MiB, inserting rows
# whose call_ids come in random order into the (app_id, call_id) and messageid indexes
# keeps evicting their pages, which are written out to the WAL and read back: for
# 200,000 rows the insert took about a tenth more CPU and up to half again the
# wall-clock time. Only the one writer connection of an import has it, never a server's
# pool. It changes nothing about durability (commits are still synchronous=FULL).
BULK_CACHE_MIB = 64


class Database:
    """One SQLite or PostgreSQL database: engines, kept connections, dialect, close.

    The connection budget, per process (pools as kept + opened beyond them when busy):

    SQLite (one file; every engine opened lazily):
      - ``writer``: pool 8 + 8, ``BEGIN IMMEDIATE``: every write (CDRs, apps, rating,
        receipts, prune, migrations).
      - ``reader``: pool 8 + 8: every other read, and ``snapshots`` (the query API's
        pages, ``BEGIN``).
      - ``pinned``: one connection per thread that uses it (the query API's guessed
        pages), taken from ``reader`` and detached from its pool.
      - the rate limiter's state file (``SharedRateLimiter``): an engine of its own, 8 + 8,
        and one kept connection per thread that takes a token.

    PostgreSQL (one server):
      - ``writer`` = ``reader``: pool 8 + 8, pinged at checkout: every write and read but
        the two below, the rate limiter's other statements too.
      - ``snapshots``: pool 4 + 12, REPEATABLE READ, no ping: the query API's page reads
        (at least as many as it answers at once, ``VOICECDR_QUERY_THREADS``).
      - ``autocommit``: pool 2 + 6, no ping, made on first use, only for ``pinned``: one
        connection per thread that uses it (the query API's guessed pages and rate-limit
        tokens), each detached from the pool, so the threads bound their number.

    docs/operations.md sizes ``max_connections`` from these. :meth:`close` closes them all.
    """

    def __init__(self, url: str, *, create: bool = True, bulk: bool = False) -> None:
        """Open (lazily: no connection yet) the database at ``url``. With ``create``
        False, a missing SQLite file is an error instead of a new empty database. With
        ``bulk``, for one process writing many CDRs (``cdrs import``), SQLite's writer
        keeps a page cache of ``BULK_CACHE_MIB``."""
        self.url = parse_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            path = self.url.database or ""
            if path in ("", ":memory:"):
                # Each connection would get its own empty database: nothing would be kept.
                raise ConfigError(
                    "an in-memory SQLite database cannot be used: give a file, sqlite:///FILE"
                )
            if not create and not Path(path).exists():
                raise SchemaOutOfDate(
                    f"database file {path} does not exist: run `voicecdr db upgrade` "
                    "(or `voicecdr demo`) first"
                )
            if not Path(path).parent.is_dir():
                raise ConfigError(
                    f"database file {path}: its directory {Path(path).parent} does not exist"
                )
            cache = BULK_CACHE_MIB if bulk else None
            self.writer: Engine = sqlite_engine(self.url, writer=True, cache_mib=cache)
            self.reader: Engine = sqlite_engine(self.url, writer=False)
        else:
            self.writer = self.reader = postgres_engine(self.url)
        # Where a read that must see one snapshot goes, and what opens it there.
        self.snapshots = self.reader
        self.snapshot_begin: str | None = "BEGIN"
        if self.dialect == "postgresql":
            self.snapshots = postgres_engine(
                self.url, ping=False, isolation_level="REPEATABLE READ", pool=(4, 12)
            )
            self.snapshot_begin = None
        # PostgreSQL's cdrs is partitioned by day: the partitions this process has seen.
        self.partitions = (
            Partitions(self.writer, lambda: self.citus) if self.dialect == "postgresql" else None
        )
        # Named parameters in the driver's own style (:name for sqlite3, %(name)s for
        # psycopg), for hot executemany paths that skip SQLAlchemy's per-row processing.
        self._driver_dialect = (
            sqlite.dialect(paramstyle="named") if self.dialect == "sqlite" else self.writer.dialect
        )

    @functools.cached_property
    def autocommit(self) -> Engine:
        """PostgreSQL: an engine for one-statement hot paths on the bare driver (see
        ``on_driver``): autocommit, no ping per checkout. Closed with the database."""
        # One short statement per query request: a few connections go a long way.
        return postgres_engine(self.url, ping=False, isolation_level="AUTOCOMMIT", pool=(2, 6))

    @functools.cached_property
    def pinned(self) -> Pinned:
        """A kept connection per thread on the one-statement reads' engine, for the hot
        paths (the query API's pages, the rate limiter on PostgreSQL). Closed with the
        database."""
        # sqlite3's own connections are in autocommit mode (see snapshot_begin).
        return Pinned(self.autocommit if self.dialect == "postgresql" else self.reader)

    @functools.cached_property
    def citus(self) -> bool:
        """Whether the database is a Citus coordinator (the citus extension is installed):
        asked once, on first use. The few statements that differ on Citus key off it."""
        if self.dialect != "postgresql":
            return False
        with translated("database ping"), self.writer.connect() as conn:
            return citus.installed(conn)

    @contextlib.contextmanager
    def snapshot(self, app_id: int) -> Iterator[sa.Connection]:
        """A transaction on the snapshots' engine for several reads of app ``app_id``:
        they see one moment and, on Citus, one placement of the app (``citus.HOLD_APP``)."""
        with self.snapshots.begin() as conn:
            if self.citus:
                conn.execute(sa.text(citus.HOLD_APP), {"app": app_id})
            yield conn

    @property
    def writes_in_server(self) -> bool:
        """Whether the database does its writing in a server process (PostgreSQL), so that
        a thread waiting for it lets others run, rather than in this process (SQLite's
        driver holds the GIL between the rows it steps)."""
        return self.dialect == "postgresql"

    def driver_sql(self, text: str) -> str:
        """``text`` with ``:name`` parameters, rewritten for this database's driver."""
        return str(sa.text(text).compile(dialect=self._driver_dialect))

    def ping(self) -> None:
        with translated("database ping"), self.reader.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        if "pinned" in self.__dict__:  # created on first use
            self.pinned.close()
        self.writer.dispose()
        if self.snapshots is not self.reader:
            self.snapshots.dispose()
        if "autocommit" in self.__dict__:  # created on first use
            self.autocommit.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()
