"""Replaying receipts by app and time, across every state, with a per-app index that holds
only settled receipts (schema 0006): the rater's new receipts never enter it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.integration.test_rating_store import PLAN, load
from tests.support.data import canonical, make_app
from voicecdr.models import ReceiptStatus
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import Database, Outbox, RatingStore
from voicecdr.workers.rater import Rater


@pytest.fixture
def database_url(any_database_url: str) -> str:
    """SQLite, PostgreSQL and Citus: these tests hold on every database."""
    return any_database_url


def _receipts(db: Database) -> dict[int, tuple[int, int, int, int]]:
    """id -> (app_id, created_at, status, attempts)."""
    with db.reader.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, app_id, created_at, status, attempts FROM receipts")
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def _rated(db: Database, now: int, *appkeys: str) -> None:
    """Four CDRs per app, priced at ``now``: their receipts are created at ``now``."""
    load(
        db,
        [canonical(f"{k}{now}{i}", appkey=k, second=10 + i) for k in appkeys for i in range(4)],
    )
    assert Rater(db, clock=lambda: float(now)).drain() == (4 * len(appkeys), 0)


def _settle(db: Database, now: int) -> None:
    """Of each app's receipts created at ``now``: one delivered, one dead, one failed
    (pending, to be retried), one never tried."""
    outbox = Outbox(db)
    by_app: dict[int, list[int]] = {}
    for rid, (app_id, created, _, _) in sorted(_receipts(db).items()):
        if created == now:
            by_app.setdefault(app_id, []).append(rid)
    for delivered, dead, failed, _ in by_app.values():
        outbox.delivered(delivered, status=200, now=now)
        outbox.failed(dead, status=500, error="gone", retry_at=None)
        outbox.failed(failed, status=503, error="busy", retry_at=now + 60.0)


def test_replay_by_app_and_time_reaches_pending_and_settled_receipts(db: Database) -> None:
    apps = {}
    for key in ("a", "b"):
        apps[key] = make_app(db, key, callback_url="https://hooks.example.com/dr").app
        RatingStore(db).import_plan(apps[key].id, parse_plan_csv(PLAN), source="p", now=1)
    for now in (1_000, 2_000):
        _rated(db, now, "a", "b")
        _settle(db, now)
    before = _receipts(db)
    outbox = Outbox(db)

    # App a's receipts made at 2,000: all four states.
    assert outbox.replay(now=5.0, app_id=apps["a"].id, created_from=1_500, created_to=2_500) == 4
    after = _receipts(db)
    replayed = {
        rid for rid, (app_id, created, _, _) in before.items()
        if app_id == apps["a"].id and created == 2_000
    }  # fmt: skip
    assert all(after[rid][2:] == (int(ReceiptStatus.PENDING), 0) for rid in replayed)
    assert {rid: after[rid] for rid in before if rid not in replayed} == {
        rid: row for rid, row in before.items() if rid not in replayed
    }
    # Only the failed ones, then only the dead ones, of app b.
    assert outbox.replay(now=5.0, app_id=apps["b"].id, failed_only=True) == 2
    assert outbox.replay(now=5.0, app_id=apps["b"].id, dead_only=True) == 2
    # Everything of app b: none counted twice.
    assert outbox.replay(now=5.0, app_id=apps["b"].id) == 8
    # Replayed receipts that had failed keep their last error until the next attempt.
    assert outbox.counts() == {"pending": 7, "failed": 7, "delivered": 1, "dead": 1}


def test_the_per_app_index_leaves_pending_receipts_out(db: Database) -> None:
    if db.dialect == "sqlite":
        sql = "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'receipts'"
    else:
        sql = "SELECT indexdef FROM pg_indexes WHERE tablename = 'receipts'"
    with db.reader.connect() as conn:
        per_app = [d for (d,) in conn.execute(sa.text(sql)) if d and "(app_id, created_at)" in d]
    assert len(per_app) == 1
    assert "WHERE" in per_app[0]
    assert "status <> 0" in per_app[0]


def test_each_replay_statement_is_served_by_an_index(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    plans: list[str] = []

    @event.listens_for(db.writer, "before_cursor_execute")
    def _plan(conn: sa.Connection, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("UPDATE receipts"):
            driver = conn.connection.driver_connection
            plan = driver.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
            plans.append(" ".join(step[-1] for step in plan))

    try:
        outbox = Outbox(db)
        outbox.replay(now=1.0, app_id=1, created_from=5, created_to=10)
        outbox.replay(now=1.0, app_id=1)
    finally:
        db.close()
    assert len(plans) == 4
    assert all(plan.startswith("SEARCH receipts USING INDEX") for plan in plans), plans
    assert sum("ix_receipts_app_settled" in plan for plan in plans) == 2
