"""Retention: removing the CDRs placed before a cutoff, with everything that hangs on them.

What goes with a CDR: its ``cdr_keys`` row (PostgreSQL), its share of the bucket counts
(``cdr_counts``) and its receipts, delivered or not. Each is removed in the transaction
that removes the rows, so totals stay exact and nothing points at a CDR that is gone.

- PostgreSQL drops whole day partitions: those that end at or before the cutoff, so the
  effective cutoff is the cutoff's UTC midnight. Dropping a partition is instant whatever
  it holds and leaves no dead rows to vacuum. The partitions are first locked against
  writes (reads go on), so no late record can slip into a day while its keys and counts
  are being removed; the DROP itself then needs ``cdrs`` exclusively, for a moment at the
  end of the transaction, and waits at most ``LOCK_TIMEOUT`` for it (a long query on
  ``cdrs`` would otherwise queue every other query behind the DROP).
- SQLite has no partitions: it deletes the rows in batches of ``BATCH`` (one short write
  transaction each, so ingest goes on between them), cutting at a bucket boundary so
  every bucket is either wholly kept or wholly removed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..errors import StorageError
from . import counts, partitions, rollups
from .database import Database
from .engine import translated

BATCH = 5_000  # SQLite: rows per transaction
LOCK_TIMEOUT = "5s"  # PostgreSQL: longest wait for a lock before trying again
ATTEMPTS = 5
_PLACED = 1 + rollups.CALL_COLUMNS.index("placed_at")  # in a row read by _delete_batch
_LOCK_STATES = frozenset({"55P03", "40P01"})  # lock_not_available, deadlock_detected


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune removed (or, in a dry run, would remove)."""

    cutoff: int  # every CDR placed before this is gone
    dry_run: bool
    cdrs: int = 0
    receipts: int = 0
    pending_receipts: int = 0  # receipts not yet delivered (nor dead) among them
    partitions: list[str] = field(default_factory=list)


def prune(
    db: Database,
    cutoff: int,
    *,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> PruneReport:
    """Remove the CDRs placed before ``cutoff`` (Unix seconds; rounded down to the UTC
    day on PostgreSQL, to the 5-minute bucket on SQLite)."""
    if db.dialect != "postgresql":
        return _prune_sqlite(db, cutoff - cutoff % counts.BUCKET_SECONDS, dry_run)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _prune_postgresql(db, partitions.day_of(cutoff), dry_run)
        except StorageError as exc:
            state = getattr(exc.__cause__, "orig", None)
            if getattr(state, "sqlstate", None) not in _LOCK_STATES:
                raise
            if attempt == ATTEMPTS:
                raise StorageError(
                    f"prune: cdrs stayed busy (locked by other work) over {ATTEMPTS} tries; "
                    "try again later"
                ) from exc
            sleep(attempt)
    raise AssertionError("unreachable")


def _prune_postgresql(db: Database, cut: int, dry_run: bool) -> PruneReport:
    with translated("prune CDRs"), db.writer.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        partitions.lock(conn)
        found = partitions.attached(conn)
        # A partition reaching past the cut (made by hand, wider than a day) stays, and
        # so does everything at or after its start.
        cut = min([cut, *(p.lo for p in found if p.hi > cut)])
        gone = [p for p in found if p.hi <= cut]
        if not gone:
            return PruneReport(cut, dry_run)
        names = ", ".join(p.name for p in gone)
        if not dry_run:
            conn.exec_driver_sql(f"LOCK TABLE {names} IN SHARE MODE")
        params = {"cut": cut}
        receipts_sql = (
            "SELECT count(*), count(*) FILTER (WHERE r.status = 0) FROM receipts r "
            "JOIN cdrs c ON c.app_id = r.app_id AND c.id = r.cdr_id WHERE c.placed_at < :cut"
        )
        if dry_run:
            n = conn.execute(
                sa.text("SELECT count(*) FROM cdrs WHERE placed_at < :cut"), params
            ).scalar_one()
            removed, pending = conn.execute(sa.text(receipts_sql), params).one()
            return PruneReport(cut, True, n, removed, pending, [p.name for p in gone])
        removed, pending = conn.execute(
            sa.text(
                "WITH gone AS (DELETE FROM receipts r USING cdrs c WHERE c.placed_at < :cut "
                "AND c.app_id = r.app_id AND c.id = r.cdr_id RETURNING r.status) "
                "SELECT count(*), count(*) FILTER (WHERE status = 0) FROM gone"
            ),
            params,
        ).one()
        n = conn.execute(
            sa.text(
                "DELETE FROM cdr_keys k USING cdrs c WHERE c.placed_at < :cut "
                "AND k.app_id = c.app_id AND k.call_id = c.call_id"
            ),
            params,
        ).rowcount
        conn.execute(sa.text("DELETE FROM cdr_counts WHERE bucket < :cut"), params)
        rollups.subtract_before(conn, db.dialect, cut, distributed=db.citus)
        conn.exec_driver_sql(f"DROP TABLE {names}")
    if db.partitions is not None:
        db.partitions.forget()  # this process's inserts find out at once
    return PruneReport(cut, False, n, removed, pending, [p.name for p in gone])


def _prune_sqlite(db: Database, cut: int, dry_run: bool) -> PruneReport:
    if dry_run:
        with translated("prune CDRs"), db.reader.connect() as conn:
            n = conn.execute(
                sa.text("SELECT count(*) FROM cdrs WHERE placed_at < :cut"), {"cut": cut}
            ).scalar_one()
            removed, pending = conn.execute(
                sa.text(
                    "SELECT count(*), coalesce(sum(r.status = 0), 0) FROM receipts r "
                    "JOIN cdrs c ON c.id = r.cdr_id WHERE c.placed_at < :cut"
                ),
                {"cut": cut},
            ).one()
        return PruneReport(cut, True, n, removed, pending)
    total = Counter[str]()
    with translated("prune CDRs"), db.reader.connect() as conn:
        groups = conn.exec_driver_sql("SELECT DISTINCT app_id, voice_group FROM cdr_counts").all()
    for app_id, group in groups:
        while True:
            done = _delete_batch(db, app_id, group, cut)
            total.update(done)
            if done["cdrs"] < BATCH:
                break
    return PruneReport(cut, False, total["cdrs"], total["receipts"], total["pending"])


def _delete_batch(db: Database, app_id: int, group: int, cut: int) -> Counter[str]:
    """Delete up to BATCH of one app's CDRs of one voice group placed before ``cut``
    (the query index serves the range), their receipts and their counts."""
    done = Counter[str]()
    with translated("prune CDRs"), db.writer.begin() as conn:
        rows = conn.execute(
            sa.text(
                rollups.stored_facts_sql(
                    "app_id = :app AND voice_group = :grp AND placed_at < :cut "
                    "ORDER BY placed_at LIMIT :n",
                    leading="id",
                )
            ),
            {"app": app_id, "grp": group, "cut": cut, "n": BATCH},
        ).all()
        if not rows:
            return done
        # What the rows added to the rollups goes with them.
        tally = rollups.Tally(rollups.zones(conn, db.dialect, [app_id], distributed=db.citus))
        rollups.tally_rows(tally, (r[1:] for r in rows), -1)
        tally.write(conn, db.dialect)
        for start in range(0, len(rows), 900):  # SQLite's classic bound on parameters
            ids = [r[0] for r in rows[start : start + 900]]
            marks = ", ".join("?" * len(ids))
            removed, pending = conn.exec_driver_sql(
                "SELECT count(*), coalesce(sum(status = 0), 0) FROM receipts "
                f"WHERE cdr_id IN ({marks})",
                tuple(ids),
            ).one()
            conn.exec_driver_sql(f"DELETE FROM receipts WHERE cdr_id IN ({marks})", tuple(ids))
            conn.exec_driver_sql(f"DELETE FROM cdrs WHERE id IN ({marks})", tuple(ids))
            done.update(cdrs=len(ids), receipts=removed, pending=pending)
        # Whole buckets go (the cut is a bucket boundary), possibly over several batches:
        # each batch takes its rows off the counts, so totals are exact in between too.
        taken = Counter(counts.bucket_of(r[_PLACED]) for r in rows)
        conn.exec_driver_sql(
            "UPDATE cdr_counts SET n = n - ? WHERE app_id = ? AND voice_group = ? AND bucket = ?",
            [(n, app_id, group, bucket) for bucket, n in taken.items()],
        )
        conn.exec_driver_sql(
            "DELETE FROM cdr_counts WHERE app_id = ? AND voice_group = ? AND bucket < ? AND n <= 0",
            (app_id, group, cut),
        )
    return done
