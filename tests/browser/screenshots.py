"""Screenshots of the console's pages at a phone's and a desktop's width, for
docs/console.md: ``scripts/console-screenshots`` runs this against a demo server.

A page adds itself to :data:`SHOTS`: its file name, who is signed in, and its path.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Cli, Server
from tests.browser.conftest import READY_TIMEOUT
from tests.support.client import load, recent_records
from tests.support.data import make_app
from voicecdr.storage import Database

WIDTHS = {"390": (390, 844), "1440": (1440, 900)}
OPERATOR = "operator-Screenshots-Token-0123456789"


def _created(page: Any) -> None:
    """The operator creates an app: the page that shows its secrets once."""
    page.goto("/console/apps/new")
    page.get_by_label("Name").fill("Shop Co")
    page.get_by_label("Appkey").fill(f"shop{page.viewport_size['width']}")
    page.get_by_label("Timezone").fill("Europe/Berlin")
    page.get_by_label("Callback URL").fill("https://shop.example/voicecdr/receipts")
    page.get_by_role("button", name="Create app").click()
    page.locator("#issued-secretkey").wait_for()  # the answer, not the form


# (file name, who signs in: None, "customer" or "operator", path under /console, or
# what brings the page to the state shown)
SHOTS: list[tuple[str, str | None, str | Callable[[Any], None]]] = [
    ("signin", None, "/signin"),
    ("overview", "customer", "/overview"),
    ("overview-operator", "operator", "/overview"),
    ("overview-zh", "customer-zh", "/overview"),
    ("calls-zh", "customer-zh", "/calls?voice_type=1&size=20"),
    ("calls", "customer", "/calls?voice_type=1&size=20"),
    ("calls-invalid", "customer", "/calls?phone=12ab&country=12345"),
    ("call", "customer", "/calls/2"),
    ("receipts", "operator", "/receipts?app=hooks"),
    ("receipts-confirm", "operator", "/receipts/replay?app=hooks"),
    (
        "rates",
        "customer",
        "/rates?check=1&number=%2B91+98123+45678&second=65&service=group_call&connected=1",
    ),
    ("apps", "operator", "/apps"),
    ("apps-new", "operator", "/apps/new"),
    ("apps-created", "operator", _created),
    ("apps-rotate", "operator", "/apps/rotate?app=acme"),
    ("apps-callback", "operator", "/apps/callback?app=demo"),
]


def serve(cwd: Path) -> Server:
    cli = Cli(cwd, f"sqlite:///{cwd / 'console.db'}")
    cli.env.update(VOICECDR_OPERATOR_TOKEN=OPERATOR, VOICECDR_SERVE_WORKERS="false")
    made = cli("demo", "--count", "6000", "--days", "2", "--seed", "7")
    assert made.code == 0, made.err
    db = Database(f"sqlite:///{cwd / 'console.db'}")
    try:
        make_app(db, "acme", secretkey="acme-Secret-0001", timezone="Asia/Kolkata")
        load(db, recent_records("acme", 300, days=1, seed=3))
        dead_receipts(db)
    finally:
        db.close()
    server = Server(cli)
    server.wait_ready(timeout=READY_TIMEOUT)
    return server


def dead_receipts(db: Database) -> None:
    """App ``hooks``, whose receiver refuses everything: a few dead receipts to show."""
    from tests.integration.test_receipt_delivery import deliver, priced_app
    from tests.support.receiver import Answer, receiving

    answers = [Answer(503, b"down"), Answer(500, b"oops"), Answer(404, b"no such hook")]
    with receiving(lambda n, got: answers[n % 3]) as receiver:
        priced_app(db, "hooks", receiver.url + "/voicecdr/receipts", calls=4)
        deliver(db)


def sign_in(page: Any, who: str | None) -> None:
    """Signs ``who`` in; ``customer-zh`` is the customer who then switches to Chinese."""
    chinese = who is not None and who.endswith("-zh")
    who = who.removesuffix("-zh") if who is not None else None
    page.goto("/console/signin")
    if who == "customer":
        page.get_by_label("Appkey").fill("demo")
        page.get_by_label("Secretkey").fill("demo-secret")
        page.locator("#customer-signin button[type=submit]").click()
    elif who == "operator":
        page.get_by_label("Operator token").fill(OPERATOR)
        page.locator("#operator-signin button[type=submit]").click()
    if who is not None:
        page.wait_for_url("**/console/overview")  # signed in (networkidle can come first)
    if chinese:
        page.select_option("#lang-switch", "zh")
        page.locator("#lang-switch ~ button").click()
        page.wait_for_selector("html[lang=zh-Hans]")
    page.wait_for_load_state("networkidle")


def take(browser: Any, url: str, out: Path) -> list[Path]:
    written = []
    for name, who, path in SHOTS:
        for label, (width, height) in WIDTHS.items():
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=url)
            page = context.new_page()
            sign_in(page, who)
            if isinstance(path, str):
                page.goto(f"/console{path}")
            else:
                path(page)
            page.wait_for_load_state("networkidle")
            target = out / f"{name}-{label}.png"
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
            context.close()
    return written


def main(out: Path, chromium: str = "/usr/bin/chromium") -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = serve(Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
                )
                for path in take(browser, server.url, out):
                    print(path)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console"))
