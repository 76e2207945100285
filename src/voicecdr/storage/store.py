"""The Store: the only class that issues SQL. Typed methods in, our models out.

Reads and writes go through separate engines on SQLite (readers in parallel, one writer at
a time with ``BEGIN IMMEDIATE``) and share one pooled engine on PostgreSQL.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from ..errors import Conflict, NotFound, SchemaOutOfDate, StorageError
from ..models import App, Cdr, CdrRow, CostStatus, Language, Service, VoiceGroup
from . import counts, pages, schema
from .engine import Pinned, on_driver, parse_url, postgres_engine, sqlite_engine, translated
from .pages import ROW_FIELDS, RowPage, Stamp, StampedPage
from .partitions import Partitions, days_of, worth_retrying

# The SQLite writer's page cache for bulk imports. With the default 2 MiB, inserting rows
# whose call_ids come in random order into the (app_id, call_id) and messageid indexes
# keeps evicting their pages, which are written out to the WAL and read back: for
# 200,000 rows the insert took about a tenth more CPU and up to half again the
# wall-clock time. Only the one writer connection of an import has it, never a server's
# pool. It changes nothing about durability (commits are still synchronous=FULL).
BULK_CACHE_MIB = 64


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


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
            if not create and path not in ("", ":memory:") and not Path(path).exists():
                raise SchemaOutOfDate(
                    f"database file {path} does not exist: run `voicecdr db upgrade` "
                    "(or `voicecdr demo`) first"
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
        if self.dialect == "postgresql":
            tables = schema.postgresql_metadata.tables
            self._copy_types = (
                self._column_types(tables["cdrs"], _INSERT_COLUMNS),
                self._column_types(tables["cdr_keys"], _KEY_COLUMNS),
            )

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

    def _column_types(self, table: sa.Table, names: Sequence[str]) -> list[str]:
        """``integer``, ``varchar``, ``bigint``, ... of these columns, as psycopg names
        types: what a binary COPY must be told."""
        dialect = self.writer.dialect
        return [table.c[n].type.compile(dialect=dialect).split("(")[0].lower() for n in names]

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
        """Store ``(app_id, cdr)`` pairs idempotently by (app, call_id), in one transaction.

        Returns one outcome per input: accepted, duplicate (same call_id, same content) or
        conflict (same call_id, different content: never overwritten).
        """
        rows = [_cdr_tuple(app_id, cdr, now) for app_id, cdr in batch]
        keys = list(map(_KEY, rows))
        # key -> index of its first occurrence: built backwards, so the first one wins.
        first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
        unique = len(first) == len(keys)
        fresh = rows if unique else [rows[i] for i in sorted(first.values())]
        days = days_of(map(_PLACED, fresh)) if self.partitions is not None else set()
        for attempt in range(1, _ATTEMPTS + 1):
            if self.partitions is not None:
                self.partitions.ensure(days)
            try:
                merged = self._store_new(fresh, first, unique)
                break
            except StorageError as exc:
                # A partition this process had seen was dropped by retention meanwhile
                # (make it again: late records are accepted, and pruned next time), or
                # a deadlock with retention or another writer: the batch is retried.
                if self.partitions is None or attempt == _ATTEMPTS or not worth_retrying(exc):
                    raise
                self.partitions.forget()
        if merged is None:
            # The common case (an import of new calls): every row went in as it was.
            return [Outcome.ACCEPTED] * len(rows)
        inserted, known = merged
        outcomes: list[Outcome] = []
        for i, (_, cdr) in enumerate(batch):
            key = keys[i]
            if key in inserted and first[key] == i:
                outcomes.append(Outcome.ACCEPTED)
                continue
            stored = batch[first[key]][1].content_hash if key in inserted else known.get(key)
            same = stored == cdr.content_hash
            outcomes.append(Outcome.DUPLICATE if same else Outcome.CONFLICT)
        return outcomes

    def _store_new(
        self, fresh: list[tuple[Any, ...]], first: dict[tuple[int, str], int], unique: bool
    ) -> tuple[set[tuple[int, str]], dict[tuple[int, str], str]] | None:
        """Store the batch's ``fresh`` rows (one per key) in one transaction; returns the
        keys inserted and the stored hashes of the batch's other keys, or None when every
        row of a batch without repeats went in."""
        with translated("store CDRs"), self.writer.begin() as conn:
            inserted = self._insert_new(conn, fresh)
            self._count(
                conn, fresh if inserted is None else [r for r in fresh if _KEY(r) in inserted]
            )
            if inserted is None and unique:
                return None
            if inserted is None:
                inserted = set(map(_KEY, fresh))
            # Only keys that were not inserted need the stored content to compare with.
            return inserted, self._known_hashes(conn, [k for k in first if k not in inserted])

    def _insert_new(
        self, conn: sa.Connection, rows: list[tuple[Any, ...]]
    ) -> set[tuple[int, str]] | None:
        """Insert the rows (``_INSERT_COLUMNS`` order) whose (app_id, call_id) is not stored
        yet; returns the keys inserted, or None when that is all of them (no set to build
        for the common case).

        Each driver's bulk path, since building a multi-row INSERT in SQLAlchemy costs far
        more than the database's own work. SQLite: one prepared INSERT run by
        ``executemany`` in a savepoint, on the bet that the rows are new (an import, a
        switch's live feed); if one is not, roll back to the savepoint and insert only the
        new ones (the writer holds the database lock since ``BEGIN IMMEDIATE``, so nothing
        changes in between). PostgreSQL: the same bet with ``COPY`` straight into
        ``cdr_keys`` (the idempotency key across partitions) and then into ``cdrs``; if a
        key is already there (or a concurrent writer stores it first), roll back to the
        savepoint, ``COPY`` into a temporary table and let one statement insert the keys
        ``ON CONFLICT DO NOTHING`` and then the rows of the keys it inserted, returning them.
        """
        if not rows:
            return None
        if self.dialect == "sqlite":
            try:
                with conn.begin_nested():
                    conn.exec_driver_sql(_SQLITE_INSERT, rows)
                return None
            except sa.exc.IntegrityError:
                stored = self._known_hashes(conn, map(_KEY, rows))
                rows = [r for r in rows if (r[0], r[1]) not in stored]
                if rows:
                    conn.exec_driver_sql(_SQLITE_INSERT, rows)
                return set(map(_KEY, rows))
        import psycopg  # here: an import into SQLite never needs the PostgreSQL driver

        driver = conn.connection.driver_connection
        assert driver is not None
        try:
            with conn.begin_nested(), driver.cursor() as cursor:
                # Keys first: a repeated call fails here, before the wide rows are sent.
                with cursor.copy(_PG_COPY_KEYS) as copy:
                    copy.set_types(self._copy_types[1])
                    write = copy.write_row
                    for key in map(_KEY_ROW, rows):
                        write(key)
                with cursor.copy(_PG_COPY_DIRECT) as copy:
                    copy.set_types(self._copy_types[0])
                    write = copy.write_row
                    for row in rows:
                        write(row)
            return None
        except psycopg.errors.UniqueViolation:
            pass  # rolled back to the savepoint: merge through the staging table instead
        with driver.cursor() as cursor:
            # "IF NOT EXISTS" would otherwise send a NOTICE on every batch but the first.
            cursor.execute("SET LOCAL client_min_messages = warning")
            cursor.execute(_PG_STAGING)
            with cursor.copy(_PG_COPY) as copy:
                copy.set_types(self._copy_types[0])
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_PG_MERGE)
            return {(r[0], r[1]) for r in cursor.fetchall()}

    def _count(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Add the rows just stored to their buckets' counts (see ``counts``)."""
        if not rows:
            return
        increments = counts.tally(map(_COUNT_KEY, rows))
        if self.dialect == "sqlite":
            conn.exec_driver_sql(_SQLITE_COUNT_UPSERT, increments)
        else:
            # One statement for the batch's hundreds of buckets, not one each.
            conn.exec_driver_sql(_PG_COUNT_UPSERT, tuple(map(list, zip(*increments, strict=True))))

    def _known_hashes(
        self, conn: sa.Connection, keys: Iterable[tuple[int, str]]
    ) -> dict[tuple[int, str], str]:
        """The stored content hash of each of these keys that is stored."""
        by_app: dict[int, list[str]] = {}
        for app_id, call_id in keys:
            by_app.setdefault(app_id, []).append(call_id)
        c, k = schema.cdrs.c, schema.cdr_keys.c
        found: dict[tuple[int, str], str] = {}
        for app_id, call_ids in by_app.items():
            for start in range(0, len(call_ids), 900):
                chunk = call_ids[start : start + 900]
                where = [c.app_id == app_id, c.call_id.in_(chunk)]
                if self.partitions is not None:
                    # Which days the calls live in, so the read touches their partitions
                    # only (the planner prunes the rest) rather than probing every one.
                    placed = conn.execute(
                        sa.select(k.placed_at)
                        .where(k.app_id == app_id, k.call_id.in_(chunk))
                        .distinct()
                    ).scalars()
                    where.append(c.placed_at.in_(list(placed)))
                rows = conn.execute(sa.select(c.call_id, c.content_hash).where(*where))
                found.update(((app_id, r[0]), r[1]) for r in rows)
        return found

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
    ) -> StampedPage[_T]:
        """:meth:`query_rows` (without a messageid) for a caller that keeps what it makes
        of rows: the page as stamps (``pages.STAMP_FIELDS``, exact identities of a row's
        whole content), ``lookup`` of them (a value or None for each), and the whole rows
        only of the stamps it gave None for, all from one snapshot. ``whole`` reads every
        row whole at once: for a caller expecting to know few of them.

        A page whose start can be guessed (``pages.Seeks``) is read without a snapshot,
        its counts and stamps in one statement: on PostgreSQL that saves a transaction's
        two round trips and the seek's; on SQLite, a transaction and the seek."""
        params = pages.window_params(app_id, group, start, end, limit)
        key = (app_id, int(group), start, end)
        guess = self._seeks.guess(key, start, offset)

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
                sql=self._sql,
                params=dict(params),
                offset=offset,
                guess=guess,
                lookup=lookup,
                whole=whole,
            )
            with translated("query CDRs"):
                found = self.pinned.run(guessed)
            if found is not None:
                return found
            self._seeks.forget(key)
        return self._snapshot("query CDRs", read)

    def _snapshot(self, what: str, read: Callable[[Any], _T]) -> _T:
        # The bare driver: this is the query API's whole database work. One snapshot
        # (BEGIN on SQLite, the engine's REPEATABLE READ on PostgreSQL), and a commit at
        # the end rather than a rollback: psycopg forgets prepared statements on rollback.
        with translated(what):
            return on_driver(self._snapshots, read, begin=self._snapshot_begin)


_INSERT_COLUMNS = (
    "app_id",
    "call_id",
    "content_hash",
    "service",
    "voice_group",
    "messageid",
    "phone",
    "country_code",
    "show_phone",
    "placed_at",
    "answered_at",
    "ended_at",
    "billsec",
    "connected",
    "hangup_cause",
    "hangup_disposition",
    "ivr_result",
    "record_url",
    "ingested_at",
)
_COLUMN_LIST = ", ".join(_INSERT_COLUMNS)
_SQLITE_INSERT = (
    f"INSERT INTO cdrs ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(_INSERT_COLUMNS))})"
)
# Per session, emptied by every commit: concurrent requests each have their own.
_PG_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS cdrs_incoming ON COMMIT DELETE ROWS AS "
    f"SELECT {_COLUMN_LIST} FROM cdrs WITH NO DATA"
)
# COPY in binary: psycopg writes a row in about half the CPU time of the text format (it
# need not render numbers as text), and the server need not parse them. Binary needs each
# column's exact type: taken from the schema, as psycopg names them.
_KEY_COLUMNS = ("app_id", "call_id", "placed_at")  # cdr_keys's
_PG_COPY = f"COPY cdrs_incoming ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_PG_COPY_DIRECT = f"COPY cdrs ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_PG_COPY_KEYS = f"COPY cdr_keys ({', '.join(_KEY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

# Keys in one order, so that concurrent writers of overlapping batches wait for each other
# instead of deadlocking; then the rows of the keys this statement inserted.
_PG_MERGE = (
    "WITH new AS (INSERT INTO cdr_keys (app_id, call_id, placed_at) "
    "SELECT app_id, call_id, placed_at FROM cdrs_incoming ORDER BY app_id, call_id "
    "ON CONFLICT (app_id, call_id) DO NOTHING RETURNING app_id, call_id) "
    f"INSERT INTO cdrs ({_COLUMN_LIST}) SELECT {', '.join('i.' + n for n in _INSERT_COLUMNS)} "
    "FROM cdrs_incoming i JOIN new USING (app_id, call_id) RETURNING app_id, call_id"
)


_KEY = itemgetter(0, 1)  # a row's (app_id, call_id)
_PLACED = itemgetter(9)  # a row's placed_at
_KEY_ROW = itemgetter(0, 1, 9)  # a row's cdr_keys columns: (app_id, call_id, placed_at)
_ATTEMPTS = 3  # of storing a batch: a partition dropped under it, or a deadlock
_COUNT_KEY = itemgetter(0, 4, 9)  # a row's (app_id, voice_group, placed_at)
_COUNT_CONFLICT = (
    "ON CONFLICT (app_id, voice_group, bucket) DO UPDATE SET n = cdr_counts.n + excluded.n"
)
_SQLITE_COUNT_UPSERT = (
    f"INSERT INTO cdr_counts (app_id, voice_group, bucket, n) VALUES (?, ?, ?, ?) {_COUNT_CONFLICT}"
)
# PostgreSQL: the increments as four arrays, in one statement, in key order (as sorted
# by counts.tally) so that concurrent writers lock count rows in one order.
_PG_COUNT_UPSERT = (
    "INSERT INTO cdr_counts (app_id, voice_group, bucket, n) SELECT a, g, b, n FROM "
    "unnest(%s::integer[], %s::smallint[], %s::bigint[], %s::bigint[]) AS i (a, g, b, n) "
    f"ORDER BY a, g, b {_COUNT_CONFLICT}"
)
# service -> (service, voice_group) as plain ints: an enum property per row is measurable.
_SERVICE_COLUMNS = {s: (int(s), int(s.voice_group)) for s in Service}


def _cdr_tuple(app_id: int, cdr: Cdr, now: int) -> tuple[Any, ...]:
    # Unpacked in one step: cheaper than 17 attribute reads, once per stored row.
    (call_id, _, svc, messageid, phone, cc, show, placed, answered, ended, second) = cdr[:11]
    (connected, cause, disposition, ivr, url, content_hash) = cdr[11:]
    service, voice_group = _SERVICE_COLUMNS[svc]
    return (
        app_id,
        call_id,
        content_hash,
        service,
        voice_group,
        messageid,
        phone,
        cc,
        show,
        placed,
        answered,
        ended,
        second,
        connected,
        cause,
        disposition,
        ivr,
        url,
        now,
    )
