"""``apps disable``/``enable`` as the query API and ingest see it, on SQLite and
PostgreSQL, through the real ASGI app: a disabled app's queries answer as a wrong secret
would, its new CDRs are refused by name, other apps go on, and its data stays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.integration.test_ingest_api import BASIC, BEARER, CRED, TOKEN
from tests.support import freeswitch as fs
from tests.support.data import canonical, make_app
from voicecdr import apps
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.config import Settings
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.storage import AppStore, CdrWriter, Database

DISABLED = "appkey: app 'app1' is disabled; its CDRs are refused until `voicecdr apps enable app1`"


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    make_app(db, "app1", secretkey="secret1")
    make_app(db, "app2", secretkey="secret2")
    summary = Ingestor(AppStore(db), CdrWriter(db)).ingest(
        Item(i, r)
        for i, r in enumerate([canonical("old1"), canonical("old2", time="2019-09-09 10:00:00")])
    )
    assert summary.accepted == 2
    configured = settings.model_copy(
        update={
            "max_age_days": 0,
            "app_cache_seconds": 0,  # see every change at once (the cache has its own tests)
            "auth_failures_per_client": 3,
            "ingest_token": Settings(ingest_token=TOKEN).ingest_token,
            "freeswitch_credentials": Settings(freeswitch_credentials=CRED).freeswitch_credentials,
        }
    )
    with TestClient(create_app(configured, db), raise_server_exceptions=False) as client:
        yield client


def query(client: TestClient, appkey: str = "app1", secretkey: str = "secret1") -> Any:
    response = client.post(
        QUERY_PATH,
        data={
            "appkey": appkey,
            "secretkey": secretkey,
            "voiceType": "0",
            "start_time": "2019-09-09 00:00:00",
            "end_time": "2019-09-09 23:59:59",
            "page": "1",
            "page_size": "100",
        },
    )
    assert response.status_code == 200
    return response.json()


def test_a_disabled_app_answers_as_a_wrong_secret_and_enable_restores_it(
    client: TestClient, db: Database
) -> None:
    before = query(client)
    assert before["info"]["total"] == 2
    wrong = query(client, secretkey="not-the-secret")
    assert apps.set_enabled(AppStore(db), "app1", enabled=False).changed
    assert wrong["error"] == "auth_failed"
    assert query(client) == wrong  # no oracle: word for word a wrong secret's answer
    assert query(client, "app2", "secret2")["code"] == "1"  # other apps go on
    assert apps.set_enabled(AppStore(db), "app1", enabled=True).changed
    assert query(client) == before


def test_a_disabled_apps_polling_client_does_not_lock_out_its_address(
    client: TestClient, db: Database
) -> None:
    # The right secret of a disabled app is no guess: counted as failures, a customer's
    # poller would lock every other app out of its address (3 failures allowed here).
    apps.set_enabled(AppStore(db), "app1", enabled=False)
    for _ in range(5):
        assert query(client)["error"] == "auth_failed"
    assert query(client, "app2", "secret2")["code"] == "1"


def test_batch_ingest_refuses_a_disabled_apps_records_by_name_and_keeps_the_rest(
    client: TestClient, db: Database
) -> None:
    apps.set_enabled(AppStore(db), "app1", enabled=False)
    batch = [canonical("new1"), canonical("b1", appkey="app2"), canonical("new2")]
    answer = client.post("/v1/cdrs", content=orjson.dumps(batch), headers=BEARER)
    assert answer.status_code == 200
    assert answer.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [
            {"index": 0, "call_id": "new1", "errors": [DISABLED]},
            {"index": 2, "call_id": "new2", "errors": [DISABLED]},
        ],
    }
    assert query(client, "app2", "secret2")["info"]["total"] == 1
    apps.set_enabled(AppStore(db), "app1", enabled=True)
    assert query(client)["info"]["total"] == 2  # its data stayed, nothing new slipped in
    again = client.post("/v1/cdrs", content=orjson.dumps(batch[::2]), headers=BEARER)
    assert again.json() == {"accepted": 2, "duplicates": 0, "rejected": []}


def test_freeswitch_ingest_refuses_a_disabled_apps_cdr_so_the_switch_keeps_it(
    client: TestClient, db: Database
) -> None:
    apps.set_enabled(AppStore(db), "app1", enabled=False)
    content, content_type = fs.body(fs.cdr(), "json")
    headers = {**BASIC, "Content-Type": content_type}
    refused = client.post("/v1/ingest/freeswitch", content=content, headers=headers)
    assert refused.status_code == 422  # non-2xx: mod_json_cdr keeps it and retries
    assert refused.json()["errors"] == [
        "variables.voicecdr_appkey: app 'app1' is disabled; its CDRs are refused until "
        "`voicecdr apps enable app1`"
    ]
    apps.set_enabled(AppStore(db), "app1", enabled=True)
    stored = client.post("/v1/ingest/freeswitch", content=content, headers=headers)
    assert stored.status_code == 200, stored.text
    assert stored.json()["accepted"] == 1


def test_disable_and_enable_are_idempotent_and_keep_the_time_disabled(db: Database) -> None:
    make_app(db, "app1")
    first = apps.set_enabled(AppStore(db), "app1", enabled=False)
    assert first.changed
    assert first.app.disabled_at is not None
    second = apps.set_enabled(AppStore(db), "app1", enabled=False)
    assert not second.changed
    assert second.app.disabled_at == first.app.disabled_at
    assert apps.set_enabled(AppStore(db), "app1", enabled=True).changed
    back = apps.set_enabled(AppStore(db), "app1", enabled=True)
    assert not back.changed
    assert back.app.disabled_at is None
    assert apps.public_view(back.app)["enabled"] is True
