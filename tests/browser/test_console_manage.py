"""The Receipts, Rate plan and Apps pages in a real browser: a dead receipt replayed after
confirming and then delivered to a real receiver, the cost check, and the operator
creating an app and seeing its secret once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.browser.conftest import Console, expect
from tests.browser.test_console_browser import sign_in_customer, sign_in_operator
from tests.integration.test_receipt_delivery import deliver as deliver_here
from tests.integration.test_receipt_delivery import priced_app
from tests.support.data import make_app
from tests.support.receiver import Answer, Receiver, receiving
from voicecdr.credentials import hash_secret
from voicecdr.models import ReceiptStatus
from voicecdr.storage import AppStore, Database, Outbox

Page = Any  # playwright.sync_api.Page

HOOKS = ("hooks", "hooks-Secret-0001")


def deliver(db: Database) -> None:
    """The real sender, once, in a thread of its own: Playwright's sync API keeps an event
    loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(deliver_here, db).result()


@pytest.fixture
def db(console: Console) -> Iterator[Database]:
    """The served database, opened beside the server."""
    opened = Database(console.cli.env["VOICECDR_DATABASE_URL"])
    yield opened
    opened.close()


@pytest.fixture
def dead(db: Database) -> Iterator[Receiver]:
    """App ``hooks`` with two dead receipts, its receiver refusing until told otherwise."""
    with receiving(lambda n, got: Answer(503, b"down")) as receiver:
        priced_app(db, HOOKS[0], receiver.url + "/dr", calls=2)
        AppStore(db).update(HOOKS[0], {"secret_hash": hash_secret(HOOKS[1])}, now=1)
        deliver(db)
        yield receiver


def test_a_dead_receipt_is_replayed_after_confirming_and_delivered(
    page: Page, db: Database, dead: Receiver
) -> None:
    sign_in_customer(page, *HOOKS)
    page.wait_for_url("**/console/overview")
    page.get_by_role("link", name="Receipts").click()
    expect(page.locator("[data-count=dead]")).to_have_text("2")
    rows = page.locator("#dead tbody tr[data-receipt]")
    expect(rows).to_have_count(2)
    assert "HTTP 503" in rows.first.inner_text()
    target = int(rows.first.get_attribute("data-receipt") or 0)
    rows.first.get_by_role("link", name=f"Replay receipt {target}").click()
    # The confirmation page: nothing replayed yet.
    page.wait_for_url(f"**/console/receipts/replay?id={target}")
    assert f"Send dead receipt {target} again?" in page.locator("main").inner_text()
    assert Outbox(db).list(ids=[target])[0].status is ReceiptStatus.DEAD
    page.get_by_role("button", name="Yes, replay").click()
    page.wait_for_url("**/console/receipts?replayed=1")
    expect(page.get_by_role("status")).to_contain_text("Queued 1 receipts again")
    expect(page.locator("[data-count=dead]")).to_have_text("1")
    webhook_id = Outbox(db).list(ids=[target])[0].webhook_id
    dead.behave = lambda n, got: Answer()
    before = len(dead.received)
    deliver(db)
    assert [r.headers["webhook-id"] for r in dead.received[before:]] == [webhook_id]
    assert Outbox(db).list(ids=[target])[0].status is ReceiptStatus.DELIVERED


def test_the_cost_check_prices_a_call(page: Page, console: Console) -> None:
    sign_in_customer(page, console.appkey, console.secretkey)
    page.wait_for_url("**/console/overview")
    page.get_by_role("link", name="Rate plan").click()
    expect(page.locator("#versions")).to_contain_text("(current)")
    page.get_by_label("Phone number").fill("+91 98123 45678")
    page.get_by_label("Seconds").fill("65")
    page.get_by_label("Voice type").select_option("group_call")
    page.get_by_role("button", name="Price it").click()
    quote = page.locator("#quote")
    expect(page.locator("#quote-cost")).to_have_text("0.048")  # 4 cycles of 20 s at 0.012
    expect(page.locator("#quote-size")).to_have_text("4")
    expect(quote.locator("[data-field=prefix]")).to_contain_text("91")
    # Bad input is said in the page, with ingest's words.
    page.get_by_label("Seconds").fill("90000")
    page.get_by_role("button", name="Price it").click()
    expect(page.get_by_role("alert")).to_contain_text("second: must be at most 86400")


def test_the_operator_creates_an_app_and_sees_its_secret_once(
    page: Page, browser: Any, console: Console
) -> None:
    sign_in_operator(page, console.operator_token)
    page.wait_for_url("**/console/overview")
    page.get_by_role("link", name="Apps").click()
    page.get_by_role("link", name="New app").click()
    page.get_by_label("Name").fill("Browser Co")
    page.get_by_label("Appkey").fill("browserco")
    page.get_by_label("Timezone").fill("Europe/Berlin")
    page.get_by_role("button", name="Create app").click()
    # The form page has an h1 too: wait for the answer's, not read the form's.
    expect(page.locator("h1")).to_contain_text("App created")
    secret = page.locator("#issued-secretkey").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)
    assert secret not in page.url
    # Never shown again: the apps list and a reload of the list hold no trace of it.
    page.get_by_role("link", name="Back to the apps").click()
    expect(page.locator("#apps")).to_contain_text("browserco")
    assert secret not in page.content()
    # Back to the result page: it is no-store, so the browser has no copy to show (it
    # would have to post the form again, which it does not do by itself).
    with pytest.raises(Exception, match="ERR_CACHE_MISS"):
        page.go_back()
    # Chromium then puts its error page in place of the list: reading the page while it
    # does fails ("the page is navigating"), so wait for the list to be gone first.
    expect(page.locator("#apps")).to_have_count(0)
    page.wait_for_load_state()
    assert secret not in page.content()
    # The secret works: the new app's customer signs in with it.
    other = browser.new_context(base_url=console.url)
    try:
        theirs = other.new_page()
        sign_in_customer(theirs, "browserco", secret)
        theirs.wait_for_url("**/console/overview")
        expect(theirs.locator(".zone")).to_contain_text("Times in Europe/Berlin")
    finally:
        other.close()
    assert secret not in console.server.logs()


LONG_NAME = "Shenzhen Longhua Cross-Border Voice Services Co., Ltd. Branch"


def test_the_header_fits_a_phone_with_a_long_app_name(
    browser: Any, console: Console, db: Database
) -> None:
    """The operator's app switcher holding a 60-character name stays within 390 px."""
    assert len(LONG_NAME) >= 60
    make_app(db, "longname")
    AppStore(db).update("longname", {"name": LONG_NAME}, now=1)
    phone = browser.new_context(viewport={"width": 390, "height": 844}, base_url=console.url)
    try:
        page = phone.new_page()
        sign_in_operator(page, console.operator_token)
        page.wait_for_url("**/console/overview")
        page.goto("/console/overview?app=longname")
        expect(page.locator("#app-switch")).to_have_value("longname")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        phone.close()
