"""E.164 end to end on SQLite and PostgreSQL: international numbers through ``POST
/v1/cdrs`` (split, checked, duplicates across the two forms), the region stored and
asked about by ``GET /v1/analytics``, and the region migration's backfill."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from tests.integration.test_ingest_api import TOKEN, post_batch
from tests.support.analytics import assert_exact, assert_rollups_as_rebuilt
from tests.support.data import canonical, make_app
from voicecdr.analytics import AnalyticsQuery, Dimension, Filters
from voicecdr.api import create_app
from voicecdr.config import Settings
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import AppStore, CdrWriter, Database, RatingStore, migrate
from voicecdr.workers.rater import Rater

APP_AUTH = {"Authorization": "Basic " + base64.b64encode(b"app1:secret1").decode()}
WINDOW = {"from": "2019-09-01", "to": "2019-09-30"}


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    make_app(db, "app1", secretkey="secret1", timezone="Asia/Shanghai")
    configured = settings.model_copy(
        update={"max_age_days": 0, "ingest_token": Settings(ingest_token=TOKEN).ingest_token}
    )
    with TestClient(create_app(configured, db), raise_server_exceptions=False) as client:
        yield client


def stored(db: Database) -> dict[str, tuple[str, str, str | None]]:
    with db.reader.connect() as conn:
        found = conn.execute(sa.text("SELECT call_id, country_code, phone, region FROM cdrs"))
        return {r[0]: (r[1], r[2], r[3]) for r in found}


def international(call_id: str, phone: str, **extra: Any) -> dict[str, Any]:
    record = canonical(call_id, phone=phone, **extra)
    del record["country_code"]
    return record


def test_international_numbers_are_split_and_placed(client: TestClient, db: Database) -> None:
    batch = [
        international("in", "+91 98765 43210"),
        international("in00", "00919876543211"),
        international("us", "+1 (212) 555-0123"),
        international("ca", "+1 416 555 0123"),
        international("toll", "+800 1234 5678"),
        canonical("national", phone="4165550124", country_code="1"),
        canonical("nowhere", phone="9995550123", country_code="1"),
        international("bad", "+1 555 555 0123"),
        international("short", "+91 98765"),
        canonical("disagree", phone="+919876543210", country_code="44"),
    ]
    answer = post_batch(client, batch).json()
    assert answer["accepted"] == 7
    assert answer["rejected"] == [
        {
            "index": 7,
            "call_id": "bad",
            "errors": ["phone: '+1 555 555 0123': not a valid number of any region of +1"],
        },
        {
            "index": 8,
            "call_id": "short",
            "errors": ["phone: '+91 98765': too short for country code 91"],
        },
        {
            "index": 9,
            "call_id": "disagree",
            "errors": ["phone: '+919876543210' has country code 91, country_code says 44"],
        },
    ]
    assert stored(db) == {
        "in": ("91", "9876543210", "IN"),
        "in00": ("91", "9876543211", "IN"),
        "us": ("1", "2125550123", "US"),
        "ca": ("1", "4165550123", "CA"),
        "toll": ("800", "12345678", None),
        "national": ("1", "4165550124", "CA"),
        "nowhere": ("1", "9995550123", None),
    }


def test_the_two_forms_of_one_call_are_duplicates_not_conflicts(client: TestClient) -> None:
    first = post_batch(client, [international("c1", "+91 98765 43210")]).json()
    assert first["accepted"] == 1
    again = [
        canonical("c1", phone="9876543210", country_code="91"),
        international("c1", "0091-98765-43210"),
        canonical("c1", phone="+919876543210", country_code="91"),
    ]
    replay = post_batch(client, again).json()
    assert (replay["accepted"], replay["duplicates"], replay["rejected"]) == (0, 3, [])
    # Another number under the same call_id is a conflict, as ever.
    clash = post_batch(client, [international("c1", "+91 98765 43219")]).json()
    assert clash["rejected"][0]["errors"] == [
        "call_id: conflict: already stored with different content"
    ]


def test_analytics_by_and_for_a_region(client: TestClient, db: Database) -> None:
    calls = [("+1 212 555 0123", 3), ("+1 416 555 0123", 2), ("+91 98765 43210", 4)]
    batch = [
        international(f"c{n}-{i}", phone, time=f"2019-09-0{1 + i} 10:00:00")
        for n, (phone, count) in enumerate(calls)
        for i in range(count)
    ]
    batch.append(canonical("none", phone="9995550123", country_code="1"))
    assert post_batch(client, batch).json()["accepted"] == 10
    by_region = client.get(
        "/v1/analytics", params={**WINDOW, "group_by": "region"}, headers=APP_AUTH
    )
    assert by_region.status_code == 200, by_region.text
    attempts = {g["key"]["region"]: g["attempts"] for g in by_region.json()["groups"]}
    assert attempts == {None: 1, "CA": 2, "IN": 4, "US": 3}
    canada = client.get(
        "/v1/analytics",
        params={**WINDOW, "region": "ca", "group_by": "country_code"},
        headers=APP_AUTH,
    ).json()
    assert canada["filters"] == {"region": "CA"}
    assert [(g["key"]["country_code"], g["attempts"]) for g in canada["groups"]] == [("1", 2)]
    for bad in ("C", "CAN", "1A", "É1"):
        refused = client.get("/v1/analytics", params={**WINDOW, "region": bad}, headers=APP_AUTH)
        assert refused.status_code == 400, bad
        assert refused.json()["parameter"] == "region"
    # And the answers are the plain GROUP BY's, wherever they were read from.
    app = AppStore(db).get("app1")
    assert app is not None
    start, end = 1_567_267_200, 1_569_801_600
    for group_by in [(Dimension.REGION,), (Dimension.DAY, Dimension.REGION)]:
        for filters in [Filters(), Filters(region="US"), Filters(country_code="1", region="CA")]:
            assert_exact(db, app, AnalyticsQuery(start, end, group_by, filters))


PLAN = "service,prefix,cycle,unit_price,basic_price\n*,1,6,0.01,0\n*,91,60,0.02,0\n"


def test_the_region_migration_backfills_the_region_and_rebuilds_the_rollups(db: Database) -> None:
    apps = [make_app(db, key, timezone=tz).app for key, tz in (("a", "UTC"), ("b", "Asia/Kolkata"))]
    RatingStore(db).import_plan(apps[0].id, parse_plan_csv(PLAN), source="t", now=1)
    numbers = [("1", "2125550123"), ("1", "4165550123"), ("91", "9876543210"), ("1", "9995550123")]
    records = [
        canonical(
            f"c{i}",
            appkey=app.appkey,
            time=f"2019-09-0{1 + i % 5} 0{i % 10}:00:00",
            country_code=numbers[i % 4][0],
            phone=numbers[i % 4][1],
        )
        for i in range(40)
        for app in apps
    ]
    Ingestor(AppStore(db), CdrWriter(db)).ingest(Item(i, r) for i, r in enumerate(records))
    Rater(db).drain()
    before = stored(db)
    assert {v[2] for v in before.values()} == {"US", "CA", "IN", None}

    migrate.downgrade(db, "0010")  # the revision before the region
    with db.reader.connect() as conn:
        assert "region" not in {c["name"] for c in sa.inspect(conn).get_columns("cdrs")}
    migrate.upgrade(db)

    assert stored(db) == before
    assert_rollups_as_rebuilt(db, [a.id for a in apps])
    start, end = 1_567_209_600, 1_567_900_000
    for app in apps:
        app_now = AppStore(db).get(app.appkey)
        assert app_now is not None
        for group_by in [(Dimension.REGION,), (Dimension.DAY, Dimension.REGION), ()]:
            report = assert_exact(db, app_now, AnalyticsQuery(start, end, group_by))
            assert report.total.attempts == 40
        by_prefix = assert_exact(
            db, app_now, AnalyticsQuery(start, end, (Dimension.REGION, Dimension.PREFIX))
        )
        assert by_prefix.total.attempts == 40
