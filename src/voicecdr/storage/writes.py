"""Storing CDRs: idempotent by (app, call_id), each batch in one transaction with its
bucket counts (``counts``), on each driver's bulk path.

A record already stored with the same content is a duplicate; with other content, a
conflict, never overwritten. On PostgreSQL ``cdr_keys`` holds the key across the day
partitions of ``cdrs``, and a batch whose partition retention dropped under it is retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..cdrfields import INSERT_COLUMNS
from ..errors import StorageError
from ..models import Cdr, Service
from . import counts, rollups, schema
from .database import Database
from .engine import translated
from .partitions import days_of, worth_retrying

if TYPE_CHECKING:
    from .spool import Arrivals, Progress


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


class CdrWriter:
    """Stores CDRs through ``db``'s writer (and its ``partitions`` on PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        writer = db.writer
        self.writer = writer
        self._db = db
        self.dialect = db.dialect
        self.partitions = db.partitions
        if self.dialect == "postgresql":
            tables = schema.metadata_for("postgresql").tables
            self._cdr_keys = tables["cdr_keys"]
            # What a binary COPY must be told of each column (see _PG_COPY).
            self._types = (
                _column_types(writer, tables["cdrs"], _INSERT_COLUMNS),
                _column_types(writer, self._cdr_keys, _KEY_COLUMNS),
            )

    def store(
        self,
        batch: Sequence[tuple[int, Cdr]],
        *,
        now: int,
        progress: Progress | Arrivals | None = None,
    ) -> list[Outcome]:
        """Store ``(app_id, cdr)`` pairs idempotently by (app, call_id), in one transaction.

        Returns one outcome per input: accepted, duplicate (same call_id, same content) or
        conflict (same call_id, different content: never overwritten). ``progress`` (a
        follower's file position, rejects and counts, or a source's ``Arrivals`` to count:
        ``spool.py``) is written in the same transaction, knowing the outcomes. An empty
        batch with ``progress`` writes just that.
        """
        rows = [cdr_tuple(app_id, cdr, now) for app_id, cdr in batch]
        keys = list(map(_KEY, rows))
        # key -> index of its first occurrence: built backwards, so the first one wins.
        first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
        unique = len(first) == len(keys)
        fresh = rows if unique else [rows[i] for i in sorted(first.values())]
        days = days_of(map(_PLACED, fresh)) if self.partitions is not None else set()
        finish: _Finish | None = None
        if progress is not None:
            from . import spool

            def finish(conn: sa.Connection, merged: _Merged) -> None:
                outcomes = _outcomes(batch, keys, first, merged)
                if isinstance(progress, spool.Progress):
                    spool.write(conn, self.dialect, progress, outcomes)
                else:
                    spool.count(conn, self.dialect, progress, outcomes, now)

        for attempt in range(1, _ATTEMPTS + 1):
            if self.partitions is not None:
                self.partitions.ensure(days)
            try:
                merged = self._store_new(fresh, first, unique, finish)
                break
            except StorageError as exc:
                # A partition this process had seen was dropped by retention meanwhile
                # (make it again: late records are accepted, and pruned next time), or
                # a deadlock with retention or another writer: the batch is retried.
                if self.partitions is None or attempt == _ATTEMPTS or not worth_retrying(exc):
                    raise
                self.partitions.forget()
        return _outcomes(batch, keys, first, merged)

    def _store_new(
        self,
        fresh: list[tuple[Any, ...]],
        first: dict[tuple[int, str], int],
        unique: bool,
        finish: _Finish | None = None,
    ) -> _Merged:
        """Store the batch's ``fresh`` rows (one per key) in one transaction; returns the
        keys inserted and the stored hashes of the batch's other keys, or None when every
        row of a batch without repeats went in. ``finish`` runs last in the transaction."""
        with translated("store CDRs"), self.writer.begin() as conn:
            inserted = self._insert_new(conn, fresh)
            stored = fresh if inserted is None else [r for r in fresh if _KEY(r) in inserted]
            self._count(conn, stored)
            if stored:
                facts = list(map(_CALL_FACT, stored))
                distributed = self._db.citus
                tally = rollups.tally_calls(conn, self.dialect, facts, distributed=distributed)
                tally.write(conn, self.dialect)
            merged: _Merged = None
            if inserted is not None or not unique:
                if inserted is None:
                    inserted = set(map(_KEY, fresh))
                # Only keys that were not inserted need the stored content to compare with.
                known = self._known_hashes(conn, [k for k in first if k not in inserted])
                merged = inserted, known
            if finish is not None:
                finish(conn, merged)
            return merged

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
                    copy.set_types(self._types[1])
                    write = copy.write_row
                    for key in map(_KEY_ROW, rows):
                        write(key)
                with cursor.copy(_PG_COPY_DIRECT) as copy:
                    copy.set_types(self._types[0])
                    write = copy.write_row
                    for row in rows:
                        write(row)
            return None
        except psycopg.errors.UniqueViolation:
            pass  # rolled back to the savepoint: merge through the staging table instead
        except psycopg.errors.InternalError_:
            # Citus passes on a worker's unique violation in a COPY as XX000: merge too,
            # which reports any other fault itself.
            if not self._db.citus:
                raise
        with driver.cursor() as cursor:
            # "IF NOT EXISTS" would otherwise send a NOTICE on every batch but the first.
            cursor.execute("SET LOCAL client_min_messages = warning")
            cursor.execute(_PG_STAGING)
            with cursor.copy(_PG_COPY) as copy:
                copy.set_types(self._types[0])
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
        c = schema.cdrs.c
        found: dict[tuple[int, str], str] = {}
        for app_id, call_ids in by_app.items():
            for start in range(0, len(call_ids), 900):
                chunk = call_ids[start : start + 900]
                where = [c.app_id == app_id, c.call_id.in_(chunk)]
                if self.partitions is not None:
                    # Which days the calls live in, so the read touches their partitions
                    # only (the planner prunes the rest) rather than probing every one.
                    k = self._cdr_keys.c
                    placed = conn.execute(
                        sa.select(k.placed_at)
                        .where(k.app_id == app_id, k.call_id.in_(chunk))
                        .distinct()
                    ).scalars()
                    where.append(c.placed_at.in_(list(placed)))
                rows = conn.execute(sa.select(c.call_id, c.content_hash).where(*where))
                found.update(((app_id, r[0]), r[1]) for r in rows)
        return found


_INSERT_COLUMNS = INSERT_COLUMNS
INSERT_COLUMN_LIST = ", ".join(_INSERT_COLUMNS)
_SQLITE_INSERT = (
    f"INSERT INTO cdrs ({INSERT_COLUMN_LIST}) VALUES ({', '.join('?' * len(_INSERT_COLUMNS))})"
)
# Per session, emptied by every commit: concurrent requests each have their own.
_PG_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS cdrs_incoming ON COMMIT DELETE ROWS AS "
    f"SELECT {INSERT_COLUMN_LIST} FROM cdrs WITH NO DATA"
)
# COPY in binary: psycopg writes a row in about half the CPU time of the text format (it
# need not render numbers as text), and the server need not parse them. Binary needs each
# column's exact type: taken from the schema, as psycopg names them.
_KEY_COLUMNS = ("app_id", "call_id", "placed_at")  # cdr_keys's
_PG_COPY = f"COPY cdrs_incoming ({INSERT_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_PG_COPY_DIRECT = f"COPY cdrs ({INSERT_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_PG_COPY_KEYS = f"COPY cdr_keys ({', '.join(_KEY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

# Keys in one order, so that concurrent writers of overlapping batches wait for each other
# instead of deadlocking; then the rows of the keys this statement inserted.
_PG_MERGE = (
    "WITH new AS (INSERT INTO cdr_keys (app_id, call_id, placed_at) "
    "SELECT app_id, call_id, placed_at FROM cdrs_incoming ORDER BY app_id, call_id "
    "ON CONFLICT (app_id, call_id) DO NOTHING RETURNING app_id, call_id) "
    f"INSERT INTO cdrs ({INSERT_COLUMN_LIST}) "
    f"SELECT {', '.join('i.' + n for n in _INSERT_COLUMNS)} "
    "FROM cdrs_incoming i JOIN new USING (app_id, call_id) RETURNING app_id, call_id"
)


def _picks(*columns: str) -> itemgetter[Any]:
    """What reads these columns of an insert row."""
    return itemgetter(*map(_INSERT_COLUMNS.index, columns))


_KEY = _picks("app_id", "call_id")
_PLACED = _picks("placed_at")
_KEY_ROW = _picks(*_KEY_COLUMNS)
_COUNT_KEY = _picks("app_id", "voice_group", "placed_at")
_CALL_FACT = _picks(*rollups.CALL_COLUMNS)
_ATTEMPTS = 3  # of storing a batch: a partition dropped under it, or a deadlock
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


_Merged = tuple[set[tuple[int, str]], dict[tuple[int, str], str]] | None
_Finish = Callable[[sa.Connection, _Merged], None]


def _outcomes(
    batch: Sequence[tuple[int, Cdr]],
    keys: list[tuple[int, str]],
    first: dict[tuple[int, str], int],
    merged: _Merged,
) -> list[Outcome]:
    """Each pair's outcome, from what ``_store_new`` found (see ``CdrWriter.store``)."""
    if merged is None:
        # The common case (an import of new calls): every row went in as it was.
        return [Outcome.ACCEPTED] * len(batch)
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


def cdr_tuple(app_id: int, cdr: Cdr, now: int) -> tuple[Any, ...]:
    """The insert row (``_INSERT_COLUMNS``) of ``cdr``: slices of the Cdr, once per
    stored row (``tests/unit/test_cdrfields.py`` holds the two orders together)."""
    return (app_id, cdr[0], cdr[16], *_SERVICE_COLUMNS[cdr[2]], *cdr[3:16], now, cdr[17])


def _column_types(engine: Engine, table: sa.Table, names: Sequence[str]) -> list[str]:
    """``integer``, ``varchar``, ``bigint``, ... of these columns, as psycopg names types."""
    dialect = engine.dialect
    return [table.c[n].type.compile(dialect=dialect).split("(")[0].lower() for n in names]
