"""``GET /v1/analytics`` through the real ASGI app on SQLite and PostgreSQL: the answer is
the plain GROUP BY's, an app reaches only its own figures, the operator any app's, and
every bad request is a 4xx problem naming what to fix."""

from __future__ import annotations

import ast
import base64
import csv
import inspect
import io
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from tests.support.client import load, price_everything, recent_records
from tests.support.data import make_app
from voicecdr import analytics, apps
from voicecdr.api import QUERY_PATH, appauth, create_app
from voicecdr.api.openapi import openapi_document
from voicecdr.config import Settings
from voicecdr.errors import ConfigError
from voicecdr.models import App
from voicecdr.storage import AppStore, Database, ReportReader
from voicecdr.timefmt import zone

PATH = "/v1/analytics"
OPERATOR = "operator-token-0123456789"
SECRETS = {"app1": "secret1", "app2": "secret2"}
COUNTS = {"app1": 300, "app2": 120}  # app1 also has 60 pending calls
PENDING = 60


class Clock:
    """The rate limiter's clock, moved by the tests."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def data(db: Database) -> None:
    """Two apps in different timezones; app1's calls partly priced, app2's pending."""
    make_app(db, "app1", secretkey=SECRETS["app1"])
    make_app(db, "app2", secretkey=SECRETS["app2"], timezone="Asia/Kolkata")
    load(db, recent_records("app1", COUNTS["app1"], days=3, seed=1))
    price_everything(db, "app1")
    pending = recent_records("app1", PENDING, days=3, seed=2)
    for record in pending:
        record["call_id"] = f"late-{record['call_id']}"
    load(db, pending)
    load(db, recent_records("app2", COUNTS["app2"], days=3, seed=3))


def _tuned(settings: Settings, **changes: Any) -> Settings:
    update = {
        "operator_token": Settings(operator_token=OPERATOR).operator_token,
        "app_cache_seconds": 0,
        "auth_failures_per_client_appkey": 3,
        "auth_failures_per_client": 6,
        "auth_failure_window": 60,
        "max_age_days": 0,
        **changes,
    }
    return settings.model_copy(update=update)


@pytest.fixture
def client(settings: Settings, db: Database, data: None, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(_tuned(settings), db, clock), raise_server_exceptions=False) as c:
        yield c


def basic(appkey: str = "app1", secretkey: str | None = None) -> dict[str, str]:
    pair = f"{appkey}:{SECRETS.get(appkey, 'x') if secretkey is None else secretkey}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


BEARER = {"Authorization": f"Bearer {OPERATOR}"}


def window(**more: str) -> dict[str, str]:
    """The last four days and tomorrow, as dates in the app's timezone."""
    today = date.today()
    return {
        "from": (today - timedelta(days=4)).isoformat(),
        "to": (today + timedelta(days=2)).isoformat(),
        **more,
    }


def get(
    client: TestClient, params: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.get(PATH, params=params, headers=basic() if headers is None else headers)


def the_app(db: Database, appkey: str) -> App:
    app = AppStore(db).get(appkey)
    assert app is not None
    return app


def scanned(db: Database, appkey: str, params: dict[str, str]) -> dict[str, Any]:
    """The report by the plain GROUP BY over the CDRs, as the endpoint shows it."""
    app = the_app(db, appkey)
    query = analytics.parse_query(params, zone(app.timezone))
    return analytics.to_json(ReportReader(db).scan(app, query))


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert "groups" not in body
    assert "total" not in body
    return body


QUESTIONS = [
    {},
    {"group_by": "day,country_code"},
    {"group_by": "hour"},
    {"group_by": "prefix,service"},
    {"group_by": "hangup_cause", "connected": "false"},
    {"group_by": "week,hangup_disposition", "voice_type": "0"},
    {"group_by": "month", "cost_status": "final", "country_code": "91"},
    {"group_by": "day", "compare": "previous", "service": "group_call"},
]


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: ",".join(q) or "total")
def test_the_answer_is_the_plain_group_by(
    client: TestClient, db: Database, question: dict[str, str]
) -> None:
    params = window(**question)
    response = get(client, params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body == scanned(db, "app1", params)
    assert body["app"] == "app1"
    if not question:
        assert body["total"]["attempts"] == COUNTS["app1"] + PENDING
        assert body["total"]["pending"] == PENDING
        assert body["total"]["priced"] == COUNTS["app1"]
        assert body["total"]["cost"] != "0"


def test_compare_previous_adds_the_period_before(client: TestClient, db: Database) -> None:
    today = date.today()
    params = {
        "from": (today - timedelta(days=1)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
        "group_by": "day",
        "compare": "previous",
    }
    body = get(client, params).json()
    assert body == scanned(db, "app1", params)
    previous = body["previous"]
    assert previous["to"] == body["from"]
    assert previous["from"].startswith((today - timedelta(days=3)).isoformat())
    # The calls span three days before now: both periods hold some.
    assert previous["total"]["attempts"] > 0
    assert body["total"]["attempts"] > 0


def _csv(response: httpx.Response, appkey: str = "app1") -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        response.headers["content-disposition"] == f'attachment; filename="analytics-{appkey}.csv"'
    )
    assert response.headers["cache-control"] == "no-store"
    return list(csv.reader(io.StringIO(response.text)))


def test_csv_by_parameter_or_accept(client: TestClient, db: Database) -> None:
    params = window(group_by="day,country_code")
    app = the_app(db, "app1")
    expected = analytics.to_csv(
        ReportReader(db).scan(app, analytics.parse_query(params, zone(app.timezone)))
    )
    by_format = get(client, {**params, "format": "csv"})
    by_accept = client.get(PATH, params=params, headers={**basic(), "Accept": "text/csv"})
    assert by_format.text == by_accept.text == expected
    rows = _csv(by_format)
    assert rows[0] == ["day", "country_code", *analytics.METRICS]
    assert rows[-1][:2] == ["total", "total"]
    assert int(rows[-1][2]) == COUNTS["app1"] + PENDING  # attempts
    assert len(rows) == len(get(client, params).json()["groups"]) + 2


def test_csv_with_compare_marks_each_period(client: TestClient) -> None:
    rows = _csv(get(client, window(group_by="day", compare="previous", format="csv")))
    assert rows[0][:2] == ["period", "day"]
    assert {row[0] for row in rows[1:]} == {"current", "previous"}
    assert [row[:2] for row in rows if row[1] == "total"] == [
        ["current", "total"],
        ["previous", "total"],
    ]


@pytest.mark.parametrize(
    ("accept", "csv_wanted"),
    [
        ("text/csv", True),
        ("text/csv, application/json;q=0.9", True),
        ("text/*", True),
        ("application/json, text/csv", False),  # a tie: JSON
        ("text/csv;q=0.5, application/json", False),
        ("*/*", False),
        ("text/html,application/xhtml+xml,*/*;q=0.8", False),
        ("", False),
    ],
)
def test_accept_chooses_csv_only_when_it_ranks_first(
    client: TestClient, accept: str, csv_wanted: bool
) -> None:
    response = client.get(PATH, params=window(), headers={**basic(), "Accept": accept})
    assert response.status_code == 200
    kind = response.headers["content-type"]
    assert kind == ("text/csv; charset=utf-8" if csv_wanted else "application/json")
    # format= overrides the header.
    response = client.get(PATH, params=window(format="json"), headers={**basic(), "Accept": accept})
    assert response.headers["content-type"] == "application/json"


def test_the_operator_reads_any_app(client: TestClient, db: Database) -> None:
    params = window(group_by="day")
    for appkey in ("app1", "app2"):
        body = get(client, {**params, "app": appkey}, BEARER).json()
        assert body == scanned(db, appkey, {**params, "app": appkey})
        assert body["app"] == appkey
    # Days are each app's own: app2 keeps Kolkata's calendar.
    app2 = get(client, {**params, "app": "app2"}, BEARER).json()
    assert app2["timezone"] == "Asia/Kolkata"
    assert app2["from"].endswith("+05:30")
    assert app2["total"]["attempts"] == COUNTS["app2"]
    assert app2["total"]["pending"] == COUNTS["app2"]
    assert problem_of(get(client, params, BEARER), 400)["parameter"] == "app"
    missing = problem_of(get(client, {**params, "app": "ghost"}, BEARER), 404)
    assert missing["parameter"] == "app"


def test_an_app_reaches_only_its_own_figures(client: TestClient, db: Database) -> None:
    params = window(group_by="country_code")
    mine = get(client, {**params, "app": "app1"}).json()
    assert mine == scanned(db, "app1", params)
    assert mine == get(client, params).json()
    refused = problem_of(get(client, {**params, "app": "app2"}), 403)
    assert refused["parameter"] == "app"
    theirs = scanned(db, "app2", params)
    assert theirs["total"]["attempts"] == COUNTS["app2"]
    # Whatever app1 asks, the figures are app1's: its total never includes app2's calls.
    for question in QUESTIONS:
        body = get(client, window(**question)).json()
        assert body["app"] == "app1"
        assert body == scanned(db, "app1", window(**question))
    # app2's credentials see app2's.
    assert get(client, params, basic("app2")).json() == theirs


def test_wrong_credentials_are_refused(client: TestClient) -> None:
    for headers in (
        basic(secretkey="wrong"),
        basic("ghost", "x"),
        {},
        {"Authorization": "Basic !"},
    ):
        body = problem_of(get(client, window(), headers), 401)
        assert "figures" not in body
    response = get(client, window(), basic(secretkey="wrong"))
    assert response.headers["www-authenticate"] == 'Basic realm="voicecdr"'


def test_a_disabled_app_answers_as_a_wrong_secret(client: TestClient, db: Database) -> None:
    apps.set_enabled(AppStore(db), "app1", enabled=False)
    assert get(client, window()).status_code == 401
    # The operator still reads its figures; app2 is untouched.
    assert get(client, window(app="app1"), BEARER).status_code == 200
    assert get(client, window(), basic("app2")).status_code == 200
    apps.set_enabled(AppStore(db), "app1", enabled=True)
    assert get(client, window()).status_code == 200


def _locked(response: httpx.Response) -> None:
    body = problem_of(response, 429)
    assert "locked out" in body["detail"]
    assert int(response.headers["retry-after"]) >= 1


def test_failures_lock_the_address_out(client: TestClient, clock: Clock) -> None:
    for _ in range(3):
        assert get(client, window(), basic(secretkey="guess")).status_code == 401
    _locked(get(client, window(), basic(secretkey="guess")))
    _locked(get(client, window()))  # the right secret too: guessing tells nothing
    clock.now += 21  # one failure ages out of the 60 s window of 3
    assert get(client, window()).status_code == 200


def _query_api(client: TestClient, secretkey: str) -> dict[str, Any]:
    form = {
        "appkey": "app1",
        "secretkey": secretkey,
        "voiceType": "0",
        "start_time": "2019-09-09 00:00:00",
        "end_time": "2019-09-09 12:00:00",
        "page": "1",
        "page_size": "10",
    }
    body: dict[str, Any] = client.post(QUERY_PATH, data=form).json()
    return body


def test_failures_count_across_the_query_api_and_analytics(client: TestClient) -> None:
    for _ in range(3):
        assert _query_api(client, "guess")["error"] == "auth_failed"
    _locked(get(client, window()))
    assert "locked out" in _query_api(client, SECRETS["app1"])["info"]


def test_analytics_failures_lock_the_query_api_too(client: TestClient) -> None:
    for _ in range(3):
        assert get(client, window(), basic(secretkey="guess")).status_code == 401
    assert "locked out" in _query_api(client, SECRETS["app1"])["info"]


def test_wrong_operator_tokens_lock_the_address_out(client: TestClient) -> None:
    wrong = {"Authorization": "Bearer not-the-operator-token"}
    for _ in range(6):
        response = get(client, window(app="app1"), wrong)
        assert problem_of(response, 401)
        assert response.headers["www-authenticate"] == 'Bearer realm="voicecdr"'
    _locked(get(client, window(app="app1"), wrong))
    _locked(get(client, window(app="app1"), BEARER))


def test_the_app_rate_limit_applies_and_is_the_query_apis(
    settings: Settings, db: Database, data: None, clock: Clock
) -> None:
    apps.update_app(AppStore(db), "app1", rate_limit=1)
    with TestClient(create_app(_tuned(settings), db, clock), raise_server_exceptions=False) as c:
        assert get(c, window()).status_code == 200
        refused = get(c, window())
        assert problem_of(refused, 429)["detail"] == "appkey access rate limit"
        assert refused.headers["retry-after"] == "1"
        clock.now += 1
        assert _query_api(c, SECRETS["app1"])["code"] == "1"  # it takes the same token
        assert get(c, window()).status_code == 429
        clock.now += 1
        assert get(c, window()).status_code == 200
        # Another app's quota is its own.
        assert get(c, window(), basic("app2")).status_code == 200


BAD = [
    ({"from": "yesterday"}, "from"),
    ({"from": "2026-13-01"}, "from"),
    ({"to": "2026-12-01T25:00"}, "to"),
    ({"from": ""}, "from"),
    ({"from": "2026-12-02", "to": "2026-12-01"}, "to"),
    ({"from": "2026-12-01", "to": "2026-12-01"}, "to"),
    ({"from": "2024-01-01", "to": "2026-01-01"}, "to"),
    ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
    ({"to": "9999-12-31T23:59:59-14:00"}, "to"),
    ({"group_by": "destination_city"}, "group_by"),
    ({"group_by": "day,country_code,service"}, "group_by"),
    ({"group_by": "day,hour"}, "group_by"),
    ({"group_by": "day,day"}, "group_by"),
    ({"service": "fax"}, "service"),
    ({"voice_type": "2"}, "voice_type"),
    ({"country_code": "+91"}, "country_code"),
    ({"country_code": "12345"}, "country_code"),
    ({"connected": "maybe"}, "connected"),
    ({"cost_status": "free"}, "cost_status"),
    ({"compare": "last_year"}, "compare"),
    ({"format": "xml"}, "format"),
    ({"format": ""}, "format"),
    ({"page": "1"}, "page"),
]


@pytest.mark.parametrize(("change", "parameter"), BAD, ids=lambda v: str(v))
def test_each_bad_parameter_is_a_400_naming_it(
    client: TestClient, change: dict[str, str], parameter: str
) -> None:
    body = problem_of(get(client, window(**change)), 400)
    assert body["parameter"] == parameter, body
    assert body["title"] == "Bad Request"
    assert parameter in body["detail"] or "window" in body["detail"], body


def test_windows_far_from_now_are_answered(client: TestClient, db: Database) -> None:
    for params in (
        {"from": "1901-01-01", "to": "1901-02-01", "group_by": "week", "compare": "previous"},
        {"from": "8998-12-01", "to": "8999-01-01", "group_by": "month", "compare": "previous"},
    ):
        body = get(client, params).json()
        assert body == scanned(db, "app1", params)
        assert body["total"]["attempts"] == 0


def test_a_missing_window_bound_is_named(client: TestClient) -> None:
    assert problem_of(get(client, {"to": "2026-12-01"}), 400)["parameter"] == "from"
    assert problem_of(get(client, {"from": "2026-12-01"}), 400)["parameter"] == "to"


def test_a_repeated_parameter_is_a_400_naming_it(client: TestClient) -> None:
    query = "from=2026-12-01&to=2026-12-02&group_by=day&group_by=hour"
    response = client.get(f"{PATH}?{query}", headers=basic())
    body = problem_of(response, 400)
    assert body["parameter"] == "group_by"
    assert "more than once" in body["detail"]


def test_a_nul_character_is_refused_not_sent_to_the_database(client: TestClient) -> None:
    for params, headers in ((window(group_by="day\x00"), basic()), (window(app="a\x00"), BEARER)):
        body = problem_of(get(client, params, headers), 400)
        assert "NUL" in body["detail"]
    assert problem_of(get(client, window(), basic("app1\x00", "x")), 401)


def test_operator_access_needs_the_setting(
    settings: Settings, db: Database, data: None, clock: Clock
) -> None:
    unset = _tuned(settings, operator_token=None)
    with TestClient(create_app(unset, db, clock), raise_server_exceptions=False) as c:
        body = problem_of(get(c, window(app="app1"), BEARER), 503)
        assert "VOICECDR_OPERATOR_TOKEN" in body["detail"]
        assert OPERATOR not in body["detail"]
        assert get(c, window()).status_code == 200  # apps need no operator token


def test_wrong_methods_get_405(client: TestClient) -> None:
    response = client.post(PATH, params=window(), headers=basic())
    problem_of(response, 405)
    assert "GET" in response.headers["allow"]


def test_a_storage_failure_is_a_500_problem_without_details(
    sqlite_url: str, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(sqlite_url)
    try:
        make_app(db, "app1", secretkey=SECRETS["app1"])
        with db.writer.begin() as conn:
            conn.execute(sa.text("DROP TABLE rollup_days"))
        settings = Settings(database_url=sqlite_url, rate_limit_state=str(tmp_path / "rl"))
        with TestClient(create_app(settings, db), raise_server_exceptions=False) as c:
            body = problem_of(get(c, window(group_by="country_code")), 500)
        assert body["detail"] == "internal error, please retry"
        assert "analytics failed in storage" in caplog.text
    finally:
        db.close()


def test_the_openapi_document_describes_the_endpoint(client: TestClient, db: Database) -> None:
    doc = client.get("/openapi.json").json()
    operation = doc["paths"][PATH]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == analytics.PARAMETERS
    assert {"appBasic", "operatorToken"} <= set(doc["components"]["securitySchemes"])
    assert operation["security"] == [{"appBasic": []}, {"operatorToken": []}]
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    assert {"400", "401", "403", "404", "429", "500", "503"} <= set(operation["responses"])
    by_name = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert set(by_name["group_by"]["items"]["enum"]) >= {d.value for d in analytics.Dimension}
    # Real answers match the documented schema.
    schema = {"$ref": "#/components/schemas/AnalyticsReport", "components": doc["components"]}
    validator = Draft202012Validator(schema)
    for question in QUESTIONS:
        validator.validate(get(client, window(**question)).json())
    problem = {"$ref": "#/components/schemas/AnalyticsProblem", "components": doc["components"]}
    Draft202012Validator(problem).validate(get(client, window(format="x")).json())
    assert openapi_document(Settings())["paths"][PATH] == doc["paths"][PATH]


def test_the_operator_token_is_compared_in_constant_time() -> None:
    # The endpoint and the console's sign-in both check it with the authenticator.
    tree = ast.parse(inspect.getsource(appauth))
    (function,) = (
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "authenticate_operator"
    )
    calls = {ast.unparse(node.func) for node in ast.walk(function) if isinstance(node, ast.Call)}
    assert "hmac.compare_digest" in calls


def test_times_may_be_nxcloud_or_iso_with_an_offset(client: TestClient, db: Database) -> None:
    now = datetime.now(zone("Asia/Shanghai")).replace(microsecond=0)
    start = now - timedelta(days=2)
    forms = [
        {"from": start.strftime("%Y-%m-%d %H:%M:%S"), "to": now.strftime("%Y-%m-%d %H:%M:%S")},
        {"from": start.isoformat(), "to": now.isoformat()},
        {"from": start.astimezone(zone("UTC")).isoformat(), "to": now.isoformat()},
    ]
    answers = [get(client, {**f, "group_by": "hour"}).json() for f in forms]
    assert answers[0]["groups"] == answers[1]["groups"] == answers[2]["groups"]
    assert answers[0] == scanned(db, "app1", {**forms[0], "group_by": "hour"})


def test_the_operator_token_setting_is_checked_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICECDR_OPERATOR_TOKEN", "too-short-secret")
    assert Settings.from_env().operator_token is not None  # 16 characters: enough
    monkeypatch.setenv("VOICECDR_OPERATOR_TOKEN", "short-secret")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    assert "VOICECDR_OPERATOR_TOKEN: must be at least 16 characters" in str(caught.value)
    assert "short-secret" not in str(caught.value)
