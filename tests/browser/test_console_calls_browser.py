"""The Calls pages in a real browser: a search and its exact total against the query
API, paging by keyboard, opening a call, downloading the search as CSV (a Playwright
download) and reading its rows, and a customer kept off another app's calls."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.browser.conftest import Console, expect
from tests.browser.test_console_browser import sign_in_customer

Page = Any  # playwright.sync_api.Page


def api_total(console: Console, start: datetime, end: datetime, voice_type: str) -> int:
    """The query API's total for the window ``[start, end)`` (local wall times)."""
    answer = httpx.post(
        f"{console.url}/api/voiceSms/getVoiceCdr",
        data={
            "appkey": console.appkey,
            "secretkey": console.secretkey,
            "voiceType": voice_type,
            "start_time": start.strftime("%Y-%m-%d %H:%M:%S"),
            "end_time": (end - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S"),
            "page": "1",
            "page_size": "1",
        },
        timeout=10,
    )
    body = answer.json()
    assert body["code"] == "1", body
    return int(body["info"]["total"])


def calls_search(**wanted: str) -> Callable[[str], bool]:
    """A test of a URL: the calls search page whose query holds ``wanted`` (name: value).

    The form page opened first has no query, and a call's page another path, so waiting
    for this URL waits for the new page, not a load state the old page already has."""

    def test(url: str) -> bool:
        parts = urlsplit(url)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        return parts.path.endswith("/console/calls") and all(
            query.get(name) == value for name, value in wanted.items()
        )

    return test


def search(page: Page, start: datetime, end: datetime, **fields: str) -> None:
    """Fill the search form like a person would, submit it, and wait for its answer."""
    page.goto("/console/calls")
    since, until = start.strftime("%Y-%m-%dT%H:%M"), end.strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("From", exact=True).fill(since)
    page.get_by_label("To (not included)").fill(until)
    for label, value in fields.items():
        page.get_by_label(label, exact=True).select_option(value)
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(calls_search(**{"from": since, "to": until}))


def window() -> tuple[datetime, datetime]:
    """The demo's last day, to the minute (in its app's timezone, Asia/Shanghai)."""
    from voicecdr.timefmt import zone

    now = datetime.now(zone("Asia/Shanghai")).replace(tzinfo=None, second=0, microsecond=0)
    return now - timedelta(hours=23), now + timedelta(minutes=1)


def test_search_page_and_open_a_call(page: Page, console: Console) -> None:
    sign_in_customer(page, console.appkey, console.secretkey)
    page.wait_for_url("**/console/overview")
    start, end = window()
    search(page, start, end, **{"Voice type": "1", "Rows per page": "20"})
    assert "voice_type=1" in page.url
    assert "size=20" in page.url
    total = int(page.locator("#total").get_attribute("data-total") or "")
    assert total == api_total(console, start, end, "1") > 40
    rows = page.locator("#calls tbody tr")
    expect(rows).to_have_count(20)
    first_page = [r.get_attribute("data-id") for r in rows.all()]
    # To page 2 by keyboard: focus its link, press Enter.
    link = page.locator(".pager a", has_text="Next")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(calls_search(page="2"))
    expect(page.locator(".pager a[aria-current=page]")).to_have_text("2")
    second = [r.get_attribute("data-id") for r in page.locator("#calls tbody tr").all()]
    assert second
    assert not set(second) & set(first_page)
    # Open the first call of the page.
    call_id = second[0]
    page.locator(f"#calls tr[data-id='{call_id}'] a").click()
    page.wait_for_url(f"**/console/calls/{call_id}?**")
    heading = re.compile("^" + re.escape(f"Call {call_id}"))
    expect(page.locator("h1")).to_have_text(heading, use_inner_text=True)
    expect(page.locator("#fields")).to_be_visible()
    expect(page.locator("#price-status")).to_be_visible()
    # The call's own URL carries page=2 too (for this link): wait for the search's path.
    page.get_by_role("link", name="Back to the search").click()
    page.wait_for_url(calls_search(page="2"))
    expect(page.locator(".pager a[aria-current=page]")).to_have_text("2")


def test_download_the_search_as_csv(page: Page, console: Console) -> None:
    sign_in_customer(page, console.appkey, console.secretkey)
    page.wait_for_url("**/console/overview")
    start, end = window()
    search(page, start, end, **{"Voice type": "0", "Connected": "yes"})
    total = int(page.locator("#total").get_attribute("data-total") or "")
    assert total > 0
    with page.expect_download() as info:
        page.locator("#download").click()
    download = info.value
    assert download.suggested_filename == (f"calls-demo-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}.csv")
    with open(download.path(), encoding="utf-8") as file:
        rows = list(csv.reader(io.StringIO(file.read())))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["id", "result", "cycle"]
    assert "cost" in header
    assert len(body) == total
    results = {r[header.index("result")] for r in body}
    assert results == {"Successful connection"}
    # The same rows as the pages show, in order.
    shown = [r.get_attribute("data-id") for r in page.locator("#calls tbody tr").all()]
    assert [r[0] for r in body[: len(shown)]] == shown


def test_bad_input_is_shown_by_its_field(page: Page, console: Console) -> None:
    sign_in_customer(page, console.appkey, console.secretkey)
    page.wait_for_url("**/console/overview")
    page.goto("/console/calls")
    page.get_by_label("Phone number or prefix").fill("12ab")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(calls_search(phone="12ab"))
    phone = page.get_by_label("Phone number or prefix")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#e-phone")).to_contain_text("Digits only")
    expect(page.get_by_role("alert")).to_be_visible()


def test_a_customer_cannot_open_another_apps_call(page: Page, console: Console) -> None:
    # A call id of the demo app, found as its customer.
    sign_in_customer(page, console.appkey, console.secretkey)
    page.wait_for_url("**/console/overview")
    start, end = window()
    search(page, start, end)
    theirs = page.locator("#calls tbody tr").first.get_attribute("data-id")
    page.context.clear_cookies()
    sign_in_customer(page, console.other[0], console.other[1])
    page.wait_for_url("**/console/overview")
    answer = page.goto(f"/console/calls/{theirs}")
    assert answer is not None
    assert answer.status == 404
    answer = page.goto("/console/calls?app=demo")
    assert answer is not None
    assert answer.status == 404
