"""The Store: the database's engines, apps, and the query API's reads; storing CDRs is
``writes``'s, rating and receipts have stores of their own. Typed methods in, our models
out.

Reads and writes go through separate engines on SQLite (readers in parallel, one writer at
a time with ``BEGIN IMMEDIATE``) and share one pooled engine on PostgreSQL.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from ..errors import ConfigError, Conflict, NotFound, SchemaOutOfDate
from ..models import App, Cdr, CdrRow, CostStatus, Language, Service, VoiceGroup
from . import pages, schema
from .engine import Pinned, on_driver, parse_url, postgres_engine, sqlite_engine, translated
from .pages import ROW_FIELDS, RowPage, Stamp, StampedPage
from .partitions import Partitions
from .writes import CdrWriter, Outcome

# The SQLite writer's page cache for bulk imports. With the default 2 MiB, inserting rows
# whose call_ids come in random order into the (app_id, call_id) and messageid indexes
# keeps evicting their pages, which are written out to the WAL and read back: for
# 200,000 rows the insert took about a tenth more CPU and up to half again the
# wall-clock time. Only the one writer connection of an import has it, never a server's
# pool. It changes nothing about durability (commits are still synchronous=FULL).
BULK_CACHE_MIB = 64


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    rows: list[CdrRow]


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
    """The CdrRow of a driver row (``ROW_FIELDS``): the same values in the same order,
    with the service, the connected flag and the cost status as their types."""
    return CdrRow._make(
        (r[0], _SERVICES[r[1]], *r[2:10], bool(r[10]), *r[11:15], _COST_STATUSES[r[15]], *r[16:])
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
        self._snapshots = self.reader
        self._snapshot_begin: str | None = "BEGIN"
        if self.dialect == "postgresql":
            # At least as many as the query API answers at once (VOICECDR_QUERY_THREADS).
            self._snapshots = postgres_engine(
                self.url, ping=False, isolation_level="REPEATABLE READ", pool=(4, 12)
            )
            self._snapshot_begin = None
        # PostgreSQL's cdrs is partitioned by day: the partitions this process has seen.
        self.partitions = Partitions(self.writer) if self.dialect == "postgresql" else None
        # Named parameters in the driver's own style (:name for sqlite3, %(name)s for
        # psycopg), for hot executemany paths that skip SQLAlchemy's per-row processing.
        self._driver_dialect = (
            sqlite.dialect(paramstyle="named") if self.dialect == "sqlite" else self.writer.dialect
        )
        self._sql = {name: self.driver_sql(text) for name, text in pages.SQL.items()}
        self._seeks = pages.Seeks()
        self._admitting_sql: dict[str, dict[str, str]] = {}
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
        # sqlite3's own connections are in autocommit mode (see _snapshot_begin).
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
        if self._snapshots is not self.reader:
            self._snapshots.dispose()
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

    def query_cdrs(
        self,
        app_id: int,
        group: VoiceGroup,
        start: int,
        end: int,
        *,
        messageid: str | None,
        offset: int,
        limit: int,
    ) -> Page:
        """:meth:`query_rows` with each row as a :class:`CdrRow`."""
        page = self.query_rows(
            app_id, group, start, end, messageid=messageid, offset=offset, limit=limit
        )
        return Page(page.total, [_cdr_row(r) for r in page.rows])

    def query_rows(
        self,
        app_id: int,
        group: VoiceGroup,
        start: int,
        end: int,
        *,
        messageid: str | None,
        offset: int,
        limit: int,
    ) -> RowPage:
        """One page of an app's CDRs in ``[start, end]`` ordered by (time, id), with the
        exact total; both read from one snapshot. Rows are driver tuples (``RowTuple``).

        The total comes from the bucket counts plus the rows of the two partial buckets
        at the window's edges, and the page starts at the bucket holding row ``offset``
        (see ``counts``): both cost about the same at any window size and any page. A
        messageid picks out a handful of rows through its own index instead.
        """
        params = pages.window_params(app_id, group, start, end, limit)
        key = (app_id, int(group), start, end)

        def read(cursor: Any) -> RowPage:
            return pages.read_page(
                cursor,
                self._sql,
                params,
                messageid=messageid,
                offset=offset,
                seeks=self._seeks,
                key=key,
            )

        return self._snapshot("query CDRs", read)

    def query_stamped(
        self,
        app_id: int,
        group: VoiceGroup,
        start: int,
        end: int,
        *,
        offset: int,
        limit: int,
        lookup: Callable[[list[Stamp]], list[_T | None]],
        whole: bool = False,
        admission: pages.Admission | None = None,
    ) -> StampedPage[_T]:
        """:meth:`query_rows` (without a messageid) for a caller that keeps what it makes
        of rows: the page as stamps (``pages.STAMP_FIELDS``, exact identities of a row's
        whole content), ``lookup`` of them (a value or None for each), and the whole rows
        only of the stamps it gave None for, all from one snapshot. ``whole`` reads every
        row whole at once: for a caller expecting to know few of them.

        A page whose start can be guessed (``pages.Seeks``) is read without a snapshot,
        its counts and stamps in one statement: on PostgreSQL that saves a transaction's
        two round trips and the seek's; on SQLite, a transaction and the seek.

        ``admission`` (PostgreSQL only) is the request's rate-limit token, taken first:
        by that one statement when there is one, else by a statement of its own. Raises
        ``pages.Refused``, having read nothing, if it is refused."""
        params = pages.window_params(app_id, group, start, end, limit)
        key = (app_id, int(group), start, end)
        guess = self._seeks.guess(key, start, offset)
        sql = self._sql
        if admission is not None:
            if guess is None:
                with translated("rate limit"):
                    if not self.pinned.run(admission.take):
                        raise pages.Refused
                admission = None
            else:
                sql = self._admitting(admission.sql)

        def read(cursor: Any) -> StampedPage[_T]:
            return pages.read_stamped(
                cursor,
                self._sql,
                params,
                offset=offset,
                lookup=lookup,
                whole=whole,
                seeks=self._seeks,
                key=key,
            )

        if guess is not None:
            guessed = functools.partial(
                pages.read_guessed,
                sql=sql,
                params=dict(params),
                offset=offset,
                guess=guess,
                lookup=lookup,
                whole=whole,
                admission=admission,
            )
            with translated("query CDRs"):
                found = self.pinned.run(guessed)
            if found is not None:
                return found
            self._seeks.forget(key)
        return self._snapshot("query CDRs", read)

    def _admitting(self, admission: str) -> dict[str, str]:
        """:attr:`_sql` with the counted statements taking a token by ``admission``
        (``pages.admitting``); made once per statement text (one per database)."""
        found = self._admitting_sql.get(admission)
        if found is None:
            found = self._admitting_sql[admission] = {
                **self._sql,
                **{
                    name: self.driver_sql(pages.admitting(text, admission))
                    for name, text in pages.GATED.items()
                },
            }
        return found

    def _snapshot(self, what: str, read: Callable[[Any], _T]) -> _T:
        # The bare driver: this is the query API's whole database work. One snapshot
        # (BEGIN on SQLite, the engine's REPEATABLE READ on PostgreSQL), and a commit at
        # the end rather than a rollback: psycopg forgets prepared statements on rollback.
        with translated(what):
            return on_driver(self._snapshots, read, begin=self._snapshot_begin)
