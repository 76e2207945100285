"""``source_counts`` (``cdrs sources``) for the HTTP endpoints and the ingest core, on
SQLite and PostgreSQL: exact numbers, balanced rows, and counts that live and die with
the transaction storing their records."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from tests.support import freeswitch as fs
from tests.support.data import canonical, make_app
from voicecdr.api import create_app
from voicecdr.config import Settings
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.ingest.timebounds import TimeLimits
from voicecdr.storage import AppStore, CdrWriter, Database, SpoolStore

TOKEN = "t0ken-for-tests-0123456789"
CRED = "freeswitch:s3cret-pass"
BEARER = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
BASIC = {"Authorization": "Basic " + base64.b64encode(CRED.encode()).decode()}


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    make_app(db, "app1", secretkey="secret1")
    configured = settings.model_copy(
        update={
            "max_age_days": 0,
            "ingest_token": Settings(ingest_token=TOKEN).ingest_token,
            "freeswitch_credentials": Settings(freeswitch_credentials=CRED).freeswitch_credentials,
        }
    )
    with TestClient(create_app(configured, db), raise_server_exceptions=False) as client:
        yield client


def totals(db: Database, source: str) -> tuple[int, int, int, int]:
    """(received, stored, duplicate, rejected) of ``source`` over all hours, each row
    checked to balance."""
    hours = SpoolStore(db).counts(source=source)
    for h in hours:
        assert h.received == h.stored + h.duplicate + h.rejected, h
    return (
        sum(h.received for h in hours),
        sum(h.stored for h in hours),
        sum(h.duplicate for h in hours),
        sum(h.rejected for h in hours),
    )


def stored_call_ids(db: Database) -> list[str]:
    with db.reader.connect() as conn:
        return sorted(conn.execute(sa.text("SELECT call_id FROM cdrs")).scalars())


def post(client: TestClient, body: Any) -> Any:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/v1/cdrs", content=content, headers=BEARER)


def test_the_batch_api_counts_every_record_under_api(client: TestClient, db: Database) -> None:
    first = [
        canonical("c1"),
        canonical("c2"),
        canonical("c3", phone="1x"),
        canonical("c4", appkey="ghost"),
        7,
    ]
    assert post(client, first).json()["accepted"] == 2
    assert totals(db, "api") == (5, 2, 0, 3)
    # A repeat, a conflicting repeat and a new call.
    again = [canonical("c1"), canonical("c2", second=5), canonical("c5")]
    assert post(client, again).status_code == 200
    assert totals(db, "api") == (8, 3, 1, 4)
    # Every record refused before storing: counted in a transaction of their own.
    ndjson = orjson.dumps(canonical("c6", phone="")) + b"\nnot json\n"
    answer = client.post(
        "/v1/cdrs", content=ndjson, headers={**BEARER, "Content-Type": "application/x-ndjson"}
    )
    assert len(answer.json()["rejected"]) == 2
    assert totals(db, "api") == (10, 3, 1, 6)
    # A body that is not a batch at all holds no record: nothing to count.
    assert post(client, b"[not json").status_code == 400
    assert totals(db, "api") == (10, 3, 1, 6)
    assert totals(db, "freeswitch-http") == (0, 0, 0, 0)


def test_the_freeswitch_endpoint_counts_under_freeswitch_http(
    client: TestClient, db: Database
) -> None:
    def send(doc: dict[str, Any]) -> int:
        body, content_type = fs.body(doc, "json")
        headers = {**BASIC, "Content-Type": content_type}
        uuid = doc["variables"]["uuid"]
        answer = client.post(f"/v1/ingest/freeswitch?uuid={uuid}", content=body, headers=headers)
        return answer.status_code

    assert send(fs.cdr("u-1")) == 200
    assert send(fs.cdr("u-1")) == 200  # a repeat
    assert send(fs.cdr("u-1", billsec=7)) == 409  # changed
    assert send(fs.cdr("u-2", drop_vars=("voicecdr_appkey",))) == 422
    assert totals(db, "freeswitch-http") == (4, 1, 1, 2)
    assert totals(db, "api") == (0, 0, 0, 0)


def _fail_writes_of(db: Database, table: str, when: str = "1 = 1") -> None:
    """A trigger making every insert into ``table`` matching ``when`` (on ``NEW``) fail:
    a real storage fault, mid-transaction."""
    with db.writer.begin() as conn:
        if db.dialect == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} WHEN {when} "
                "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION fail_write() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} FOR EACH ROW "
                f"WHEN ({when}) EXECUTE FUNCTION fail_write()"
            )


def _drop_fault(db: Database, table: str) -> None:
    with db.writer.begin() as conn:
        on = "" if db.dialect == "sqlite" else f" ON {table}"
        conn.exec_driver_sql(f"DROP TRIGGER fail_{table}{on}")


def test_counts_and_records_commit_together_or_not_at_all(client: TestClient, db: Database) -> None:
    # Storing fails after the batch's first row: the counts must not move.
    keys = "cdrs" if db.dialect == "sqlite" else "cdr_keys"
    _fail_writes_of(db, keys, "NEW.call_id = 'boom'")
    batch = [canonical("ok-1"), canonical("boom"), canonical("bad", phone="1x")]
    assert post(client, batch).status_code == 503
    assert totals(db, "api") == (0, 0, 0, 0)
    assert stored_call_ids(db) == []
    _drop_fault(db, keys)
    # Counting fails: the records must not be stored.
    _fail_writes_of(db, "source_counts")
    assert post(client, batch).status_code == 503
    assert stored_call_ids(db) == []
    _drop_fault(db, "source_counts")
    assert post(client, batch).json()["accepted"] == 2
    assert totals(db, "api") == (3, 2, 0, 1)
    assert stored_call_ids(db) == ["boom", "ok-1"]


@pytest.mark.parametrize("background", [False, True])
def test_a_run_that_dies_has_counted_exactly_what_it_committed(
    db: Database, background: bool
) -> None:
    make_app(db, "app1", secretkey="secret1")
    ingestor = Ingestor(
        AppStore(db),
        CdrWriter(db),
        batch_size=2,
        background=background,
        limits=TimeLimits(max_age_days=0),
    )

    def items(die: bool) -> Iterator[Item]:
        records = [canonical("g1"), {"bad": 1}, canonical("g2"), canonical("g3"), 7]
        for i, record in enumerate(records):
            yield Item(i, record)
        if die:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        ingestor.ingest(items(die=True), source="src")
    # The batch [g1, g2] and the rejection before it were committed; g3 and 7 never were.
    assert totals(db, "src") == (3, 2, 0, 1)
    assert stored_call_ids(db) == ["g1", "g2"]
    # A run to the end counts what follows the last batch in one more transaction.
    summary = ingestor.ingest(items(die=False), source="src")
    assert (summary.accepted, summary.duplicates, summary.rejected_total) == (1, 2, 2)
    assert totals(db, "src") == (8, 3, 2, 3)
    assert totals(db, "other") == (0, 0, 0, 0)


def test_writers_on_other_threads_count_in_shards_that_the_report_sums(
    client: TestClient, db: Database
) -> None:
    # Each writing thread adds to its own row of the hour (a shard), so API requests of
    # many apps do not queue on one row's lock; the report shows their sum, one row.
    def send(thread: int) -> None:
        for n in range(3):
            body = [canonical(f"t{thread}-{n}-{k}") for k in range(4)] + [
                canonical("x", phone="1x")
            ]
            assert post(client, body).status_code == 200

    threads = [threading.Thread(target=send, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert totals(db, "api") == (60, 48, 0, 12)
    with db.reader.connect() as conn:
        hours, rows = conn.execute(
            sa.text("SELECT count(DISTINCT hour), count(*) FROM source_counts")
        ).one()
    assert len(SpoolStore(db).counts(source="api")) == hours  # a row per hour, shards summed
    assert hours <= rows <= 4 * hours
