"""The query API's answer when the database is really unreachable: its own PostgreSQL
server, stopped (the session's must stay up), then started again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.support.client import load
from tests.support.data import canonical, make_app
from tests.support.postgres import PostgresServer, running
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.config import Settings
from voicecdr.storage import Database, migrate

pytestmark = pytest.mark.postgres

FORM = {
    "appkey": "app1",
    "secretkey": "secret1",
    "voiceType": "0",
    "start_time": "2019-09-09 09:00:00",
    "end_time": "2019-09-09 09:00:59",
    "page": "1",
    "page_size": "10",
}


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    with running() as server:  # its own server: the test stops it
        yield server


def test_a_stopped_database_is_internal_with_retry_after_then_recovers(
    pg: PostgresServer, tmp_path: Path
) -> None:
    url = pg.create_database("voicecdr")
    db = Database(url)
    try:
        migrate.upgrade(db)
        make_app(db, "app1", secretkey="secret1")
        load(db, [canonical("g1", time="2019-09-09 09:00:00")])
        settings = Settings(
            database_url=url,
            max_age_days=0,
            rate_limit_state=str(tmp_path / "ratelimit.sqlite"),
        )
        with TestClient(create_app(settings, db)) as client:
            first = client.post(QUERY_PATH, data=FORM).json()
            assert first["code"] == "1", first
            assert first["info"]["total"] == 1
            pg.halt()
            try:
                down = client.post(QUERY_PATH, data=FORM)
            finally:
                pg.resume()
            # SPEC's one slug for a failed server, HTTP 200 as NXCloud clients expect; the
            # header and the message tell the client that retrying is worth it.
            assert down.status_code == 200
            assert down.json() == {
                "code": "0",
                "info": "the database is unavailable; retry later",
                "error": "internal",
            }
            assert down.headers["retry-after"] == "5"
            # Back without a restart: the connection that saw the failure is replaced.
            up = client.post(QUERY_PATH, data=FORM)
            assert up.json()["info"]["total"] == 1
            assert "retry-after" not in up.headers
    finally:
        db.close()
