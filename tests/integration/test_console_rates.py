"""The console's Rate plan page on SQLite and PostgreSQL: plan versions (current marked),
a version's rates, and the cost check, whose answer must equal what the rater stores for
the same call."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.support.console_pages import signed_in, tuned
from tests.support.data import canonical, make_app
from voicecdr import demo, money
from voicecdr.config import Settings
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.rating import parse_plan_csv
from voicecdr.storage import AppStore, CdrWriter, Database, RatingStore
from voicecdr.workers.rater import Rater

SECRET = "secret-one-1"
OLD_PLAN = "service,prefix,cycle,unit_price,basic_price\n*,86,60,0.1,0.01\n"


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = make_app(db, "app1", secretkey=SECRET).app
    ratings = RatingStore(db)
    ratings.import_plan(app.id, parse_plan_csv(OLD_PLAN), source="old.csv", now=1_600_000_000)
    ratings.import_plan(
        app.id, parse_plan_csv(demo.DEMO_PLAN), source="demo.csv", now=int(time.time())
    )
    make_app(db, "app2", secretkey="secret-two-2")
    with signed_in(tuned(settings), db, "app1", SECRET) as c:
        yield c


def check(client: TestClient, **params: str) -> tuple[int, str]:
    answer = client.get("/console/rates", params={"check": "1", **params})
    return answer.status_code, answer.text


def stored_cost(db: Database, **call: object) -> tuple[str, int]:
    """What the real rater charges for ``call`` ingested into app1: (cost, cycles)."""
    record = canonical(f"c{time.monotonic_ns()}", **call)  # type: ignore[arg-type]
    summary = Ingestor(AppStore(db), CdrWriter(db)).ingest([Item(0, record)])
    assert summary.rejected == []
    Rater(db).drain()
    app = AppStore(db).get("app1")
    assert app is not None
    (rows,) = list(RatingStore(db).window(app.id, 0, 2**40, chunk=1000))
    newest = max(rows, key=lambda r: r.cdr[0])
    charged = newest.charged
    assert charged is not None
    return money.text(charged.cost_nanos), charged.size


def test_the_versions_are_listed_with_the_current_one_marked(client: TestClient) -> None:
    page = client.get("/console/rates")
    assert page.status_code == 200
    assert re.findall(r'data-version="(\d+)"', page.text) == ["2", "1"]
    assert '<tr class="current" data-version="2">' in page.text
    assert "Rates of version 2" in page.text
    assert "demo.csv" in page.text
    assert "old.csv" in page.text
    rates = page.text.split('id="rates"')[1]
    assert rates.count("<tr>") == 1 + len(parse_plan_csv(demo.DEMO_PLAN))
    old = client.get("/console/rates?version=1")
    assert "Rates of version 1" in old.text
    assert "0.1" in old.text.split('id="rates"')[1]
    for missing in ("3", "x", "-1"):
        assert client.get(f"/console/rates?version={missing}").status_code == 404


@pytest.mark.parametrize(
    ("call", "form"),
    [
        # Connected group call to India: the 91 row, 20 s cycles.
        ({"phone": "+919812345678", "second": 65}, {"number": "+91 98123 45678", "second": "65"}),
        # The same number as national digits and a country code.
        (
            {"phone": "+919812345678", "second": 1},
            {"number": "9812345678", "country_code": "91", "second": "1"},
        ),
        # Not connected: the basic price.
        (
            {"phone": "+6281234567890", "second": 0, "connected": False},
            {"number": "+6281234567890", "second": "0", "connected": ""},
        ),
        # A verification call to the UK: the service's own empty-prefix row.
        (
            {"phone": "+447911123456", "second": 7, "service": "verification"},
            {"number": "+447911123456", "second": "7", "service": "verification"},
        ),
        # A notification call to Brazil: the * 55 row.
        (
            {"phone": "+5511912345678", "second": 31, "service": "notification"},
            {"number": "+5511912345678", "second": "31", "service": "notification"},
        ),
    ],
)
def test_the_cost_check_equals_what_the_rater_stores(
    client: TestClient, db: Database, call: dict[str, object], form: dict[str, str]
) -> None:
    fields = {"service": "group_call", "connected": "1", **form}
    if not fields["connected"]:
        del fields["connected"]
    status, page = check(client, **fields)
    assert status == 200, page
    cost = re.search(r'id="quote-cost">([^<]+)<', page)
    size = re.search(r'id="quote-size">(\d+)<', page)
    assert cost is not None, page
    assert size is not None, page
    record = {**call, "country_code": None}  # the phone is international
    assert (cost.group(1), int(size.group(1))) == stored_cost(db, **record)


def test_the_rate_row_that_applies_is_shown(client: TestClient) -> None:
    _, page = check(
        client, number="+919812345678", second="65", service="group_call", connected="1"
    )
    row = page.split('id="quote-rate">')[1].split("</dd>")[0]
    assert 'data-field="service">group_call<' in row
    assert 'data-field="prefix">91<' in row
    assert "0.012" in row
    assert 'id="quote-size">4<' in page  # ceil(65 / 20)
    assert 'id="quote-cost">0.048<' in page


def test_no_matching_rate_is_said_clearly(settings: Settings, db: Database) -> None:
    app = make_app(db, "cn", secretkey=SECRET).app
    RatingStore(db).import_plan(app.id, parse_plan_csv(OLD_PLAN), source="cn.csv", now=1)
    with signed_in(tuned(settings), db, "cn", SECRET) as client:
        status, page = check(client, number="+14155550123", second="30", service="group_call")
    assert status == 200
    assert "No rate in plan version 1 matches calls of this voice type to +14155550123." in page
    assert 'id="quote-cost"' not in page


def test_an_app_without_a_plan_is_told_so(settings: Settings, db: Database) -> None:
    make_app(db, "bare", secretkey=SECRET)
    with signed_in(tuned(settings), db, "bare", SECRET) as client:
        assert "This app has no rate plan yet." in client.get("/console/rates").text
        _, page = check(client, number="+14155550123", second="30", service="group_call")
    assert 'id="quote-problem">This app has no rate plan yet.' in page


@pytest.mark.parametrize(
    ("form", "problems"),
    [
        (
            {"number": "12ab", "country_code": "86", "second": "10"},
            ["phone: must contain digits only"],
        ),
        ({"number": "13800138000", "second": "10"}, ["country_code: is required"]),
        (
            {"number": "+8613800138000", "second": "-5"},
            ["second: must be a whole number, not a string"],
        ),
        (
            {"number": "+8613800138000", "second": "86401"},
            ["second: must be at most 86400 (24 hours)"],
        ),
        ({"number": "+86138", "second": "10"}, ["phone: '+86138': "]),
        (
            {"number": "+8613800138000", "country_code": "1", "second": "1"},
            ["phone: '+8613800138000' has country code 86, country_code says 1"],
        ),
        (
            {"number": "", "second": "", "service": "fax"},
            ["phone: is required", "service: must be one of", "second: must be a whole number"],
        ),
    ],
)
def test_bad_input_is_refused_with_ingest_s_own_messages(
    client: TestClient, form: dict[str, str], problems: list[str]
) -> None:
    status, page = check(client, **{"service": "group_call", **form})
    assert status == 400
    assert "The call cannot be priced as typed:" in page
    errors = page.split('id="check-errors"')[1].split("</div>")[0]
    for problem in problems:
        assert problem.replace("'", "&#39;") in errors, errors


def test_the_page_is_in_chinese_for_a_chinese_app(
    settings: Settings, db: Database, client: TestClient
) -> None:
    AppStore(db).update("app1", {"language": "zh"}, now=1)
    page = client.get(
        "/console/rates?check=1&number=%2B919812345678&second=65&service=group_call&connected=1"
    )
    assert "这通电话要多少钱" in page.text
    assert "费率方案版本" in page.text
    assert 'id="quote-cost">0.048<' in page.text


def test_a_customer_cannot_read_another_app_s_plan(client: TestClient) -> None:
    assert client.get("/console/rates?app=app2").status_code == 404
    assert client.get("/console/rates?app=app2&version=1").status_code == 404


def test_the_operator_reads_the_chosen_app_s_plan(
    settings: Settings, db: Database, client: TestClient
) -> None:
    with signed_in(tuned(settings), db) as operator:
        mine = operator.get("/console/rates?app=app1")
        theirs = operator.get("/console/rates?app=app2")
    assert "Rates of version 2" in mine.text
    assert 'name="app" value="app1"' in mine.text  # the check stays on the chosen app
    assert "This app has no rate plan yet." in theirs.text
