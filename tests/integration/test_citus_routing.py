"""On Citus, one app's work goes to the one node holding the app: shown by the plans of
the statements voicecdr itself sends (``auto_explain`` on the coordinator), not by prose."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import psycopg
import pytest
from starlette.testclient import TestClient

from tests.conftest import CitusDatabase
from tests.integration.test_query_api import form, load
from tests.support.citus import CitusCluster
from tests.support.data import canonical, make_app
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.config import Settings
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import Database, Outbox, RatingStore
from voicecdr.workers.rater import Rater

pytestmark = pytest.mark.citus

PLAN = "service,prefix,cycle,unit_price,basic_price\ngroup_call,,20,0.05,0.005\n"
_ENTRY = re.compile(r"LOG:  duration: [\d.]+ ms  plan:\n(.*?)(?=\n\S|\Z)", re.S)


@contextlib.contextmanager
def explained(cluster: CitusCluster, database: CitusDatabase) -> Iterator[list[str]]:
    """The plans of every statement that connections opened inside the block run, as
    auto_explain logs them on the coordinator (the list is filled when the block ends)."""
    settings = (
        ("session_preload_libraries", "auto_explain"),
        ("auto_explain.log_min_duration", "0"),
    )
    with psycopg.connect(database.url, autocommit=True) as conn:
        for key, value in settings:
            conn.execute(f"ALTER DATABASE \"{database.name}\" SET {key} = '{value}'")
    log = cluster.coordinator.log
    start = log.stat().st_size
    plans: list[str] = []
    try:
        yield plans
    finally:
        with psycopg.connect(database.url, autocommit=True) as conn:
            for key, _ in settings:
                conn.execute(f'ALTER DATABASE "{database.name}" RESET {key}')
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", "replace")
    plans.extend(_ENTRY.findall(text))


def _of(plans: list[str], marker: str) -> list[str]:
    return [p for p in plans if marker in p]


def test_one_apps_page_claim_rating_and_receipts_each_go_to_one_node(
    citus_url: str, citus_database: CitusDatabase, citus_cluster: CitusCluster
) -> None:
    db = Database(citus_url)
    try:
        make_app(db, "app1", secretkey="secret1", callback_url="https://hooks.example.com/dr")
        make_app(db, "app2", secretkey="secret2")
        with db.reader.connect() as conn:
            app1 = conn.exec_driver_sql("SELECT id FROM apps WHERE appkey = 'app1'").scalar_one()
        RatingStore(db).import_plan(app1, parse_plan_csv(PLAN), source="p", now=1)
        load(db, [canonical(f"a{n}", second=n) for n in range(1, 6)])
        load(db, [canonical(f"b{n}", appkey="app2") for n in range(3)])
    finally:
        db.close()
    with explained(citus_cluster, citus_database) as plans:
        db = Database(citus_url)  # its connections are opened inside the block
        try:
            settings = Settings(database_url=citus_url, max_age_days=0)
            with TestClient(create_app(settings, db)) as client:
                response = client.post(QUERY_PATH, data=form(page_size="2", page="2"))
            assert response.status_code == 200
            assert response.json()["info"]["total"] == 5
            assert Rater(db).drain()[0] == 5
            # The sender's claim and bookkeeping for one app, as it runs on Citus.
            outbox = Outbox(db)
            due = outbox.claim_due(now=2**40, limit=10, per_app=10, busy={}, lease=1, app_id=app1)
            assert len(due) == 5
            assert all(x.content is not None for x in due)  # the calls were read too
            outbox.delivered(due[0].id, status=200, now=1, app_id=app1)
            outbox.failed(due[1].id, status=500, error="x", retry_at=2**41, app_id=app1)
        finally:
            db.close()

    pages = [p for p in _of(plans, "FROM cdrs") if "voice_group" in p and "FOR UPDATE" not in p]
    claims = _of(plans, "FOR UPDATE SKIP LOCKED")
    rated = _of(plans, "UPDATE cdrs SET cost_status")
    receipts = _of(plans, "receipts")
    assert pages
    assert claims
    assert rated
    assert len(receipts) >= 4  # the claim's read and update, delivered, failed
    for plan in [*pages, *claims, *rated, *receipts]:
        assert "Custom Scan (Citus Adaptive)" in plan, plan
        assert set(re.findall(r"Task Count: (\d+)", plan)) == {"1"}, plan
    for plan in pages:
        # One statement to one node, one snapshot there: not steps, each its own read
        # (what a page carrying the rate-limit token, a coordinator table, would be).
        assert "Distributed Subplan" not in plan, plan
        assert len(re.findall(r"Task Count:", plan)) == 1, plan
