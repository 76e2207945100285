"""The console in a real browser: sign-in (customer, operator, refused), the overview's
figures against ``GET /v1/analytics`` for the same windows, its charts drawn, keyboard
use, and a customer kept to its own app."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.browser.conftest import Console, expect

Page = Any  # playwright.sync_api.Page (Playwright is imported only when the tier runs)


def sign_in_customer(page: Page, appkey: str, secretkey: str) -> None:
    page.goto("/console")
    page.get_by_label("Appkey").fill(appkey)
    page.get_by_label("Secretkey").fill(secretkey)
    page.locator("#customer-signin button[type=submit]").click()


def sign_in_operator(page: Page, token: str) -> None:
    page.goto("/console/signin")
    page.get_by_label("Operator token").fill(token)
    page.locator("#operator-signin button[type=submit]").click()


def shown(page: Page, table: str) -> dict[str, dict[str, str]]:
    """A figures table as {row key: {metric: raw value}}."""
    rows: dict[str, dict[str, str]] = {}
    for row in page.locator(f"#{table} tbody tr[data-key]").all():
        cells = row.locator("td[data-metric]").all()
        key = row.get_attribute("data-key") or ""
        rows[key] = {c.get_attribute("data-metric"): c.get_attribute("data-value") for c in cells}
    return rows


def analytics(console: Console, params: dict[str, str], auth: Any) -> dict[str, Any]:
    answer = httpx.get(f"{console.url}/v1/analytics", params=params, auth=auth, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def same(value: str | None, expected: object) -> bool:
    """A page's raw figure (a data-value) against the API's JSON value."""
    if expected is None:
        return value == ""
    if isinstance(expected, float):
        return value is not None and float(value) == expected
    return value == str(expected)


def check_overview(page: Page, console: Console, appkey: str, auth: Any, bearer: bool) -> None:
    """Every figure on the overview equals the API's for the same window."""
    extra = {"app": appkey} if bearer else {}
    window = {
        "from": page.locator("#from").input_value(),
        "to": page.locator("#to").input_value(),
        **extra,
    }
    parts = {
        "table-hourly": ("hour", "hour"),
        "table-country": ("country_code", "country_code"),
        "table-causes": ("hangup_cause", "hangup_cause"),
    }
    for table, (group_by, key) in parts.items():
        body = analytics(console, {**window, "group_by": group_by}, auth)
        expected = {str(g["key"][key] or ""): g for g in body["groups"]}
        rows = shown(page, table)
        assert set(rows) == set(expected), (table, rows.keys(), expected.keys())
        assert rows, f"{table}: the demo has calls in this window"
        for row_key, cells in rows.items():
            for metric, value in cells.items():
                assert same(value, expected[row_key][metric]), (table, row_key, metric)
    tiles = page.locator("#today")
    for period in ("today", "yesterday"):
        section = tiles.locator(f"[data-period={period}]").first
        params = {
            "from": section.get_attribute("data-from"),
            "to": section.get_attribute("data-to"),
            **extra,
        }
        total = analytics(console, params, auth)["total"]
        cells = tiles.locator(f"td[data-period={period}]").all()
        assert len(cells) == 4, period  # attempts, ASR, ACD, cost
        for cell in cells:
            metric = cell.get_attribute("data-metric")
            assert same(cell.get_attribute("data-value"), total[metric]), (period, metric)


def charts_carry(page: Page, console: Console, auth: Any, extra: dict[str, str]) -> None:
    """The numbers each chart is drawn from (its JSON in the page) are the API's."""
    window = {"from": page.locator("#from").input_value(), "to": page.locator("#to").input_value()}
    hourly = json.loads(page.locator("#data-hourly").text_content() or "")
    body = analytics(console, {**window, **extra, "group_by": "hour"}, auth)
    assert hourly["x"] == [g["key"]["hour"] for g in body["groups"]]
    assert hourly["series"] == [
        [g["attempts"] for g in body["groups"]],
        [g["answered"] for g in body["groups"]],
    ]
    assert hourly["zone"] == body["timezone"]
    country = json.loads(page.locator("#data-country").text_content() or "")
    body = analytics(console, {**window, **extra, "group_by": "country_code"}, auth)
    assert country["categories"] == [g["key"]["country_code"] for g in body["groups"]]
    assert country["series"] == [
        [g["asr"] for g in body["groups"]],
        [g["cost"] for g in body["groups"]],
    ]


def charts_drawn(page: Page) -> None:
    for chart in ("hourly", "country", "causes"):
        canvas = page.locator(f"#chart-{chart} canvas")
        expect(canvas.first).to_be_visible()  # drawn once the scripts have run
        box = canvas.first.bounding_box()
        assert box is not None
        assert box["width"] > 200, chart
        assert box["height"] > 100, chart


def test_a_customer_signs_in_and_reads_the_api_s_figures(page: Page, console: Console) -> None:
    sign_in_customer(page, console.appkey, console.secretkey)
    page.wait_for_url("**/console/overview")
    expect(page.locator("h1")).to_contain_text("Overview")
    expect(page.locator(".zone")).to_contain_text("Times in Asia/Shanghai")
    charts_drawn(page)
    auth = (console.appkey, console.secretkey)
    check_overview(page, console, "demo", auth, bearer=False)
    charts_carry(page, console, auth, {})


def test_the_operator_switches_apps_and_reads_each_one_s_figures(
    page: Page, console: Console
) -> None:
    sign_in_operator(page, console.operator_token)
    page.wait_for_url("**/console/overview")
    bearer = BearerAuth(console.operator_token)
    check_overview(page, console, "demo", bearer, bearer=True)
    page.get_by_label("App", exact=True).select_option(console.other[0])
    page.locator("form[action='/console/switch'] button").click()
    # The switch answers with the same URL: wait for the new page's words, not a load
    # state, which the old page already has until the navigation starts.
    expect(page.locator(".zone")).to_contain_text("Times in Asia/Kolkata")
    expect(page.locator("#app-switch")).to_have_value(console.other[0])
    check_overview(page, console, console.other[0], bearer, bearer=True)
    charts_carry(page, console, bearer, {"app": console.other[0]})
    charts_drawn(page)


def test_a_wrong_secret_is_refused_in_the_page(page: Page, console: Console) -> None:
    sign_in_customer(page, console.other[0], "not-the-secret")
    expect(page.get_by_role("alert")).to_contain_text("incorrect")
    assert page.url.endswith("/console/signin")
    assert console.other[1] not in console.server.logs()


def test_a_customer_cannot_open_another_app_by_editing_the_url(
    page: Page, console: Console
) -> None:
    sign_in_customer(page, console.other[0], console.other[1])
    page.wait_for_url("**/console/overview")
    answer = page.goto("/console/overview?app=demo")
    assert answer is not None
    assert answer.status == 404
    assert "Demo" not in page.content()
    page.goto("/console/overview")
    expect(page.locator(".who")).to_contain_text(console.other[0])
    expect(page.locator("#app-switch")).to_have_count(0)


def test_the_pages_work_from_the_keyboard(page: Page, console: Console) -> None:
    page.goto("/console/signin")
    page.keyboard.press("Tab")
    skip = page.locator(".skip")
    assert skip.evaluate("e => e === document.activeElement")
    assert skip.is_visible()
    page.keyboard.press("Enter")
    # Into the customer form and signed in without the mouse.
    page.locator("#appkey").focus()
    page.keyboard.type(console.appkey)
    page.keyboard.press("Tab")
    page.keyboard.type(console.secretkey)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/overview")
    assert page.evaluate("document.documentElement.lang") == "en"
    for field in page.locator("main input:not([type=hidden]), header select").all():
        field_id = field.get_attribute("id")
        assert field_id, field
        assert page.locator(f"label[for='{field_id}']").count() == 1, field_id


def test_the_chinese_page(page: Page, console: Console) -> None:
    sign_in_customer(page, console.appkey, console.secretkey)
    page.wait_for_url("**/console/overview")
    page.get_by_label("Language").select_option("zh")
    page.locator("form[action='/console/lang'] button").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")  # the new page
    expect(page.locator("h1")).to_contain_text("概览")


class BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request
