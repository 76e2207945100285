"""Screenshots of the console's pages at a phone's and a desktop's width, for
docs/console.md: ``scripts/console-screenshots`` runs this against a demo server.

A page adds itself to :data:`SHOTS`: its file name, who is signed in, and its path.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Cli, Server
from tests.support.client import load, recent_records
from tests.support.data import make_app
from voicecdr.storage import Database

WIDTHS = {"390": (390, 844), "1440": (1440, 900)}
OPERATOR = "operator-Screenshots-Token-0123456789"

# (file name, who signs in: None, "customer" or "operator", path under /console)
SHOTS: list[tuple[str, str | None, str]] = [
    ("signin", None, "/signin"),
    ("overview", "customer", "/overview"),
    ("overview-operator", "operator", "/overview"),
    ("calls", "customer", "/calls?voice_type=1&size=20"),
    ("calls-invalid", "customer", "/calls?phone=12ab&country=12345"),
    ("call", "customer", "/calls/2"),
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
    finally:
        db.close()
    server = Server(cli)
    server.wait_ready()
    return server


def sign_in(page: Any, who: str | None) -> None:
    page.goto("/console/signin")
    if who == "customer":
        page.get_by_label("Appkey").fill("demo")
        page.get_by_label("Secretkey").fill("demo-secret")
        page.locator("#customer-signin button[type=submit]").click()
    elif who == "operator":
        page.get_by_label("Operator token").fill(OPERATOR)
        page.locator("#operator-signin button[type=submit]").click()
    page.wait_for_load_state("networkidle")


def take(browser: Any, url: str, out: Path) -> list[Path]:
    written = []
    for name, who, path in SHOTS:
        for label, (width, height) in WIDTHS.items():
            context = browser.new_context(viewport={"width": width, "height": height}, base_url=url)
            page = context.new_page()
            sign_in(page, who)
            page.goto(f"/console{path}")
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
