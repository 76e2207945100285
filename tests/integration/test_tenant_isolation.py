"""OWASP API1 (broken object-level authorisation): app B can never reach app A's records.

Not by A's message ids, A's time windows, paging, extended fields, the client export with
B's keys, a rerate of B, or receipts: on SQLite and PostgreSQL, through the real app.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.integration.test_receipt_delivery import PLAN, deliver
from tests.support.client import load, recent_records, window
from tests.support.data import canonical, make_app
from tests.support.receiver import receiving
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.client import Client
from voicecdr.config import Settings
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import AppStore, Database, RatingStore
from voicecdr.workers.rater import Rater, rerate

FMT = "%Y-%m-%d %H:%M:%S"


@pytest.fixture
def two_tenants(db: Database) -> tuple[str, str]:
    make_app(db, "tenantA", secretkey="secret-A")
    make_app(db, "tenantB", secretkey="secret-B")
    records = recent_records("tenantA", 120, days=1, seed=11)
    for record in records:
        record["messageid"] = "shared-id"  # B guessing A's message id must find nothing
    load(db, records)
    return "tenantA", "tenantB"


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db), raise_server_exceptions=False) as client:
        yield client


def _query(client: TestClient, appkey: str, secretkey: str, **extra: str) -> dict[str, object]:
    start, end = window(days=0.99)
    form = {
        "appkey": appkey,
        "secretkey": secretkey,
        "voiceType": "0",
        "start_time": start.strftime(FMT),
        "end_time": end.strftime(FMT),
        "page": "1",
        "page_size": "1000",
        **extra,
    }
    body: dict[str, object] = client.post(QUERY_PATH, data=form).json()
    return body


def test_a_sees_its_records_and_b_sees_none_by_any_parameter(
    client: TestClient, two_tenants: tuple[str, str]
) -> None:
    own = _query(client, "tenantA", "secret-A")
    assert own["code"] == "1"
    assert own["info"]["total"] > 0  # type: ignore[index]
    for extra in (
        {},
        {"messageid": "shared-id"},
        {"extended": "1"},
        {"page": "2", "page_size": "1"},
        {"voiceType": "1"},
    ):
        answer = _query(client, "tenantB", "secret-B", **extra)
        assert answer["code"] == "1", answer
        assert answer["info"]["total"] == 0, extra  # type: ignore[index]
        assert answer["info"]["rows"] == []  # type: ignore[index]


@pytest.mark.parametrize(
    ("appkey", "secretkey"),
    [
        ("tenantA", "secret-B"),  # A's appkey with B's secret
        ("tenantB", "secret-A"),
        ("tenantA", ""),
        ("tenantA ", "secret-A"),  # look-alike appkeys are other apps, not A
        ("TENANTA", "secret-A"),
    ],
)
def test_mixed_or_lookalike_credentials_are_refused(
    client: TestClient, two_tenants: tuple[str, str], appkey: str, secretkey: str
) -> None:
    answer = _query(client, appkey, secretkey)
    assert answer["code"] == "0"
    assert answer["error"] in {"auth_failed", "invalid_parameter"}
    assert "rows" not in str(answer)


def test_client_export_with_b_keys_gets_nothing_of_a(
    settings: Settings, db: Database, two_tenants: tuple[str, str]
) -> None:
    start, end = window(days=3)
    with TestClient(create_app(settings, db)) as asgi:
        for appkey, secretkey, expected in (
            ("tenantA", "secret-A", 120),
            ("tenantB", "secret-B", 0),
        ):
            # The TestClient's transport runs the SDK's requests through the app in-process.
            sdk = Client(
                appkey,
                secretkey,
                base_url="http://testserver",
                transport=asgi._transport,
                rate=None,
            )
            with sdk:
                rows = [*sdk.iter_records(0, start, end), *sdk.iter_records(1, start, end)]
            assert len(rows) == expected


def test_rerating_b_never_touches_a(db: Database, two_tenants: tuple[str, str]) -> None:
    app_a, app_b = AppStore(db).get("tenantA"), AppStore(db).get("tenantB")
    assert app_a is not None
    assert app_b is not None
    ratings = RatingStore(db)
    ratings.import_plan(app_a.id, parse_plan_csv(PLAN), source="t", now=1)
    Rater(db).drain()
    before = _costs(db, app_a.id)
    cheap = PLAN.replace("0.05,0.005", "9.99,9.99")
    ratings.import_plan(app_b.id, parse_plan_csv(cheap), source="t", now=2)
    now = int(time.time())
    report = rerate(db, app_b, now - 3 * 86_400, now + 60, dry_run=False, resend_receipts=True)
    assert report.records == 0
    assert _costs(db, app_a.id) == before


def test_receipts_of_a_never_go_to_b(db: Database) -> None:
    with receiving() as receiver_a, receiving() as receiver_b:
        app_a = make_app(db, "tenantA", callback_url=f"{receiver_a.url}/a").app
        make_app(db, "tenantB", callback_url=f"{receiver_b.url}/b")
        RatingStore(db).import_plan(app_a.id, parse_plan_csv(PLAN), source="t", now=1)
        records = [canonical(f"a-{i}", appkey="tenantA") for i in range(5)]
        load(db, records)
        Rater(db).drain()
        deliver(db)
        assert len(receiver_a.received) == 5
        assert receiver_b.received == []
        assert all(got.path == "/a" for got in receiver_a.received)


def _costs(db: Database, app_id: int) -> list[tuple[object, ...]]:
    import sqlalchemy as sa

    from voicecdr.storage import schema

    c = schema.cdrs.c
    query = sa.select(c.id, c.cost_status, c.cost_nanos).where(c.app_id == app_id).order_by(c.id)
    with db.reader.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]
