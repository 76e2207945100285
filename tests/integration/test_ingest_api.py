"""``POST /v1/cdrs`` and ``POST /v1/ingest/freeswitch`` on SQLite and PostgreSQL, through
the real ASGI app; what lands is read back through the NXCloud query API."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.support import freeswitch as fs
from tests.support.asgi import raw_post
from tests.support.data import canonical, make_app
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.config import Settings
from voicecdr.storage import Database


@pytest.fixture
def database_url(any_database_url: str) -> str:
    """SQLite, PostgreSQL and Citus: these tests hold on every database."""
    return any_database_url


TOKEN = "t0ken-for-tests-0123456789"
CRED = "freeswitch:s3cret-pass"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
BASIC = {"Authorization": "Basic " + base64.b64encode(CRED.encode()).decode()}


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    make_app(db, "app1", secretkey="secret1")
    configured = settings.model_copy(
        update={
            "max_age_days": 0,
            "ingest_token": Settings(ingest_token=TOKEN).ingest_token,
            "freeswitch_credentials": Settings(freeswitch_credentials=CRED).freeswitch_credentials,
            "max_batch_records": 50,
            "max_batch_bytes": 200_000,
        }
    )
    with TestClient(create_app(configured, db), raise_server_exceptions=False) as client:
        yield client


def post_batch(client: TestClient, records: Any, **kwargs: Any) -> Any:
    headers = {**BEARER, "Content-Type": "application/json", **kwargs.pop("headers", {})}
    body = records if isinstance(records, bytes) else orjson.dumps(records)
    return client.post("/v1/cdrs", content=body, headers=headers, **kwargs)


def rows(client: TestClient, voice_type: str = "0", **extra: str) -> list[dict[str, Any]]:
    answer = client.post(
        QUERY_PATH,
        data={
            "appkey": "app1",
            "secretkey": "secret1",
            "voiceType": voice_type,
            "start_time": "2019-09-09 00:00:00",
            "end_time": "2019-09-09 23:59:59",
            "page": "1",
            "page_size": "100",
            **extra,
        },
    ).json()
    assert answer["code"] == "1", answer
    return list(answer["info"]["rows"])


# -- POST /v1/cdrs ------------------------------------------------------------------------


def test_batch_stores_the_good_and_names_the_bad(client: TestClient) -> None:
    batch = [canonical("c1"), canonical("c2", phone="1x"), canonical("c3", appkey="ghost"), 7]
    answer = post_batch(client, batch)
    assert answer.status_code == 200
    assert answer.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [
            {"index": 1, "call_id": "c2", "errors": ["phone: must contain digits only"]},
            {"index": 2, "call_id": "c3", "errors": ["appkey: unknown app 'ghost'"]},
            {
                "index": 3,
                "call_id": None,
                "errors": ["record: must be a JSON object, not a number"],
            },
        ],
    }
    assert [r["phone"] for r in rows(client)] == ["810022458"]


def test_replay_is_a_no_op_and_a_conflict_never_overwrites(client: TestClient) -> None:
    assert post_batch(client, [canonical("c1"), canonical("c2")]).json()["accepted"] == 2
    replay = post_batch(client, [canonical("c1"), canonical("c2")]).json()
    assert (replay["accepted"], replay["duplicates"], replay["rejected"]) == (0, 2, [])
    clash = post_batch(client, [canonical("c1", second=5)]).json()
    assert clash["rejected"] == [
        {
            "index": 0,
            "call_id": "c1",
            "errors": ["call_id: conflict: already stored with different content"],
        }
    ]
    assert {r["second"] for r in rows(client)} == {19}


def test_ndjson_with_a_broken_line(client: TestClient) -> None:
    body = b"\n".join([orjson.dumps(canonical("n1")), b"{oops", b"", orjson.dumps(canonical("n2"))])
    answer = post_batch(client, body, headers={"Content-Type": "application/x-ndjson"}).json()
    assert answer["accepted"] == 2
    assert answer["rejected"][0]["index"] == 1
    assert answer["rejected"][0]["errors"][0].startswith("record: not valid JSON")


def test_single_object_is_a_batch_of_one(client: TestClient) -> None:
    body = orjson.dumps(canonical("s1"), option=orjson.OPT_INDENT_2)
    assert post_batch(client, body).json()["accepted"] == 1


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({"Authorization": ""}, 401, "Authorization: Bearer <token>"),
        ({"Authorization": "Bearer wrong-token-0123456789"}, 401, "Bearer"),
        ({"Authorization": f"Basic {TOKEN}"}, 401, "Bearer"),
        ({"Content-Type": "text/csv"}, 415, "content type 'text/csv'"),
    ],
)
def test_batch_refusals(
    client: TestClient, headers: dict[str, str], status: int, detail: str
) -> None:
    answer = post_batch(client, [canonical("c1")], headers=headers)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert detail in answer.json()["detail"]
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_batch_limits(client: TestClient) -> None:
    too_many = post_batch(client, [canonical(f"c{i}") for i in range(51)])
    assert too_many.status_code == 413
    assert too_many.json()["detail"] == "batch has 51 records; send at most 50 per request"
    too_big = post_batch(client, b"[" + b" " * 200_001 + b"]")
    assert too_big.status_code == 413
    assert "at most 200000 bytes" in too_big.json()["detail"]
    assert rows(client) == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [(b"", "body is empty"), (b"[{]", "body is not a valid JSON array")],
)
def test_unreadable_batch_is_400(client: TestClient, body: bytes, detail: str) -> None:
    answer = post_batch(client, body)
    assert answer.status_code == 400
    assert detail in answer.json()["detail"]


def test_unconfigured_endpoints_say_so(settings: Settings, db: Database) -> None:
    with TestClient(create_app(settings, db)) as client:
        batch = client.post("/v1/cdrs", json=[], headers=BEARER)
        assert batch.status_code == 503
        assert "VOICECDR_INGEST_TOKEN" in batch.json()["detail"]
        switch = client.post("/v1/ingest/freeswitch", json={}, headers=BASIC)
        assert switch.status_code == 503
        assert "VOICECDR_FREESWITCH_CREDENTIALS" in switch.json()["detail"]


# -- POST /v1/ingest/freeswitch -----------------------------------------------------------


def post_cdr(client: TestClient, doc: dict[str, Any], encoding: str = "json", **kw: Any) -> Any:
    body, content_type = fs.body(doc, encoding)
    headers = {**BASIC, "Content-Type": content_type, **kw.pop("headers", {})}
    uuid = doc["variables"].get("uuid", "x")
    return client.post(f"/v1/ingest/freeswitch?uuid={uuid}", content=body, headers=headers)


@pytest.mark.parametrize("encoding", fs.ENCODINGS)
def test_each_encoding_lands_as_the_right_nxcloud_row(client: TestClient, encoding: str) -> None:
    doc = fs.encode_values(fs.cdr(f"uuid-{encoding}"))
    answer = post_cdr(client, doc, encoding)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    (row,) = rows(client, "1", extended="1")
    assert {k: v for k, v in row.items() if k != "id"} == {
        "result": "Successful connection",
        "cycle": 0,
        "time": "2019-09-09 09:00:00",
        "start_time": "2019-09-09 09:00:01",
        "end_time": "2019-09-09 09:00:20",
        "phone": "810022458",
        "second": 19,
        "voice_type": 2,
        "countryCode": "91",
        "messageid": "5f2b9c0e7a6d4b1c",
        "customer_price": 0,
        "show_phone": "085944247",
        "size": 0,
        "cost": 0,
        "cost_status": "pending",
        "hangup_cause": "NORMAL_CLEARING",
        "hangup_disposition": "recv_bye",
    }


def test_repeat_is_2xx_and_a_changed_repeat_is_409(client: TestClient) -> None:
    assert post_cdr(client, fs.cdr()).status_code == 200
    again = post_cdr(client, fs.cdr(), "urlencoded")
    assert again.status_code == 200
    assert again.json()["duplicates"] == 1
    changed = post_cdr(client, fs.cdr(billsec=7))
    assert changed.status_code == 409
    assert changed.json()["errors"] == [
        "variables.uuid: conflict: already stored with different content"
    ]


def test_unstorable_cdrs_are_refused_with_the_reason(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "voicecdr.api.ingest")
    missing = post_cdr(client, fs.cdr(drop_vars=("voicecdr_appkey",)))
    assert missing.status_code == 422
    assert missing.json()["detail"] == "variables.voicecdr_appkey: missing"
    unknown = post_cdr(client, fs.cdr(extra_vars={"voicecdr_appkey": "ghost"}))
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == ["variables.voicecdr_appkey: unknown app 'ghost'"]
    broken = client.post(
        "/v1/ingest/freeswitch",
        content=b"{broken",
        headers={**BASIC, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["detail"]
    reasons = [getattr(r, "reason", "") for r in caplog.records]
    assert "variables.voicecdr_appkey: missing" in reasons
    assert any("not valid JSON" in r for r in reasons)
    assert CRED not in caplog.text
    assert rows(client, "1") == []


@pytest.mark.parametrize(
    "authorization",
    ["", "Basic " + base64.b64encode(b"freeswitch:wrong").decode(), "Basic !!", f"Bearer {CRED}"],
)
def test_freeswitch_needs_its_basic_credentials(client: TestClient, authorization: str) -> None:
    answer = post_cdr(client, fs.cdr(), headers={"Authorization": authorization})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="voicecdr"'
    assert rows(client, "1") == []


def test_freeswitch_body_limit_and_type(client: TestClient) -> None:
    huge = fs.cdr(extra_vars={"padding": "x" * 200_001})
    assert post_cdr(client, huge).status_code == 413
    wrong = client.post(
        "/v1/ingest/freeswitch", content=b"<cdr/>", headers={**BASIC, "Content-Type": "text/xml"}
    )
    assert wrong.status_code == 415


def test_ingest_metrics_count_by_source_and_outcome(client: TestClient) -> None:
    post_batch(client, [canonical("m1"), canonical("m2", phone="x")])
    post_cdr(client, fs.cdr())
    text = client.get("/metrics").text
    assert 'voicecdr_ingest_records_total{outcome="accepted",source="batch"}' in text
    assert 'voicecdr_ingest_records_total{outcome="rejected",source="batch"}' in text
    assert 'voicecdr_ingest_records_total{outcome="accepted",source="freeswitch"}' in text


def test_openapi_describes_the_ingest_endpoints(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["paths"]["/v1/cdrs"]["post"]["security"] == [{"ingestToken": []}]
    assert "At most 50 records" in doc["paths"]["/v1/cdrs"]["post"]["description"]
    assert set(doc["paths"]["/v1/ingest/freeswitch"]["post"]["responses"]) >= {"200", "422"}


# -- issue 20: times far from now, digits that are not ASCII, broken percent-escapes ------


def test_times_far_from_now_are_rejected_and_the_rest_stored(client: TestClient) -> None:
    batch = [
        canonical("y1", time="0001-01-01 09:00:00", connected=False),
        canonical("ok"),
        canonical("y9", time="9999-12-31 09:00:00", connected=False),
        canonical("fw", show_phone="\uff10\uff18\uff15\uff19"),
    ]
    answer = post_batch(client, batch)
    assert answer.status_code == 200
    rejected = {r["call_id"]: r["errors"] for r in answer.json()["rejected"]}
    assert answer.json()["accepted"] == 1
    assert rejected["y1"][0].startswith("time: 0001-01-01T09:00:00")
    assert rejected["y1"][0].endswith(
        "is more than 3660 days ago; to import older calls, raise VOICECDR_INGEST_MAX_AGE_DAYS"
    )
    assert rejected["y9"] == [
        "time: 9999-12-31T09:00:00+08:00 is more than 15 minutes in the future; check the "
        "sender's clock and UTC offset (VOICECDR_INGEST_MAX_FUTURE_MINUTES)"
    ]
    assert rejected["fw"] == ["show_phone: must use the ASCII digits 0-9, not '\uff10' (U+FF10)"]
    assert [r["phone"] for r in rows(client)] == ["810022458"]


def test_the_age_limit_is_the_operators_setting(
    settings: Settings, db: Database, client: TestClient
) -> None:
    configured = settings.model_copy(
        update={
            "ingest_token": Settings(ingest_token=TOKEN).ingest_token,
            "freeswitch_credentials": Settings(freeswitch_credentials=CRED).freeswitch_credentials,
            "ingest_max_age_days": 30,
        }
    )
    with TestClient(create_app(configured, db)) as recent_only:
        answer = post_batch(recent_only, [canonical("old")]).json()
        assert answer["rejected"][0]["errors"][0].endswith(
            "is more than 30 days ago; to import older calls, raise VOICECDR_INGEST_MAX_AGE_DAYS"
        )
        refused = post_cdr(recent_only, fs.cdr("fs-old"))
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("variables.start_epoch: 2019-09-09T01:00:00Z")
    assert post_batch(client, [canonical("old")]).json()["accepted"] == 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("12%ZZ", "has a broken percent-escape '%ZZ'"),
        ("12%4", "has a broken percent-escape '%4'"),
        ("%ff%fe", "is not UTF-8 once its percent-escapes are decoded"),
    ],
)
def test_freeswitch_variable_with_a_broken_escape_is_refused(
    client: TestClient, value: str, problem: str
) -> None:
    answer = post_cdr(client, fs.cdr(extra_vars={"voicecdr_ivr_result": value}), "urlencoded")
    assert answer.status_code == 422  # not 2xx: mod_json_cdr keeps the CDR and retries
    assert answer.json()["errors"][0].startswith(f"variables.voicecdr_ivr_result: {problem}")
    assert rows(client, "1") == []


@pytest.mark.parametrize("encoding", ["urlencoded", "base64"])
def test_freeswitch_form_with_cdr_after_other_fields(client: TestClient, encoding: str) -> None:
    body, content_type = fs.body(fs.cdr(), encoding)
    answer = client.post(
        "/v1/ingest/freeswitch",
        content=b"uuid=3b5c&" + body + b"&extra=1",
        headers={**BASIC, "Content-Type": content_type},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1


@pytest.mark.parametrize(
    ("form", "detail"),
    [
        (b"uuid=1&other=2", "form body has no cdr= field"),
        (b"cdr=%7B%7D&cdr=%7B%7D", "form body has 2 cdr= fields; send exactly one"),
    ],
)
def test_freeswitch_form_without_exactly_one_cdr(
    client: TestClient, form: bytes, detail: str
) -> None:
    answer = client.post(
        "/v1/ingest/freeswitch",
        content=form,
        headers={**BASIC, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400
    assert answer.json()["detail"] == detail


def test_freeswitch_query_uuid_is_decoded_strictly(client: TestClient) -> None:
    doc = fs.cdr(drop_vars=("uuid",))
    del doc["callflow"][0]["caller_profile"]["uuid"]
    body, content_type = fs.body(doc, "json")
    headers = {**BASIC, "Content-Type": content_type}
    bad = client.post("/v1/ingest/freeswitch?uuid=%ff%fe", content=body, headers=headers)
    assert bad.status_code == 400
    assert (
        bad.json()["detail"]
        == "query parameter uuid is not UTF-8 once its percent-escapes are decoded"
    )
    good = client.post("/v1/ingest/freeswitch?uuid=from%2Dquery", content=body, headers=headers)
    assert good.status_code == 200, good.text
    assert good.json()["accepted"] == 1


@pytest.mark.parametrize("declared", [b"\xb2", "\uff12".encode(), b"1_0", b" 2"])
def test_a_content_length_of_other_digits_is_not_a_crash(
    client: TestClient, declared: bytes
) -> None:
    headers = [
        (b"authorization", BEARER["Authorization"].encode()),
        (b"content-type", b"application/json"),
        (b"content-length", declared),
    ]
    assert raw_post(client, "/v1/cdrs", headers, b"[]")[0] == 200


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_a_byte_order_mark_before_the_batch_is_skipped(
    client: TestClient, content_type: str
) -> None:
    records = [canonical("bom1"), canonical("bom2")]
    body = (
        orjson.dumps(records)
        if content_type == "application/json"
        else b"\n".join(map(orjson.dumps, records))
    )
    answer = post_batch(client, b"\xef\xbb\xbf" + body, headers={"Content-Type": content_type})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
