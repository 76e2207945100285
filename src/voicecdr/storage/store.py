"""The Store: the database's engines, apps, and the query API's reads; storing CDRs is
``writes``'s, rating and receipts have stores of their own. Typed methods in, our models
out.

Reads and writes go through separate engines on SQLite (readers in parallel, one writer at
a time with ``BEGIN IMMEDIATE``) and share one pooled engine on PostgreSQL.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from ..errors import ConfigError, Conflict, NotFound, SchemaOutOfDate
from ..models import App, Cdr, CdrRow, CostStatus, Language, Service
from . import schema
from .engine import Pinned, parse_url, postgres_engine, sqlite_engine, translated
from .pages import ROW_FIELDS
from .partitions import Partitions
from .writes import CdrWriter, Outcome

# The SQLite writer's page cache for bulk imports. With the default 2 MiB, inserting rows
# whose call_ids come in random order into the (app_id, call_id) and messageid indexes
# keeps evicting their pages, which are written out to the WAL and read back: for
# 200,000 rows the insert took about a tenth more CPU and up to half again the
# wall-clock time. Only the one writer connection of an import has it, never a server's
# pool. It changes nothing about durability (commits are still synchronous=FULL).
BULK_CACHE_MIB = 64


_APP_COLUMNS = list(schema.apps.c)
_T = TypeVar("_T")
_ROW_COLUMNS = [schema.cdrs.c[name] for name in ROW_FIELDS]


def _app(row: sa.Row[Any]) -> App:
    m = row._mapping
    return App(
        id=m["id"],
        name=m["name"],
        appkey=m["appkey"],
        secret_hash=m["secret_hash"],
        signing_secret=m["signing_secret"],
        timezone=m["timezone"],
        language=Language(m["language"]),
        callback_url=m["callback_url"],
        rate_limit=float(m["rate_limit"]),
        created_at=m["created_at"],
        disabled_at=m["disabled_at"],
    )


# Enum members by value: a dict lookup per row instead of an Enum call per row.
_SERVICES = {int(s): s for s in Service}
_COST_STATUSES = {int(s): s for s in CostStatus}


def _cdr_row(r: Sequence[Any]) -> CdrRow:
    return CdrRow(
        r[0],
        _SERVICES[r[1]],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        r[9],
        bool(r[10]),
        r[11],
        r[12],
        r[13],
        r[14],
        _COST_STATUSES[r[15]],
        r[16],
        r[17],
        r[18],
        r[19],
        r[20],
    )


class Store:
    """Storage for apps and CDRs on SQLite or PostgreSQL."""

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
        # Where reads that need one snapshot go (the query API's deeper pages), and what
        # opens it: sqlite3's own connections are in autocommit mode, so BEGIN.
        self.snapshots = self.reader
        self.snapshot_begin: str | None = "BEGIN"
        if self.dialect == "postgresql":
            # At least as many as the query API answers at once (VOICECDR_QUERY_THREADS).
            self.snapshots = postgres_engine(
                self.url, ping=False, isolation_level="REPEATABLE READ", pool=(4, 12)
            )
            self.snapshot_begin = None
        # PostgreSQL's cdrs is partitioned by day: the partitions this process has seen.
        self.partitions = Partitions(self.writer) if self.dialect == "postgresql" else None
        # Named parameters in the driver's own style (:name for sqlite3, %(name)s for
        # psycopg), for hot executemany paths that skip SQLAlchemy's per-row processing.
        self._driver_dialect = (
            sqlite.dialect(paramstyle="named") if self.dialect == "sqlite" else self.writer.dialect
        )
        self._cdrs = CdrWriter(self.writer, self.partitions)

    @functools.cached_property
    def autocommit(self) -> Engine:
        """PostgreSQL: an engine for one-statement hot paths on the bare driver (see
        ``on_driver``): autocommit, no ping per checkout. Closed with the store."""
        # One short statement per query request: a few connections go a long way.
        return postgres_engine(self.url, ping=False, isolation_level="AUTOCOMMIT", pool=(2, 6))

    @property
    def _at_once_engine(self) -> Engine:
        """Where one-statement reads go: connections outside any transaction."""
        # sqlite3's own connections are in autocommit mode (see snapshot_begin).
        return self.autocommit if self.dialect == "postgresql" else self.reader

    @functools.cached_property
    def pinned(self) -> Pinned:
        """A kept connection per thread on the one-statement reads' engine, for the hot
        paths (the query API's pages, the rate limiter on PostgreSQL). Closed with the
        store."""
        return Pinned(self._at_once_engine)

    @property
    def writes_in_server(self) -> bool:
        """Whether the database does its writing in a server process (PostgreSQL), so that
        a thread waiting for it lets others run, rather than in this process (SQLite's
        driver holds the GIL between the rows it steps)."""
        return self.dialect == "postgresql"

    def driver_sql(self, text: str) -> str:
        """``text`` with ``:name`` parameters, rewritten for this database's driver."""
        return str(sa.text(text).compile(dialect=self._driver_dialect))

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

    # -- health ------------------------------------------------------------------------

    def ping(self) -> None:
        with translated("database ping"), self.reader.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- apps --------------------------------------------------------------------------

    def create_app(self, values: dict[str, Any], *, now: int) -> App:
        with translated("create app"), self.writer.begin() as conn:
            taken = conn.execute(
                sa.select(schema.apps.c.id).where(schema.apps.c.appkey == values["appkey"])
            ).first()
            if taken:
                raise Conflict(f"appkey {values['appkey']!r} is already taken")
            row = conn.execute(
                schema.apps.insert()
                .values(**values, created_at=now, updated_at=now)
                .returning(*_APP_COLUMNS)
            ).one()
        return _app(row)

    def get_app(self, appkey: str) -> App | None:
        with translated("read app"), self.reader.connect() as conn:
            row = conn.execute(
                sa.select(*_APP_COLUMNS).where(schema.apps.c.appkey == appkey)
            ).first()
        return _app(row) if row else None

    def list_apps(self) -> list[App]:
        with translated("list apps"), self.reader.connect() as conn:
            rows = conn.execute(sa.select(*_APP_COLUMNS).order_by(schema.apps.c.id)).all()
        return [_app(r) for r in rows]

    def update_app(self, appkey: str, changes: dict[str, Any], *, now: int) -> App:
        with translated("update app"), self.writer.begin() as conn:
            row = conn.execute(
                schema.apps.update()
                .where(schema.apps.c.appkey == appkey)
                .values(**changes, updated_at=now)
                .returning(*_APP_COLUMNS)
            ).first()
        if row is None:
            raise NotFound(f"no app with appkey {appkey!r}")
        return _app(row)

    # -- CDRs --------------------------------------------------------------------------

    def store_cdrs(self, batch: Sequence[tuple[int, Cdr]], *, now: int) -> list[Outcome]:
        """Store ``(app_id, cdr)`` pairs idempotently by (app, call_id), in one transaction:
        one outcome per input (see ``writes``)."""
        return self._cdrs.store(batch, now=now)
