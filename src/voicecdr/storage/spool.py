"""What ``voicecdr watch`` keeps beside the CDRs, written in the same transaction as the
records it describes (:meth:`CdrWriter.store`'s ``progress``), so a crash at any moment
leaves the three in agreement:

- ``spool_files``: each followed file, by (device, inode), with a fingerprint of its
  first bytes and the byte offset (and line) up to which it has been consumed;
- ``spool_rejects``: every record that could not be stored, its bytes and the reason, for
  the operator to see and replay (``voicecdr cdrs rejects`` / ``cdrs replay``);
- ``source_counts``: per source and UTC hour of receipt (in shards, summed when read),
  records received, stored, duplicate and rejected: received == stored + duplicate +
  rejected, always. Every way
  CDRs come in writes these counts, each batch's in the transaction that stores it:
  ``watch`` with its :class:`Progress`, the API, ``cdrs import`` and ``demo`` with
  :class:`Arrivals` (names in docs/watch.md#the-sources-report).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import schema
from .database import Database
from .engine import translated
from .writes import Outcome

HOUR = 3600
# Rows a source's hour is counted in, one per writing thread's shard, summed when read:
# with one row, every API request's transaction (all apps') would wait on its lock to commit.
COUNT_SHARDS = 16


@dataclass(frozen=True, slots=True)
class FileMark:
    """How far one followed file has been consumed. ``fingerprint`` is the SHA-256 (hex)
    of its first ``fingerprint_len`` bytes, so a new file on a reused inode is told apart."""

    device: int
    inode: int
    source: str
    path: str
    fingerprint: str
    fingerprint_len: int
    offset: int  # bytes consumed (the end of the last complete line stored)
    line: int  # lines (or, for one-document files, records) consumed
    done: bool  # a one-document file read to its end


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that was not stored. ``id`` is set for one already kept (a replay)."""

    source: str
    format: str
    file: str
    line: int | None
    call_id: str | None
    reason: str
    raw: bytes
    hour: int
    id: int | None = None


@dataclass(slots=True)
class Progress:
    """What a follower writes with one batch of records: ``received`` records read from
    ``source`` at ``now`` (counted in its UTC hour), the ``rejects`` found before storing,
    and the file's new ``mark``.
    ``conflict(i)`` is the Reject of the batch's pair ``i`` if storing it is a conflict.
    For a replay, ``replays[i]`` is the kept Reject that pair ``i`` replays (and
    ``received`` is 0: those records were counted when they first came)."""

    source: str
    now: int
    received: int
    rejects: list[Reject]
    conflict: Callable[[int], Reject]
    mark: FileMark | None = None
    replays: Sequence[Reject] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Arrivals:
    """What a source keeping no rejects here (the API, ``cdrs import``) writes with one
    batch: its records came from ``source``, and ``rejected`` more of that source's were
    refused before storing (since its last batch). Received is counted as the batch's
    records plus those, so each transaction's counts balance by construction."""

    source: str
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class SourceHour:
    source: str
    hour: int
    received: int
    stored: int
    duplicate: int
    rejected: int


def write(conn: sa.Connection, dialect: str, progress: Progress, outcomes: list[Outcome]) -> None:
    """Write ``progress`` in the transaction that stored its batch with ``outcomes``."""
    tally: Counter[tuple[str, int, str]] = Counter()
    rejects = list(progress.rejects)
    now = progress.now
    hour = hour_of(now)
    if progress.received:
        tally[progress.source, hour, "received"] += progress.received
    for i, outcome in enumerate(outcomes):
        if outcome is Outcome.CONFLICT:
            rejects.append(progress.conflict(i))
            continue
        kind = "stored" if outcome is Outcome.ACCEPTED else "duplicate"
        if progress.replays:  # a kept reject now stored: it leaves the rejects
            replayed = progress.replays[i]
            conn.execute(sa.delete(_R).where(_R.c.id == replayed.id))
            tally[replayed.source, replayed.hour, "rejected"] -= 1
            tally[replayed.source, replayed.hour, kind] += 1
        else:
            tally[progress.source, hour, kind] += 1
    new = [r for r in rejects if r.id is None]
    for r in new:
        tally[r.source, r.hour, "rejected"] += 1
    if new:
        conn.execute(sa.insert(_R), [_reject_row(r, now) for r in new])
    for r in rejects:
        if r.id is not None:
            conn.execute(sa.update(_R).where(_R.c.id == r.id).values(reason=r.reason))
    hours: dict[tuple[str, int], dict[str, int]] = {}
    for (source, at, kind), n in tally.items():
        hours.setdefault((source, at), dict.fromkeys(_KINDS, 0))[kind] += n
    _add_counts(conn, dialect, hours)
    if progress.mark is not None:
        _upsert_mark(conn, dialect, progress.mark, now)


def count(
    conn: sa.Connection, dialect: str, arrivals: Arrivals, outcomes: list[Outcome], now: int
) -> None:
    """Count a batch of ``arrivals`` with its ``outcomes`` (a conflict is rejected) in
    the transaction that stored it: one upsert, whatever the batch's size."""
    stored = outcomes.count(Outcome.ACCEPTED)  # in C: no per-record Python
    duplicate = outcomes.count(Outcome.DUPLICATE)
    rejected = arrivals.rejected + len(outcomes) - stored - duplicate
    values = {
        "received": arrivals.rejected + len(outcomes),
        "stored": stored,
        "duplicate": duplicate,
        "rejected": rejected,
    }
    _add_counts(conn, dialect, {(arrivals.source, hour_of(now)): values})


class SpoolStore:
    """Reads what :func:`write` keeps, for the follower and the operator's commands."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def mark(self, device: int, inode: int) -> FileMark | None:
        """The position of the file with this device and inode, if it was followed."""
        found = self._marks(_F.device == device, _F.inode == inode)
        return found[0] if found else None

    def marks_at(self, source: str, path: str) -> list[FileMark]:
        """The files of ``source`` last seen at ``path`` (one, and any rotated away)."""
        return self._marks(_F.source == source, _F.path == path)

    def _marks(self, *where: sa.ColumnElement[bool]) -> list[FileMark]:
        f = _F
        columns = (f.device, f.inode, f.source, f.path, f.fingerprint, f.fingerprint_len)
        query = sa.select(*columns, f.byte_offset, f.line, f.done).where(*where)
        with translated("read file positions"), self._db.reader.connect() as conn:
            return [FileMark(*r[:8], bool(r[8])) for r in conn.execute(query)]

    def rejects(
        self,
        *,
        source: str | None = None,
        ids: Sequence[int] = (),
        after: int = 0,
        limit: int | None = None,
    ) -> list[Reject]:
        """Kept rejects with ids above ``after``, oldest first; of one source, or these
        ids, if asked."""
        c = _R.c
        query = (
            sa.select(c.source, c.format, c.file, c.line, c.call_id, c.reason, c.raw, c.hour, c.id)
            .where(c.id > after)
            .order_by(c.id)
        )
        if source is not None:
            query = query.where(c.source == source)
        if ids:
            query = query.where(c.id.in_(list(ids)))
        if limit is not None:
            query = query.limit(limit)
        with translated("read rejects"), self._db.reader.connect() as conn:
            return [Reject(*r[:6], bytes(r[6]), *r[7:]) for r in conn.execute(query)]

    def counts(
        self, start: int | None = None, end: int | None = None, source: str | None = None
    ) -> list[SourceHour]:
        """The hours from ``start`` to ``end`` (epoch seconds, inclusive), by source, hour;
        of one source, if asked."""
        c = schema.source_counts.c
        sums = [sa.func.sum(getattr(c, k)) for k in _KINDS]
        query = (
            sa.select(c.source, c.hour, *sums).group_by(c.source, c.hour).order_by(c.source, c.hour)
        )
        if source is not None:
            query = query.where(c.source == source)
        if start is not None:
            query = query.where(c.hour >= start - start % HOUR)
        if end is not None:
            query = query.where(c.hour <= end)
        with translated("read source counts"), self._db.reader.connect() as conn:
            return [SourceHour(r[0], r[1], *map(int, r[2:])) for r in conn.execute(query)]


_R = schema.spool_rejects
_F = schema.spool_files.c
_KINDS = ("received", "stored", "duplicate", "rejected")


def hour_of(now: int) -> int:
    """The start of the UTC hour ``now`` is in: what ``source_counts`` counts by."""
    return now - now % HOUR


def _reject_row(r: Reject, now: int) -> dict[str, Any]:
    return {
        "source": r.source,
        "format": r.format,
        "file": r.file,
        "line": r.line,
        "call_id": r.call_id,
        "reason": r.reason,
        "raw": r.raw,
        "hour": r.hour,
        "created_at": now,
    }


def _insert(dialect: str, table: sa.Table) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def _add_counts(
    conn: sa.Connection, dialect: str, hours: dict[tuple[str, int], dict[str, int]]
) -> None:
    """Add each (source, hour)'s counts to its row of this thread's shard."""
    shard = threading.get_native_id() % COUNT_SHARDS
    # In key order, so concurrent writers lock the rows in one order.
    rows = [(*key, shard, *(values[k] for k in _KINDS)) for key, values in sorted(hours.items())]
    if rows:
        conn.exec_driver_sql(_SQLITE_COUNTS if dialect == "sqlite" else _PG_COUNTS, rows)


# Plain SQL run by the driver: this runs in every ingest transaction, and building and
# compiling the same upsert in SQLAlchemy each time costs more than the database's work.
_COUNTS = (
    f"INSERT INTO source_counts (source, hour, shard, {', '.join(_KINDS)}) VALUES ({{}}) "
    "ON CONFLICT (source, hour, shard) DO UPDATE SET "
    + ", ".join(f"{k} = source_counts.{k} + excluded.{k}" for k in _KINDS)
)
_SQLITE_COUNTS = _COUNTS.format(", ".join("?" * 7))
_PG_COUNTS = _COUNTS.format(", ".join(["%s"] * 7))


def _upsert_mark(conn: sa.Connection, dialect: str, mark: FileMark, now: int) -> None:
    values = {
        "device": mark.device,
        "inode": mark.inode,
        "source": mark.source,
        "path": mark.path,
        "fingerprint": mark.fingerprint,
        "fingerprint_len": mark.fingerprint_len,
        "byte_offset": mark.offset,
        "line": mark.line,
        "done": mark.done,
        "updated_at": now,
    }
    insert = _insert(dialect, schema.spool_files).values(values)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["device", "inode"],
            set_={k: insert.excluded[k] for k in values if k not in ("device", "inode")},
        )
    )
