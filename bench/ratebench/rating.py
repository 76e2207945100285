"""Rating throughput: ``Rater(db).drain()`` against the raw UPDATE (+ receipt INSERT).

The product run claims each batch (``SELECT .. FOR UPDATE SKIP LOCKED`` on PostgreSQL),
prices it with the plan, makes a receipt row per CDR when the app has a callback URL
(what its body is made of; the sender renders it), and writes both with the driver's bulk
paths (SQLite ``executemany``; PostgreSQL one ``UPDATE .. FROM unnest(..)`` and a COPY of
the receipts) in one transaction per batch.

The baseline writes the same outcome with the raw driver and nothing else: every charge
and receipt row (webhook id included) is computed before the clock starts (with the
product's own ``price_batch``), then the same UPDATE and INSERT are sent in transactions of the same
batch size under the same durability settings (SQLite: WAL, ``synchronous=FULL``, foreign
keys on, as the product's writer; PostgreSQL: the same server). On PostgreSQL two plain-SQL
ways are timed and the faster is the baseline: ``executemany`` (psycopg pipelines it) and
COPY into a temporary table followed by one ``UPDATE .. FROM`` and a COPY of the receipts.
Each UPDATE names the CDR's app beside its id, as the product's do, so that Citus routes it
to the one node holding the app (without it, every row's UPDATE went to every shard).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from querybench.databases import Database, SqliteDatabase
from voicecdr import storage
from voicecdr.config import Settings
from voicecdr.models import CostStatus
from voicecdr.workers.rater import Rater, price_batch

BATCH_SIZE: int = Settings.model_fields["rater_batch_size"].default
_FINAL = int(CostStatus.FINAL)
_UPDATE_SET = (
    f"cost_status = {_FINAL}, cycle = {{p}}, size = {{p}}, unit_price_nanos = {{p}}, "
    "basic_price_nanos = {p}, cost_nanos = {p}, rate_plan_id = {p}, rated_at = {p}, "
    "rate_prefix = {p}, pending_reason = NULL"
)
# The receipt row as the rater writes it (what its body is made of; the sender renders it).
_RECEIPT_COLUMNS = storage.RECEIPT_COLUMNS


@dataclass(frozen=True, slots=True)
class Timed:
    method: str
    cdrs: int
    receipts: int
    seconds: float
    cpu_seconds: float | None = None  # of this process (the product's run only)

    @property
    def rate(self) -> float:
        return self.cdrs / self.seconds


@dataclass(frozen=True, slots=True)
class Work:
    """The outcome the rater must reach, precomputed: update and receipt rows in id order."""

    # cycle, size, unit, basic, cost, plan_id, now, prefix, id, app_id
    updates: list[tuple[Any, ...]]
    receipts: list[tuple[Any, ...]]  # the receipt columns above, app_id first


def counts(database: Database) -> tuple[int, int, int]:
    """(CDRs, final CDRs, receipts) as stored."""
    with contextlib.closing(database.connect()) as conn:
        row = conn.execute(
            f"SELECT (SELECT count(*) FROM cdrs), "
            f"(SELECT count(*) FROM cdrs WHERE cost_status = {_FINAL}), "
            "(SELECT count(*) FROM receipts)"
        ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def verify(database: Database, method: str, *, cdrs: int, receipts: int) -> None:
    found = counts(database)
    if found != (cdrs, cdrs, receipts):
        raise RuntimeError(
            f"{database.name} {method}: expected {cdrs} CDRs all final and {receipts} "
            f"receipts, found (CDRs, final, receipts) = {found}"
        )


def product(database: Database) -> Timed:
    """``Rater(db).drain()`` with the default batch size, timed end to end."""
    db = storage.Database(database.url)
    try:
        rater = Rater(db, batch_size=BATCH_SIZE)
        started, cpu_started = time.perf_counter(), time.process_time()
        priced, unpriced = rater.drain()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    finally:
        db.close()
    if unpriced:
        raise RuntimeError(f"{unpriced} CDRs found no rate in the demo plan")
    _, _, receipts = counts(database)
    return Timed("Rater.drain", priced, receipts, seconds, cpu_seconds)


def precompute(database: Database, now: int) -> Work:
    """What the rater will write, computed by the product's own pricing loop, untimed:
    ``price_batch`` over each batch, so the baseline writes the same rows (charges, receipt
    rows and ordered webhook ids alike)."""
    db = storage.Database(database.url)
    try:
        plans, forms = Rater(db)._current()
    finally:
        db.close()
    with contextlib.closing(database.connect()) as conn:
        rows = conn.execute(
            f"SELECT {storage.UNRATED_COLUMNS} FROM cdrs WHERE cost_status = 0 "
            "AND pending_reason IS NULL ORDER BY id"
        ).fetchall()
    app_of = {row[0]: row[1] for row in rows}  # CDR id -> app id (UNRATED_COLUMNS' order)
    updates: list[tuple[Any, ...]] = []
    receipts: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), BATCH_SIZE):
        batch = price_batch(rows[start : start + BATCH_SIZE], plans, forms, now)
        if batch.unpriced:
            cdr_id = batch.unpriced[0][1]
            raise RuntimeError(f"CDR {cdr_id} found no rate: {batch.unpriced[0][0]}")
        # All but placed_at, and the app.
        updates += ((*priced[:9], app_of[priced[8]]) for priced in batch.priced)
        receipts += batch.receipts
    return Work(updates, receipts)


def _batches(work: Work, size: int) -> list[tuple[Sequence[Any], Sequence[Any]]]:
    """Split like the rater: each batch's receipts are those of its CDRs."""
    out: list[tuple[Sequence[Any], Sequence[Any]]] = []
    r = 0
    for start in range(0, len(work.updates), size):
        updates = work.updates[start : start + size]
        last_id = updates[-1][-2]
        end = r
        while end < len(work.receipts) and work.receipts[end][1] <= last_id:
            end += 1
        out.append((updates, work.receipts[r:end]))
        r = end
    return out


def raw_sqlite(database: Database, work: Work) -> Timed:
    update = (
        f"UPDATE cdrs SET {_UPDATE_SET.format(p='?')} "
        "WHERE id = ? AND app_id = ? AND cost_status = 0"
    )
    marks = ", ".join("?" * len(_RECEIPT_COLUMNS.split(",")))
    insert = f"INSERT INTO receipts ({_RECEIPT_COLUMNS}) VALUES ({marks})"
    batches = _batches(work, BATCH_SIZE)
    assert isinstance(database, SqliteDatabase)
    with contextlib.closing(database.connect()) as conn:
        # The product writer's settings (storage/engine.py).
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        for updates, receipts in batches:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(update, updates)
            if receipts:
                conn.executemany(insert, receipts)
            conn.execute("COMMIT")
        seconds = time.perf_counter() - started
    return Timed("sqlite3 executemany", len(work.updates), len(work.receipts), seconds)


def raw_pg_executemany(database: Database, work: Work) -> Timed:
    update = (
        f"UPDATE cdrs SET {_UPDATE_SET.format(p='%s')} "
        "WHERE id = %s AND app_id = %s AND cost_status = 0"
    )
    marks = ", ".join(["%s"] * len(_RECEIPT_COLUMNS.split(",")))
    insert = f"INSERT INTO receipts ({_RECEIPT_COLUMNS}) VALUES ({marks})"
    batches = _batches(work, BATCH_SIZE)
    with contextlib.closing(database.connect()) as conn:
        started = time.perf_counter()
        for updates, receipts in batches:
            with conn.transaction(), conn.cursor() as cur:  # type: ignore[attr-defined]
                cur.executemany(update, updates)
                if receipts:
                    cur.executemany(insert, receipts)
        seconds = time.perf_counter() - started
    return Timed("psycopg executemany", len(work.updates), len(work.receipts), seconds)


def raw_pg_copy(database: Database, work: Work) -> Timed:
    batches = _batches(work, BATCH_SIZE)
    update = (
        f"UPDATE cdrs SET cost_status = {_FINAL}, cycle = r.cycle, size = r.size, "
        "unit_price_nanos = r.unit, basic_price_nanos = r.basic, cost_nanos = r.cost, "
        "rate_plan_id = r.plan_id, rated_at = r.now, rate_prefix = r.prefix, "
        "pending_reason = NULL "
        "FROM rated r WHERE cdrs.id = r.id AND cdrs.app_id = r.app_id AND cdrs.cost_status = 0"
    )
    with contextlib.closing(database.connect()) as conn:
        started = time.perf_counter()
        conn.execute(
            "CREATE TEMP TABLE rated (cycle int, size int, unit bigint, basic bigint, "
            "cost bigint, plan_id int, now bigint, prefix text, id bigint, app_id int) "
            "ON COMMIT DELETE ROWS"
        )
        for updates, receipts in batches:
            with conn.transaction(), conn.cursor() as cur:  # type: ignore[attr-defined]
                with cur.copy("COPY rated FROM STDIN") as copy:
                    for row in updates:
                        copy.write_row(row)
                cur.execute(update)
                if receipts:
                    with cur.copy(f"COPY receipts ({_RECEIPT_COLUMNS}) FROM STDIN") as copy:
                        for row in receipts:
                            copy.write_row(row)
        seconds = time.perf_counter() - started
    return Timed("psycopg COPY+UPDATE FROM", len(work.updates), len(work.receipts), seconds)


RawMethod = Callable[[Database, Work], Timed]


def raw_methods(database_name: str) -> list[RawMethod]:
    if database_name == "sqlite":
        return [raw_sqlite]
    return [raw_pg_executemany, raw_pg_copy]
