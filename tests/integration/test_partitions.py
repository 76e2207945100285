"""Day partitions (PostgreSQL), idempotency across them, and retention on both databases.

Every check that counts compares with what was stored, recounted from the rows: the
bucket counts, the query API's totals and pages, and cdr_keys against cdrs.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa

from tests.support.data import cdr, make_app, read_cdrs
from voicecdr.errors import StorageError
from voicecdr.models import Cdr, Language, ReceiptStatus, Service, VoiceGroup
from voicecdr.rating import Charge
from voicecdr.storage import (
    CdrWriter,
    Database,
    Outcome,
    counts,
    migrate,
    pages,
    partitions,
    retention,
)
from voicecdr.storage.outbox import NewReceipt, insert_receipts
from voicecdr.workers import runner
from voicecdr.workers.health import WorkerHealth

DAY = partitions.DAY
CHARGE = Charge(20, 1, 50_000_000, 5_000_000, 50_000_000)
D0 = 1_795_651_200  # 2026-11-26T00:00:00Z, a UTC midnight


def _call(call_id: str, placed: int, service: Service = Service.GROUP_CALL) -> Cdr:
    # Different times give different content: the hash covers the time.
    base = cdr(call_id, connected=False)
    return base._replace(time=placed, service=service, content_hash=f"{call_id}@{placed}")


def _recount(db: Database) -> tuple[set[tuple[int, ...]], set[tuple[int, ...]]]:
    """(the bucket counts kept, the bucket counts recounted from the rows)."""
    recount = (
        f"SELECT app_id, voice_group, placed_at - placed_at % {counts.BUCKET_SECONDS}, count(*)"
        " FROM cdrs GROUP BY 1, 2, 3"
    )
    with db.reader.connect() as conn:
        kept = {tuple(r) for r in conn.exec_driver_sql("SELECT * FROM cdr_counts")}
        return kept, {tuple(r) for r in conn.execute(sa.text(recount))}


def _placed(db: Database) -> list[int]:
    with db.reader.connect() as conn:
        return sorted(r[0] for r in conn.exec_driver_sql("SELECT placed_at FROM cdrs"))


def _partition_names(db: Database) -> list[str]:
    with db.reader.connect() as conn:
        return [p.name for p in partitions.attached(conn)]


def _total(db: Database, app_id: int, start: int, end: int) -> int:
    return sum(
        read_cdrs(db, app_id, g, start, end, messageid=None, offset=0, limit=1).total
        for g in VoiceGroup
    )


def _counted(db: Database, app_id: int, start: int, end: int) -> int:
    """The exact total as the page read counts it (bucket counts, head and tail rows), by
    its counts statement alone: that needs nothing newer than cdr_counts (0003), where
    reading a page needs the stamp's revision (0007)."""
    window = counts.split(start, end)
    params = {"app": app_id, "start": start, "end": end, "lo": window.lo, "hi": window.hi}
    with db.reader.connect() as conn:
        return sum(
            sum(
                conn.execute(
                    sa.text(pages.SQL["counts"]), {**params, "grp": int(g), "cut": window.lo}
                ).one()
            )
            for g in VoiceGroup
        )


@pytest.fixture
def spread(db: Database) -> tuple[Database, int, list[int]]:
    """One app's calls over ten days (every 7 hours and a bit, both voice groups)."""
    app_id = make_app(db).app.id
    times = [D0 - 10 * DAY + i * 25_301 for i in range(34)]
    services = [Service.GROUP_CALL, Service.VERIFICATION, Service.NOTIFICATION]
    calls = [(app_id, _call(f"c{i}", t, services[i % 3])) for i, t in enumerate(times)]
    assert set(CdrWriter(db).store(calls, now=1)) == {Outcome.ACCEPTED}
    return db, app_id, times


def test_rows_survive_the_partitioning_migration_both_ways(
    spread: tuple[Database, int, list[int]],
) -> None:
    db, app_id, times = spread
    with db.reader.connect() as conn:
        ids = sorted(r[0] for r in conn.exec_driver_sql("SELECT id FROM cdrs"))
    for revision in ("0003", "head"):
        if revision == "head":
            migrate.upgrade(db)
        else:
            migrate.downgrade(db, revision)
        if db.partitions is not None:
            db.partitions.forget()
        assert _placed(db) == sorted(times)
        kept, recount = _recount(db)
        assert kept == recount
        assert _counted(db, app_id, D0 - 10 * DAY, D0) == len(times)
    assert _total(db, app_id, D0 - 10 * DAY, D0) == len(times)
    page = read_cdrs(
        db, app_id, VoiceGroup.GROUP_CALL, D0 - 10 * DAY, D0, messageid=None, offset=3, limit=4
    )
    expected = sorted(t for i, t in enumerate(times) if i % 3 == 0)
    assert [r.time for r in page.rows] == expected[3:7]
    # The id sequence carries on past the moved rows, and keys still guard them.
    assert CdrWriter(db).store([(app_id, _call("c0", times[0]))], now=1) == [Outcome.DUPLICATE]
    CdrWriter(db).store([(app_id, _call("after", D0))], now=1)
    with db.reader.connect() as conn:
        new_id = conn.exec_driver_sql("SELECT id FROM cdrs WHERE call_id = 'after'").scalar_one()
        assert new_id > max(ids)
        if db.dialect == "postgresql":
            kind = conn.exec_driver_sql("SELECT relkind FROM pg_class WHERE relname = 'cdrs'")
            assert kind.scalar_one() == "p"
            keys = conn.exec_driver_sql("SELECT count(*) FROM cdr_keys").scalar_one()
            assert keys == len(times) + 1


def test_same_call_on_another_day_is_a_conflict_not_a_second_row(db: Database) -> None:
    app_id = make_app(db).app.id
    first = _call("x", D0 - 30 * DAY)
    moved = _call("x", D0 + 2 * DAY)  # same call_id, another day, another partition
    assert CdrWriter(db).store([(app_id, first)], now=1) == [Outcome.ACCEPTED]
    assert CdrWriter(db).store([(app_id, moved)], now=1) == [Outcome.CONFLICT]
    assert CdrWriter(db).store(
        [(app_id, first), (app_id, moved), (app_id, _call("y", D0))], now=1
    ) == [
        Outcome.DUPLICATE,
        Outcome.CONFLICT,
        Outcome.ACCEPTED,
    ]
    # Within one batch too: the first occurrence wins, the other day's copy conflicts.
    batch = [(app_id, _call("z", D0 - DAY)), (app_id, _call("z", D0 + DAY))]
    assert CdrWriter(db).store(batch, now=1) == [Outcome.ACCEPTED, Outcome.CONFLICT]
    assert _placed(db) == sorted([D0 - 30 * DAY, D0, D0 - DAY])
    kept, recount = _recount(db)
    assert kept == recount


def test_old_and_future_days_are_accepted(db: Database) -> None:
    app_id = make_app(db).app.id
    times = [D0 - 400 * DAY + 5, D0 - 3 * DAY, D0 + 45 * DAY + 86_399]
    outcomes = CdrWriter(db).store([(app_id, _call(f"t{t}", t)) for t in times], now=1)
    assert outcomes == [Outcome.ACCEPTED] * 3
    for t in times:
        assert _total(db, app_id, t, t) == 1
    if db.dialect == "postgresql":
        names = _partition_names(db)
        assert {partitions.partition_name(partitions.day_of(t)) for t in times} <= set(names)
        assert "cdrs_p20251022" in names
        assert "cdrs_p20270110" in names


@pytest.mark.postgres
def test_partitions_are_made_ahead(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        assert db.partitions is not None
        made = db.partitions.ahead(D0 + 3600, 7)
        assert made == [partitions.partition_name(D0 + i * DAY) for i in range(8)]
        assert db.partitions.ahead(D0 + 3600, 7) == []  # seen: nothing to do
        other = Database(pg_url)  # another process: finds them made
        assert other.partitions is not None
        assert other.partitions.ahead(D0, 7) == []
        other.close()
    finally:
        db.close()


@pytest.mark.postgres
def test_concurrent_writers_make_the_same_partition_once(pg_url: str) -> None:
    # Each writer has its own Database, as separate processes do: none has seen the day.
    dbs = [Database(pg_url) for _ in range(6)]
    try:
        app_id = make_app(dbs[0]).app.id
        day = D0 + 90 * DAY
        start = threading.Barrier(len(dbs))
        results: dict[int, list[Outcome]] = {}

        def write(k: int) -> None:
            # Overlapping batches: every call is offered by two writers.
            mine = [
                (app_id, _call(f"c{i}", day + i)) for i in range(300) if i % 6 in (k, (k + 1) % 6)
            ]
            start.wait()
            results[k] = CdrWriter(dbs[k]).store(mine, now=1)

        threads = [threading.Thread(target=write, args=(k,)) for k in range(len(dbs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outcomes = [o for k in sorted(results) for o in results[k]]
        assert len(outcomes) == 600
        assert outcomes.count(Outcome.ACCEPTED) == 300
        assert outcomes.count(Outcome.DUPLICATE) == 300
        assert _partition_names(dbs[0]).count(partitions.partition_name(day)) == 1
        assert _total(dbs[0], app_id, day, day + DAY - 1) == 300
        kept, recount = _recount(dbs[0])
        assert kept == recount
    finally:
        for s in dbs:
            s.close()


def _add_receipts(db: Database, app_id: int) -> dict[int, int]:
    """A receipt per CDR, every other one delivered; returns cdr id -> placed_at."""
    with db.writer.begin() as conn:
        rows = dict(conn.exec_driver_sql("SELECT id, placed_at FROM cdrs").all())
        insert_receipts(
            conn,
            [
                NewReceipt(app_id, i, p, f"msg_{i}", CHARGE, "UTC", Language.EN)
                for i, p in rows.items()
            ],
            now=1,
        )
        conn.execute(
            sa.text("UPDATE receipts SET status = :done WHERE cdr_id % 2 = 0"),
            {"done": int(ReceiptStatus.DELIVERED)},
        )
    return rows


def test_prune_removes_old_days_with_their_receipts_and_counts(
    spread: tuple[Database, int, list[int]],
) -> None:
    db, app_id, times = spread
    placed_of = _add_receipts(db, app_id)
    cutoff = D0 - 4 * DAY + 7_000  # mid-day, mid-bucket
    # PostgreSQL drops whole days; SQLite cuts at the bucket.
    cut = partitions.day_of(cutoff) if db.dialect == "postgresql" else cutoff - 7_000 % 300
    gone = [i for i, p in placed_of.items() if p < cut]
    pending = [i for i in gone if i % 2]

    dry = retention.prune(db, cutoff, dry_run=True)
    assert (dry.cutoff, dry.cdrs, dry.receipts, dry.pending_receipts) == (
        cut,
        len(gone),
        len(gone),
        len(pending),
    )
    assert _placed(db) == sorted(times)  # a dry run removes nothing

    report = retention.prune(db, cutoff)
    assert (report.cutoff, report.cdrs, report.receipts, report.pending_receipts) == (
        cut,
        len(gone),
        len(gone),
        len(pending),
    )
    assert report.partitions == dry.partitions
    if db.dialect == "postgresql":
        assert report.partitions == [
            partitions.partition_name(d) for d in sorted(partitions.days_of(times)) if d < cut
        ]
        assert not set(report.partitions) & set(_partition_names(db))
    assert _placed(db) == sorted(t for t in times if t >= cut)
    kept, recount = _recount(db)
    assert kept == recount
    assert _total(db, app_id, D0 - 10 * DAY, D0) == len([t for t in times if t >= cut])
    assert _total(db, app_id, cut - 3600, cut + 3600) == len(
        [t for t in times if cut <= t <= cut + 3600]
    )
    with db.reader.connect() as conn:
        left = {r[0] for r in conn.exec_driver_sql("SELECT cdr_id FROM receipts")}
        assert left == {i for i in placed_of if i not in gone}
        if db.dialect == "postgresql":
            keys = conn.exec_driver_sql("SELECT count(*) FROM cdr_keys").scalar_one()
            assert keys == len(left)
    assert retention.prune(db, cutoff).cdrs == 0  # nothing left to remove


def test_late_records_for_a_pruned_day_are_accepted_again(
    spread: tuple[Database, int, list[int]], database_url: str
) -> None:
    db, app_id, times = spread
    elsewhere = Database(database_url)  # another process, which saw the old days' partitions
    try:
        CdrWriter(elsewhere).store([(app_id, _call("seen", times[0]))], now=1)
        retention.prune(db, D0 - 5 * DAY)
        late = [(app_id, _call("late", times[1])), (app_id, _call("c0", times[0]))]
        assert CdrWriter(elsewhere).store(late, now=1) == [Outcome.ACCEPTED, Outcome.ACCEPTED]
        assert _total(db, app_id, times[0], times[1]) == 2
        kept, recount = _recount(db)
        assert kept == recount
    finally:
        elsewhere.close()


@pytest.fixture
def many_buckets(db: Database) -> tuple[Database, int]:
    app_id = make_app(db).app.id
    calls = [(app_id, _call(f"b{i}", D0 - DAY + i * 37)) for i in range(2400)]
    CdrWriter(db).store(calls, now=1)
    return db, app_id


def test_prune_in_batches_keeps_counts_exact(
    many_buckets: tuple[Database, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, app_id = many_buckets
    monkeypatch.setattr(retention, "BATCH", 100)  # SQLite: many transactions
    cutoff = D0 - DAY + 1200 * 37 + 11
    report = retention.prune(db, cutoff)
    cut = report.cutoff
    assert report.cdrs == len([i for i in range(2400) if D0 - DAY + i * 37 < cut])
    kept, recount = _recount(db)
    assert kept == recount
    assert _total(db, app_id, D0 - 2 * DAY, D0 + DAY) == 2400 - report.cdrs


@pytest.mark.postgres
def test_workers_make_the_coming_days_partitions(pg_url: str) -> None:
    db = Database(pg_url)
    health = WorkerHealth()

    async def run() -> None:
        stopping = asyncio.Event()
        heart = health.heartbeat("partitions")
        made = runner.maintenance_loop(db, 3, stopping, lambda: D0 + 60, heart)
        task = asyncio.create_task(made)
        for _ in range(200):
            if len(_partition_names(db)) == 4:
                break
            await asyncio.sleep(0.05)
        stopping.set()
        await task

    try:
        asyncio.run(run())
        assert _partition_names(db) == [partitions.partition_name(D0 + i * DAY) for i in range(4)]
        assert health.failing() == {}
    finally:
        db.close()


@pytest.mark.postgres
def test_prune_gives_up_on_a_busy_table_and_removes_nothing(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(pg_url)
    app_id = make_app(db).app.id
    CdrWriter(db).store([(app_id, _call("old", D0 - 40 * DAY))], now=1)
    monkeypatch.setattr(retention, "LOCK_TIMEOUT", "50ms")
    naps: list[float] = []
    reader = Database(pg_url)
    try:
        # A long read of cdrs (an export, say) holds a lock the DROP must wait for.
        with reader.reader.begin() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM cdrs").scalar_one()
            with pytest.raises(StorageError, match="stayed busy"):
                retention.prune(db, D0, sleep=naps.append)
        assert naps == [1, 2, 3, 4]
        assert _placed(db) == [D0 - 40 * DAY]  # rolled back whole
        assert retention.prune(db, D0).cdrs == 1  # and done once the read is over
    finally:
        reader.close()
        db.close()
