"""The browser tier: ``voicecdr serve`` as a subprocess on 127.0.0.1 against a temporary
SQLite database holding the demo's data, driven by Debian's chromium through Playwright.

Only Debian's chromium is used (``executable_path``): never ``playwright install``, whose
downloads fail here. Without chromium (or Playwright) these tests skip, saying how to
install it, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Cli, Server
from tests.support.client import load, recent_records
from tests.support.data import make_app
from voicecdr.storage import Database

# Debian's chromium; VOICECDR_CHROMIUM names another build of it (tests only).
CHROMIUM = os.environ.get("VOICECDR_CHROMIUM")
OPERATOR = "operator-Browser-Token-0123456789"
OTHER = ("other", "other-Secret-0001")  # a second app, for switching and isolation
# Seconds `serve` may take to answer /readyz: a loaded machine took over 30 to start it.
READY_TIMEOUT = 120


def _unavailable(reason: str) -> None:
    message = (
        f"{reason}: the browser tests need Debian's chromium (`apt-get install chromium`, "
        "which scripts/test does) and Playwright (`pip install -e '.[test]'`); never "
        "`playwright install`"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = CHROMIUM if CHROMIUM is not None else shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        _unavailable(f"no chromium at {path}")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed")
    from playwright.sync_api import expect as retrying

    # Generous: two cores are shared by the server, chromium and the tests.
    retrying.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


def expect(target: Any) -> Any:
    """Playwright's ``expect``: assertions that retry until they hold (or time out), for
    what a click changes: reading the page at once could read the page before it."""
    from playwright.sync_api import expect as retrying

    return retrying(target)


@dataclass(frozen=True)
class Console:
    """The running server: its URL, its log, and the credentials it knows."""

    url: str
    server: Server
    cli: Cli
    appkey: str = "demo"
    secretkey: str = "demo-secret"
    operator_token: str = OPERATOR
    other: tuple[str, str] = OTHER


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """``voicecdr demo`` (two days of calls) and a second app, then ``voicecdr serve``."""
    cwd = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{cwd / 'console.db'}"
    cli = Cli(cwd, url)
    cli.env.update(
        VOICECDR_OPERATOR_TOKEN=OPERATOR,
        VOICECDR_AUTH_FAILURES_PER_CLIENT_APPKEY="3",
        VOICECDR_APP_CACHE_SECONDS="0",
        VOICECDR_SERVE_WORKERS="false",
    )
    made = cli("demo", "--count", "3000", "--days", "2", "--seed", "7")
    assert made.code == 0, made.err
    # The demo's 5 requests a second would throttle a test comparing with the API.
    assert cli("apps", "update", "demo", "--rate-limit", "1000").code == 0
    db = Database(url)
    try:
        make_app(db, OTHER[0], secretkey=OTHER[1], timezone="Asia/Kolkata")
        load(db, recent_records(OTHER[0], 200, days=1, seed=3))
    finally:
        db.close()
    server = Server(cli)
    try:
        server.wait_ready(timeout=READY_TIMEOUT)
        yield Console(server.url, server, cli)
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Any]:
    """A fresh browser context (no cookies) at 1440 x 900."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=console.url)
    opened = context.new_page()
    yield opened
    context.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)
