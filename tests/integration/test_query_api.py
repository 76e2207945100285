"""The NXCloud query API contract, on SQLite and PostgreSQL, through the real ASGI app."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support.data import canonical, make_app
from voicecdr.api import QUERY_PATH, create_app
from voicecdr.config import Settings
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.storage import AppStore, CdrWriter, Database


@pytest.fixture
def database_url(any_database_url: str) -> str:
    """SQLite, PostgreSQL and Citus: these tests hold on every database."""
    return any_database_url


GROUP_FIELDS = [
    "id",
    "result",
    "cycle",
    "time",
    "start_time",
    "end_time",
    "phone",
    "basic_price",
    "second",
    "countryCode",
    "messageid",
    "customer_price",
    "show_phone",
    "size",
    "ivr_result",
]
VERIFICATION_FIELDS = [
    "id",
    "result",
    "cycle",
    "time",
    "start_time",
    "end_time",
    "phone",
    "second",
    "voice_type",
    "countryCode",
    "messageid",
    "customer_price",
    "show_phone",
    "size",
]


def load(db: Database, records: list[dict[str, Any]]) -> None:
    summary = Ingestor(AppStore(db), CdrWriter(db)).ingest(
        Item(i, r) for i, r in enumerate(records)
    )
    assert summary.rejected == []
    assert summary.accepted == len(records)


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"max_age_days": 0}), db)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def app1(db: Database) -> str:
    make_app(db, "app1", secretkey="secret1")
    load(
        db,
        [
            canonical("g1", time="2019-09-09 09:00:00", ivr_result="12#", messageid="784522"),
            canonical("g2", time="2019-09-09 09:00:05", connected=False, messageid="784522"),
            canonical("v1", time="2019-09-09 09:00:03", service="verification", second=3),
            canonical(
                "n1",
                time="2019-09-09 09:00:04",
                service="notification",
                second=7,
                record_url="https://r.example.com/n1.wav",
            ),
        ],
    )
    return "app1"


def form(**overrides: str | None) -> dict[str, str]:
    params = {
        "appkey": "app1",
        "secretkey": "secret1",
        "voiceType": "0",
        "start_time": "2019-09-09 09:00:00",
        "end_time": "2019-09-09 09:00:59",
        "page_size": "10",
        "page": "1",
    }
    params.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in params.items() if v is not None}


def post(client: TestClient, **overrides: str | None) -> dict[str, Any]:
    response = client.post(QUERY_PATH, data=form(**overrides))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def test_seed_curl_example(client: TestClient, db: Database) -> None:
    """The seed document's request, verbatim, answers as the seed's response shows."""
    make_app(db, "asdf", secretkey="qwer")
    load(
        db,
        [
            canonical(
                "seed",
                appkey="asdf",
                service="notification",
                messageid="32432423",
                time="2019-09-09 09:00:01",
                second=3,
            )
        ],
    )
    body = client.post(
        QUERY_PATH,
        data={
            "appkey": "asdf",
            "secretkey": "qwer",
            "voiceType": "1",
            "messageid": "32432423",
            "start_time": "2019-09-09 09:00:01",
            "end_time": "2019-09-09 09:00:11",
            "page_size": "10",
            "page": "1",
        },
    ).json()
    assert body["code"] == "1"
    assert (body["info"]["total"], body["info"]["page"], body["info"]["pageSize"]) == (1, 1, 10)
    (row,) = body["info"]["rows"]
    assert list(row) == VERIFICATION_FIELDS
    assert row["messageid"] == "32432423"
    assert row["voice_type"] == 2


def test_group_call_rows_have_exact_fields_and_types(client: TestClient, app1: str) -> None:
    info = post(client)["info"]
    assert (info["total"], info["page"], info["pageSize"]) == (2, 1, 10)
    connected, missed = info["rows"]
    assert list(connected) == GROUP_FIELDS
    assert connected == {
        "id": connected["id"],
        "result": "Successful connection",
        "cycle": 0,
        "time": "2019-09-09 09:00:00",
        "start_time": "2019-09-09 09:00:01",
        "end_time": "2019-09-09 09:00:20",
        "phone": "810022458",
        "basic_price": 0,
        "second": 19,
        "countryCode": "91",
        "messageid": "784522",
        "customer_price": 0,
        "show_phone": "085944247",
        "size": 0,
        "ivr_result": "12#",
    }
    assert isinstance(connected["id"], int)
    assert missed["result"] == "Unsuccessful connection"
    assert (missed["start_time"], missed["second"], missed["ivr_result"]) == ("", 0, "")


def test_verification_rows_have_exact_fields(client: TestClient, app1: str) -> None:
    rows = post(client, voiceType="1")["info"]["rows"]
    assert [list(r) for r in rows] == [VERIFICATION_FIELDS, VERIFICATION_FIELDS]
    assert [r["voice_type"] for r in rows] == [1, 2]
    assert all("basic_price" not in r and "ivr_result" not in r for r in rows)


def test_extended_adds_cost_and_hangup_fields(client: TestClient, app1: str) -> None:
    rows = post(client, voiceType="1", extended="1")["info"]["rows"]
    assert list(rows[0]) == [
        *VERIFICATION_FIELDS,
        "cost",
        "cost_status",
        "hangup_cause",
        "hangup_disposition",
    ]
    assert rows[1]["record_url"] == "https://r.example.com/n1.wav"
    assert (rows[0]["cost"], rows[0]["cost_status"]) == (0, "pending")
    assert post(client, voiceType="1", extended="0")["info"]["rows"][0].keys() == set(
        VERIFICATION_FIELDS
    )


def test_zh_app_gets_chinese_results(client: TestClient, db: Database, app1: str) -> None:
    AppStore(db).update("app1", {"language": "zh"}, now=1)
    assert [r["result"] for r in post(client)["info"]["rows"]] == ["成功接通", "未接通"]


def test_times_render_in_the_apps_timezone(client: TestClient, db: Database, app1: str) -> None:
    AppStore(db).update("app1", {"timezone": "UTC"}, now=1)
    info = post(client, start_time="2019-09-09 01:00:00", end_time="2019-09-09 01:00:59")["info"]
    assert [r["time"] for r in info["rows"]] == ["2019-09-09 01:00:00", "2019-09-09 01:00:05"]
    assert post(client)["info"]["total"] == 0  # 09:00 UTC holds nothing


def test_messageid_filter(client: TestClient, app1: str) -> None:
    assert post(client, messageid="784522")["info"]["total"] == 2
    assert post(client, messageid="nope")["info"]["total"] == 0


def test_window_is_inclusive(client: TestClient, app1: str) -> None:
    info = post(client, start_time="2019-09-09 09:00:00", end_time="2019-09-09 09:00:05")["info"]
    assert info["total"] == 2
    info = post(client, start_time="2019-09-09 09:00:01", end_time="2019-09-09 09:00:04")["info"]
    assert info["total"] == 0


def test_page_past_the_end_keeps_the_true_total(client: TestClient, app1: str) -> None:
    info = post(client, page="3", page_size="1")["info"]
    assert (info["total"], info["page"], info["pageSize"], info["rows"]) == (2, 3, 1, [])


def test_multipart_and_query_string_are_accepted(client: TestClient, app1: str) -> None:
    multipart = client.post(QUERY_PATH, files={k: (None, v) for k, v in form().items()}).json()
    assert multipart["info"]["total"] == 2
    query = client.post(QUERY_PATH, params=form()).json()
    assert query["info"]["total"] == 2
    mixed = client.post(QUERY_PATH, params=form(voiceType=None), data={"voiceType": "1"}).json()
    assert mixed["info"]["total"] == 2
    assert mixed["info"]["rows"][0]["voice_type"] == 1


def test_charset_parameter_is_honoured(client: TestClient, app1: str) -> None:
    from urllib.parse import urlencode

    body = urlencode(form(messageid="消息"), encoding="gbk")
    response = client.post(
        QUERY_PATH,
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded; charset=GBK"},
    )
    assert response.json()["code"] == "1"


# For tests of the request's parsing and validation alone: the database cannot change
# their answers, so they run on SQLite only.
sqlite_only = pytest.mark.parametrize("any_database_url", ["sqlite"], indirect=True)


def error(client: TestClient, **kwargs: Any) -> tuple[str, str]:
    response = client.post(QUERY_PATH, **kwargs)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"code", "info", "error"}
    assert body["code"] == "0"
    return body["error"], body["info"]


@pytest.mark.parametrize(
    ("overrides", "slug", "message"),
    [
        ({"appkey": None}, "invalid_parameter", "appkey is required"),
        ({"secretkey": ""}, "invalid_parameter", "secretkey is required"),
        ({"voiceType": None}, "invalid_parameter", "voiceType is required"),
        ({"voiceType": "2"}, "invalid_parameter", "voiceType must be 0 or 1"),
        (
            {"start_time": "2019-09-09T09:00:00"},
            "invalid_parameter",
            "start_time must be yyyy-MM-dd HH:mm:ss",
        ),
        (
            {"end_time": "2019-02-30 00:00:00"},
            "invalid_parameter",
            "end_time is not a real date and time",
        ),
        (
            {"end_time": "2019-09-09 08:00:00"},
            "invalid_parameter",
            "start_time must not be after end_time",
        ),
        (
            {"end_time": "2019-09-10 09:00:01"},
            "range_too_large",
            "end_time - start_time must not exceed 24 hours",
        ),
        ({"page": "0"}, "invalid_parameter", "page must be a whole number from 1 to 1000000000"),
        ({"page": "-1"}, "invalid_parameter", "page must be a whole number from 1 to"),
        ({"page": "1.5"}, "invalid_parameter", "page must be a whole number from 1 to"),
        ({"page": "9999999999"}, "invalid_parameter", "page must be a whole number from 1 to"),
        ({"page_size": None}, "invalid_parameter", "page_size is required"),
        ({"page_size": "1001"}, "invalid_parameter", "page_size must be a whole number from 1 to"),
        ({"page_size": "0"}, "invalid_parameter", "page_size must be a whole number from 1 to"),
        ({"messageid": "m" * 129}, "invalid_parameter", "messageid must be at most 128"),
        ({"extended": "yes"}, "invalid_parameter", "extended must be 0 or 1"),
    ],
)
@sqlite_only  # parameter validation only
def test_every_bad_parameter_gets_its_slug(
    client: TestClient, app1: str, overrides: dict[str, str | None], slug: str, message: str
) -> None:
    got_slug, got_message = error(client, data=form(**overrides))
    assert got_slug == slug
    assert got_message.startswith(message)


@pytest.mark.parametrize("overrides", [{"secretkey": "wrong"}, {"appkey": "nobody"}])
def test_bad_credentials_get_auth_failed(
    client: TestClient, app1: str, overrides: dict[str, str]
) -> None:
    """The credentials are checked against the stored apps: on every database."""
    assert error(client, data=form(**overrides)) == (
        "auth_failed",
        "appkey or secretkey is incorrect",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"json": {"appkey": "app1"}}, "Content-Type must be application/x-www-form-urlencoded"),
        (
            {
                "content": b"appkey=%FF%FE",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            "form body is not valid utf-8",
        ),
        (
            {
                "content": b"appkey=a",
                "headers": {"content-type": "application/x-www-form-urlencoded; charset=klingon"},
            },
            "unknown charset 'klingon'",
        ),
        (
            {
                "content": b"x=" + b"a" * 70_000,
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            "request body must be at most 65536 bytes",
        ),
        (
            {
                "content": "&".join(f"f{i}=1" for i in range(60)).encode(),
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            "at most 50 form fields",
        ),
        (
            {"content": b"--xx\r\nbroken", "headers": {"content-type": "multipart/form-data"}},
            "multipart body: Missing boundary",
        ),
        (
            {
                "content": b"--xx\r\nbroken",
                "headers": {"content-type": "multipart/form-data; boundary=xx"},
            },
            "appkey is required",
        ),
        ({"files": {"appkey": ("a.txt", b"app1")}}, "appkey must be a plain form field"),
        (
            {"data": {"appkey": "app1"}, "params": {"appkey": "app2"}},
            "appkey is given more than once with different values",
        ),
    ],
)
@sqlite_only  # body parsing only
def test_unreadable_bodies_are_invalid_parameter(
    client: TestClient, app1: str, kwargs: dict[str, Any], message: str
) -> None:
    slug, info = error(client, **kwargs)
    assert slug == "invalid_parameter"
    assert info.startswith(message), info


@sqlite_only  # routing only
def test_other_methods_get_405_with_the_envelope(client: TestClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, QUERY_PATH)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.json()["error"] == "invalid_parameter"


def test_out_of_window(settings: Settings, db: Database, app1: str) -> None:
    ticks = iter(range(100))  # eight days after the data, one second per request

    def clock() -> float:
        return 1567990800.0 + 8 * 86400 + next(ticks)

    with TestClient(create_app(settings, db, clock=clock)) as client:
        slug, message = error(client, data=form())
        assert (slug, message) == ("out_of_window", "start_time must be within the last 7 days")
        assert (
            post(client, start_time="2019-09-11 09:00:00", end_time="2019-09-12 09:00:00")["code"]
            == "1"
        )


def test_rate_limit_per_appkey_with_retry_after(
    settings: Settings, db: Database, app1: str
) -> None:
    AppStore(db).update("app1", {"rate_limit": 1.0}, now=1)
    make_app(db, "app2", secretkey="secret2", rate_limit=1.0)
    now = [1567990800.0]
    with TestClient(
        create_app(settings.model_copy(update={"max_age_days": 0}), db, clock=lambda: now[0])
    ) as client:
        assert post(client)["code"] == "1"
        now[0] += 0.25
        response = client.post(QUERY_PATH, data=form())
        assert response.json() == {
            "code": "0",
            "info": "appkey access rate limit",
            "error": "rate_limited",
        }
        assert response.headers["retry-after"] == "1"
        assert post(client, appkey="app2", secretkey="secret2")["code"] == "1"  # own budget
        now[0] += 0.75
        assert post(client)["code"] == "1"


@pytest.mark.parametrize(("rate", "burst"), [(1.0, 1), (5.0, 5), (2.5, 3)])
def test_an_app_may_send_one_seconds_worth_at_once_then_its_rate(
    settings: Settings, db: Database, app1: str, rate: float, burst: int
) -> None:
    AppStore(db).update("app1", {"rate_limit": rate}, now=1)
    now = [1567990800.0]
    app = create_app(settings.model_copy(update={"max_age_days": 0}), db, clock=lambda: now[0])
    with TestClient(app) as client:
        assert [post(client)["code"] for _ in range(burst)] == ["1"] * burst  # back to back
        response = client.post(QUERY_PATH, data=form())
        assert response.json()["error"] == "rate_limited"
        assert response.headers["retry-after"] == "1"
        now[0] += 1 / rate  # then one more every 1/rate seconds
        assert post(client)["code"] == "1"
        assert error(client, data=form())[0] == "rate_limited"


@pytest.fixture
def limited(
    settings: Settings, db: Database, app1: str
) -> Iterator[tuple[TestClient, list[float]]]:
    """A client of an app limited to one query a second, and the server's clock."""
    AppStore(db).update("app1", {"rate_limit": 1.0}, now=1)
    now = [1567990800.0]
    app = create_app(settings.model_copy(update={"max_age_days": 0}), db, clock=lambda: now[0])
    with TestClient(app) as client:
        yield client, now


def test_a_bad_request_spends_a_token_and_a_refusal_comes_first(
    limited: tuple[TestClient, list[float]],
) -> None:
    client, now = limited
    assert post(client)["code"] == "1"
    now[0] += 0.25
    assert error(client, data=form(voiceType="7"))[0] == "rate_limited"
    now[0] += 0.75
    assert error(client, data=form(voiceType="7"))[0] == "invalid_parameter"
    now[0] += 0.25
    assert error(client, data=form())[0] == "rate_limited"  # the bad request's token


@pytest.mark.parametrize(
    "overrides",
    [
        # Nothing in the window: the page read that takes the token finds no rows, and the
        # page is read again (in a snapshot) without taking another.
        {"start_time": "2019-09-09 10:00:00", "end_time": "2019-09-09 10:00:59"},
        # A deep page of a window never sought: the token is taken before the seek.
        {"page": "50"},
        # By messageid: no page read to carry the token.
        {"messageid": "784522"},
    ],
)
def test_every_read_takes_exactly_one_token(
    limited: tuple[TestClient, list[float]], overrides: dict[str, str]
) -> None:
    client, now = limited
    for _ in range(2):
        # With a burst of one, a second token taken by the same request would refuse it.
        assert post(client, **overrides)["code"] == "1"
        now[0] += 0.5
        assert error(client, data=form(**overrides))[0] == "rate_limited"
        now[0] += 0.5


def test_failed_auth_does_not_spend_the_budget(settings: Settings, db: Database, app1: str) -> None:
    AppStore(db).update("app1", {"rate_limit": 1.0}, now=1)
    with TestClient(
        create_app(settings.model_copy(update={"max_age_days": 0}), db, clock=lambda: 1567990800.0)
    ) as client:
        assert error(client, data=form(secretkey="bad"))[0] == "auth_failed"
        assert post(client)["code"] == "1"


def test_storage_failure_is_internal_not_5xx(settings: Settings, db: Database, app1: str) -> None:
    with TestClient(create_app(settings.model_copy(update={"max_age_days": 0}), db)) as client:
        with db.writer.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE cdrs RENAME TO cdrs_gone")
        slug, message = error(client, data=form())
        assert (slug, message) == ("internal", "internal error, please retry")


def test_an_unexpected_error_is_answered_in_the_envelope(
    client: TestClient, db: Database, app1: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a storage error: an app whose stored timezone no longer exists (edited by hand,
    or dropped from the system's zone data). The query path still answers NXCloud's
    envelope, logs the traceback, and serves other requests."""
    with db.writer.begin() as conn:
        conn.exec_driver_sql("UPDATE apps SET timezone = 'Gone/Zone' WHERE appkey = 'app1'")
    assert error(client, data=form()) == ("internal", "internal error, please retry")
    assert "query failed unexpectedly" in caplog.text
    assert "Gone/Zone" in caplog.text  # the traceback names the cause
    assert error(client, data=form(secretkey="bad"))[0] == "auth_failed"


def test_logs_never_carry_secrets(
    client: TestClient, app1: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.post(QUERY_PATH, params=form(secretkey="secret1"))
    client.post(QUERY_PATH, data=form(secretkey="wrong-secret-value"))
    client.post(QUERY_PATH, data=form(appkey="secret-in-the-appkey-field"))
    # The test client's own httpx log shows the URL it sent; only the server's logs count.
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(f"{r.getMessage()} {vars(r)}" for r in server)
    assert "request" in text
    for secret in ("secret1", "wrong-secret-value", "secret-in-the-appkey-field"):
        assert secret not in text
