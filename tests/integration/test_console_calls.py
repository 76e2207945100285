"""The console's Calls pages against the real app and database (SQLite and PostgreSQL):
every filter's rows and exact total against the stored rows filtered here, deep pages,
bad input shown by its field, the CSV download equal to the search (and to the query
API's rows, as ``voicecdr export`` writes them), a call's page, and a customer kept to
its own app's calls."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support.client import load, price_everything, recent_records
from tests.support.console import csrf_of, customer, operator
from tests.support.data import make_app
from voicecdr.api import create_app
from voicecdr.client._export import _cell
from voicecdr.config import Settings
from voicecdr.console.pages import calls as calls_page
from voicecdr.models import VoiceGroup
from voicecdr.storage import AppStore, Database, Outbox, window_rows
from voicecdr.storage.pages import ROW_FIELDS
from voicecdr.timefmt import zone

OPERATOR = "operator-Token-0123456789"
SECRETS = {"app1": "secret-one-1", "app2": "secret-two-2"}
NOW = int(time.time())
TZ = zone("Asia/Shanghai")
COL = {name: i for i, name in enumerate(ROW_FIELDS)}
Row = Any


def local(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, TZ).strftime("%Y-%m-%dT%H:%M")


# The search window: the records' day and an hour either side, [from, to).
FROM, TO = local(NOW - 26 * 3600), local(NOW + 3600)


@pytest.fixture
def data(db: Database) -> dict[str, int]:
    make_app(db, "app1", secretkey=SECRETS["app1"], callback_url="http://127.0.0.1:9/receipts")
    make_app(db, "app2", secretkey=SECRETS["app2"], timezone="Asia/Kolkata")
    load(db, recent_records("app1", 400, days=1, seed=1, now=NOW))
    price_everything(db, "app1")
    # Some calls after the rater's run: pending.
    load(db, recent_records("app1", 60, days=1, seed=9, now=NOW - 60))
    load(db, recent_records("app2", 50, days=1, seed=2, now=NOW))
    apps = AppStore(db)
    return {key: apps.get(key).id for key in ("app1", "app2")}  # type: ignore[union-attr]


@pytest.fixture
def client(settings: Settings, db: Database, data: dict[str, int]) -> Iterator[TestClient]:
    tuned = settings.model_copy(
        update={
            "operator_token": Settings(operator_token=OPERATOR).operator_token,
            "app_cache_seconds": 0,
            "max_span_hours": 48,
        }
    )
    with TestClient(create_app(tuned, db)) as c:
        yield c


@pytest.fixture
def app1(client: TestClient) -> TestClient:
    assert customer(client, "app1", SECRETS["app1"]).status_code == 303
    return client


def stored(
    db: Database, app_id: int, group: VoiceGroup, keep: Callable[[Row], bool], tz: str = ""
) -> list[Row]:
    """The app's rows of the window (in its timezone ``tz``, else Shanghai), in (time,
    id) order, filtered here in Python."""
    at = zone(tz) if tz else TZ
    start = int(datetime.strptime(FROM, "%Y-%m-%dT%H:%M").replace(tzinfo=at).timestamp())
    end = int(datetime.strptime(TO, "%Y-%m-%dT%H:%M").replace(tzinfo=at).timestamp()) - 1
    return [r for r in window_rows(db, app_id, start, end, group=group) if keep(r)]


def ids_on(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)">', html)]


def total_on(html: str) -> int:
    found = re.search(r'id="total" data-total="(\d+)"', html)
    assert found, html[:3000]
    return int(found.group(1))


def every_id(client: TestClient, params: dict[str, str]) -> tuple[int, list[int]]:
    """The search's total and its rows' ids, page after page."""
    first = client.get("/console/calls", params={**params, "size": "20"})
    assert first.status_code == 200, first.text
    total, ids, page = total_on(first.text), ids_on(first.text), 1
    while len(ids) < total:
        page += 1
        more = client.get("/console/calls", params={**params, "size": "20", "page": str(page)})
        assert total_on(more.text) == total
        found = ids_on(more.text)
        assert found, page
        ids += found
    return total, ids


def some(rows: list[Row], name: str) -> Any:
    """A value of column ``name`` that most rows do not share (a real filter)."""
    values = [r[COL[name]] for r in rows]
    return sorted(set(values), key=values.count)[len(set(values)) // 2]


def test_each_filter_gives_the_stored_rows_and_their_exact_total(
    app1: TestClient, db: Database, data: dict[str, int]
) -> None:
    group = VoiceGroup.VERIFICATION
    every = stored(db, data["app1"], group, lambda r: True)
    assert len(every) > 100
    phone = some(every, "phone")
    country = some(every, "country_code")
    messageid = some(every, "messageid")
    prefix = phone[:3]
    cases: list[tuple[dict[str, str], Callable[[Row], bool]]] = [
        ({}, lambda r: True),
        ({"phone": phone}, lambda r: r[COL["phone"]] == phone),
        ({"phone": prefix, "match": "prefix"}, lambda r: r[COL["phone"]].startswith(prefix)),
        ({"country": "+" + country}, lambda r: r[COL["country_code"]] == country),
        ({"connected": "yes"}, lambda r: bool(r[COL["connected"]])),
        ({"connected": "no"}, lambda r: not r[COL["connected"]]),
        ({"cost_status": "pending"}, lambda r: r[COL["cost_status"]] == 0),
        ({"cost_status": "final"}, lambda r: r[COL["cost_status"]] == 1),
        ({"messageid": messageid}, lambda r: r[COL["messageid"]] == messageid),
        (
            {"messageid": messageid, "connected": "yes"},
            lambda r: r[COL["messageid"]] == messageid and bool(r[COL["connected"]]),
        ),
        (
            {"country": country, "connected": "no", "cost_status": "final"},
            lambda r: (
                r[COL["country_code"]] == country
                and not r[COL["connected"]]
                and r[COL["cost_status"]] == 1
            ),
        ),
    ]
    for params, keep in cases:
        expected = [r[COL["id"]] for r in stored(db, data["app1"], group, keep)]
        query = {"from": FROM, "to": TO, "voice_type": "1", **params}
        assert every_id(app1, query) == (len(expected), expected), params
    assert any(r[COL["cost_status"]] == 0 for r in every)  # the pending case is not empty


@pytest.mark.parametrize("params", [{}, {"connected": "yes"}, {"match": "prefix"}])
def test_a_deep_page_is_the_same_rows_as_reading_up_to_it(
    app1: TestClient, db: Database, data: dict[str, int], params: dict[str, str]
) -> None:
    group = VoiceGroup.VERIFICATION
    every = stored(db, data["app1"], group, lambda r: True)
    if "match" in params:  # the commonest first digit: a prefix many numbers share
        firsts = [r[COL["phone"]][0] for r in every]
        params = {**params, "phone": max(set(firsts), key=firsts.count)}
    keep: dict[str, Callable[[Row], bool]] = {
        "connected": lambda r: bool(r[COL["connected"]]),
        "phone": lambda r: r[COL["phone"]].startswith(params["phone"]),
    }
    expected = [r[COL["id"]] for r in every if all(keep[k](r) for k in params if k in keep)]
    pages = -(-len(expected) // 20)
    assert pages >= 2
    for page in (pages, pages - 1, 2):
        answer = app1.get(
            "/console/calls",
            params={
                "from": FROM,
                "to": TO,
                "voice_type": "1",
                "size": "20",
                "page": str(page),
                **params,
            },
        )
        assert answer.status_code == 200
        assert total_on(answer.text) == len(expected)
        assert ids_on(answer.text) == expected[(page - 1) * 20 : page * 20]
        assert 'aria-current="page"' in answer.text.split('class="pager"')[1]
    beyond = app1.get(
        "/console/calls",
        params={"from": FROM, "to": TO, "voice_type": "1", "page": "9999", **params},
    )
    assert beyond.status_code == 200
    assert ids_on(beyond.text) == []
    assert total_on(beyond.text) == len(expected)
    assert f"This search has {-(-len(expected) // 50)} pages" in beyond.text


def test_page_links_keep_the_search_in_the_url(app1: TestClient) -> None:
    answer = app1.get(
        "/console/calls",
        params={"from": FROM, "to": TO, "voice_type": "1", "connected": "yes", "size": "20"},
    )
    links = re.findall(r'href="/console/calls\?([^"]+)"', answer.text)
    assert links, "a multi-page search links its pages"
    for link in links:
        assert "connected=yes" in link
        assert "voice_type=1" in link
        assert "size=20" in link
    # The search's own form is GET, and fills in what was searched.
    assert 'method="get" action="/console/calls"' in answer.text
    assert '<option value="yes" selected>' in answer.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-45T99:00"}, "to"),
        ({"from": TO, "to": FROM}, "to"),
        ({"from": "2026-01-01T00:00", "to": "2026-02-01T00:00"}, "to"),
        ({"voice_type": "7"}, "voice_type"),
        ({"phone": "+86 abc"}, "phone"),
        ({"country": "12345"}, "country"),
        ({"connected": "maybe"}, "connected"),
        ({"cost_status": "free"}, "cost_status"),
        ({"messageid": "x" * 129}, "messageid"),
        ({"size": "1000000"}, "size"),
        ({"match": "regex"}, "match"),
    ],
)
def test_bad_input_is_a_message_by_its_field(
    app1: TestClient, params: dict[str, str], field: str
) -> None:
    for path in ("/console/calls", "/console/calls/export.csv"):
        answer = app1.get(path, params={"from": FROM, "to": TO, **params})
        assert answer.status_code == 400, (path, answer.text[:500])
        assert answer.headers["content-type"].startswith("text/html")
        assert (
            f'id="f-{field}" name="{field}" aria-invalid="true" aria-describedby="e-{field}"'
            in (answer.text)
        )
        assert f'<p class="field-error" id="e-{field}">' in answer.text
        assert 'id="total"' not in answer.text


@pytest.mark.parametrize("page", ["0", "abc", "-1", "99999999999"])
def test_a_bad_page_number_is_a_message_not_a_500(app1: TestClient, page: str) -> None:
    answer = app1.get("/console/calls", params={"page": page})
    assert answer.status_code == 400
    assert "The page must be a whole number" in answer.text


def test_the_csv_is_the_search_streamed_in_the_export_format(
    app1: TestClient, db: Database, data: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calls_page, "CSV_CHUNK", 7)  # many chunks from a small data set
    params = {"from": FROM, "to": TO, "voice_type": "1", "connected": "yes"}
    total, ids = every_id(app1, params)
    with app1.stream("GET", "/console/calls/export.csv", params=params) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert "content-length" not in answer.headers  # streamed
        start, end = (re.sub(r"[-:]", "", x) for x in (FROM, TO))
        assert answer.headers["content-disposition"] == (
            f'attachment; filename="calls-app1-{start}-{end}.csv"'
        )
        text = "".join(answer.iter_text())
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == calls_page.csv_fields(VoiceGroup.VERIFICATION)
    assert "cost" in rows[0]
    assert "cost_status" in rows[0]
    assert [int(r[0]) for r in rows[1:]] == ids
    assert len(ids) == total > 7


def test_csv_rows_are_the_query_apis_rows_as_voicecdr_export_writes_them(
    app1: TestClient,
) -> None:
    """For a window the API takes (at most 24 hours, inclusive seconds)."""
    start = datetime.fromtimestamp(NOW - 20 * 3600, TZ).replace(second=0, tzinfo=None)
    end = start + timedelta(hours=20)
    api = app1.post(
        "/api/voiceSms/getVoiceCdr",
        data={
            "appkey": "app1",
            "secretkey": SECRETS["app1"],
            "voiceType": "1",
            "start_time": start.strftime("%Y-%m-%d %H:%M:%S"),
            "end_time": (end - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S"),
            "page": "1",
            "page_size": "1000",
            "extended": "1",
        },
    )
    body = json.loads(api.text, parse_float=Decimal)
    assert body["code"] == "1", body
    fields = calls_page.csv_fields(VoiceGroup.VERIFICATION)
    expected = [[_cell(row.get(name)) for name in fields] for row in body["info"]["rows"]]
    assert len(expected) == body["info"]["total"] > 10
    answer = app1.get(
        "/console/calls/export.csv",
        params={
            "from": start.strftime("%Y-%m-%dT%H:%M"),
            "to": end.strftime("%Y-%m-%dT%H:%M"),
            "voice_type": "1",
        },
    )
    assert list(csv.reader(io.StringIO(answer.text)))[1:] == expected


def test_a_calls_page_shows_every_field_its_price_and_its_receipt(
    app1: TestClient, db: Database, data: dict[str, int]
) -> None:
    priced = stored(db, data["app1"], VoiceGroup.VERIFICATION, lambda r: r[COL["cost_status"]] == 1)
    connected = next(r for r in priced if r[COL["connected"]] and r[COL["billsec"]] > 0)
    (receipt,) = [
        x for x in Outbox(db).list(app_id=data["app1"], limit=10_000) if x.cdr_id == connected[0]
    ]
    Outbox(db).failed(
        receipt.id, status=503, error="HTTP 503 Service Unavailable", retry_at=NOW + 60
    )
    answer = app1.get(f"/console/calls/{connected[COL['id']]}")
    assert answer.status_code == 200, answer.text
    html = answer.text
    for name in ("messageid", "phone", "country_code", "hangup_cause", "show_phone"):
        assert str(connected[COL[name]]) in html, name
    cycle, size = connected[COL["cycle"]], connected[COL["size"]]
    assert f"{size} cycles x {cycle} s = {size * cycle} s" in html
    assert re.search(r'id="price-prefix"><th scope="row">[^<]+</th><td>\d*', html)
    assert "version 1" in html
    assert "HTTP 503" in html
    assert "HTTP 503 Service Unavailable" in html
    assert 'data-status="pending"' in html

    pending = stored(
        db, data["app1"], VoiceGroup.VERIFICATION, lambda r: r[COL["cost_status"]] == 0
    )
    answer = app1.get(f"/console/calls/{pending[0][COL['id']]}")
    assert "Not priced yet" in answer.text
    assert 'id="no-receipt"' in answer.text


def test_a_customer_never_reaches_another_apps_calls(
    app1: TestClient, db: Database, data: dict[str, int]
) -> None:
    theirs = stored(db, data["app2"], VoiceGroup.VERIFICATION, lambda r: True, "Asia/Kolkata")
    assert theirs
    missing = app1.get("/console/calls/999999999")
    assert app1.get("/console/calls/99999999999999999999999").status_code == 404  # no 500
    assert app1.get("/console/calls/-1").status_code == 404
    other = app1.get(f"/console/calls/{theirs[0][COL['id']]}")
    assert missing.status_code == other.status_code == 404
    # The same answer but for the path it names.
    their_id = str(theirs[0][COL["id"]])
    assert other.text.replace(their_id, "N") == missing.text.replace("999999999", "N")
    for path in ("/console/calls", "/console/calls/export.csv", f"/console/calls/{theirs[0][0]}"):
        assert app1.get(path, params={"app": "app2"}).status_code == 404
    # Searching everything app1 may see: none of app2's rows.
    _, ids = every_id(app1, {"from": FROM, "to": TO, "voice_type": "1"})
    assert ids
    assert not set(ids) & {r[COL["id"]] for r in theirs}
    csv_ids = {
        int(r[0])
        for r in list(
            csv.reader(
                io.StringIO(
                    app1.get("/console/calls/export.csv", params={"from": FROM, "to": TO}).text
                )
            )
        )[1:]
    }
    assert csv_ids
    assert not csv_ids & {r[COL["id"]] for r in theirs}


def test_the_operator_sees_the_app_chosen_in_the_switcher(
    client: TestClient, db: Database, data: dict[str, int]
) -> None:
    assert operator(client, OPERATOR).status_code == 303
    page = client.get("/console/calls", params={"from": FROM, "to": TO})
    switched = client.post(
        "/console/switch",
        data={"csrf": csrf_of(page.text), "app": "app2", "next": "/console/calls"},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    theirs = [
        r[COL["id"]]
        for r in stored(db, data["app2"], VoiceGroup.VERIFICATION, lambda r: True, "Asia/Kolkata")
    ]
    params = {"from": FROM, "to": TO, "voice_type": "1"}
    assert every_id(client, params) == (len(theirs), theirs)
    assert client.get(f"/console/calls/{theirs[0]}").status_code == 200


def test_an_operators_app_in_the_url_stays_in_the_page_links(
    client: TestClient, data: dict[str, int]
) -> None:
    assert operator(client, OPERATOR).status_code == 303  # its switcher is on app1
    answer = client.get(
        "/console/calls", params={"app": "app2", "from": FROM, "to": TO, "size": "20"}
    )
    assert answer.status_code == 200
    links = re.findall(r'href="/console/calls(?:/export\.csv)?\?([^"]+)"', answer.text)
    assert links
    assert all("app=app2" in link for link in links)


def test_the_calls_pages_in_chinese(app1: TestClient, db: Database, data: dict[str, int]) -> None:
    page = app1.get("/console/calls")
    changed = app1.post(
        "/console/lang",
        data={"csrf": csrf_of(page.text), "lang": "zh", "next": "/console/calls"},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    listed = app1.get("/console/calls", params={"from": FROM, "to": TO, "phone": "x"})
    assert '<html lang="zh-Hans">' in listed.text
    assert "查询通话" in listed.text
    assert "只能填数字" in listed.text  # the field's message, in Chinese
    one = stored(db, data["app1"], VoiceGroup.VERIFICATION, lambda r: True)[0]
    detail = app1.get(f"/console/calls/{one[COL['id']]}")
    assert "费用明细" in detail.text
    assert "回执投递" in detail.text
