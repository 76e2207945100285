"""The operator's Apps pages on SQLite and PostgreSQL: listing, creating (the secrets
shown once), rotating a secret and setting the callback URL, with the CLI's own checks;
a customer gets 404 for every one of them and changes nothing."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.support.console import csrf_of, customer
from tests.support.console_pages import post_form, signed_in, tuned
from tests.support.data import make_app
from voicecdr import apps
from voicecdr.api import create_app
from voicecdr.config import Settings
from voicecdr.credentials import verify_secret
from voicecdr.errors import ValidationError
from voicecdr.storage import AppStore, Database

SECRET = "secret-one-1"


@pytest.fixture
def operator(settings: Settings, db: Database) -> Iterator[TestClient]:
    make_app(db, "app1", secretkey=SECRET, callback_url="https://example.com/dr")
    make_app(db, "app2", secretkey="secret-two-2", language="zh")
    with signed_in(tuned(settings), db) as client:
        yield client


def shown(page: str, what: str) -> str:
    found = re.search(rf'id="issued-{what}">([^<]+)<', page)
    assert found, page
    return found.group(1)


def can_sign_in(settings: Settings, db: Database, appkey: str, secretkey: str) -> bool:
    with TestClient(create_app(tuned(settings), db)) as other:
        return customer(other, appkey, secretkey).status_code == 303


def test_the_operator_lists_every_app_without_secrets(operator: TestClient, db: Database) -> None:
    page = operator.get("/console/apps")
    assert page.status_code == 200
    assert re.findall(r'data-appkey="(\w+)"', page.text) == ["app1", "app2"]
    row = page.text.split('data-appkey="app1"')[1].split("</tr>")[0]
    for value in ("App app1", "Asia/Shanghai", "English", "enabled", "https://example.com/dr"):
        assert value in row
    assert "中文" in page.text.split('data-appkey="app2"')[1].split("</tr>")[0]
    assert SECRET not in page.text
    assert AppStore(db).get("app1").signing_secret not in page.text  # type: ignore[union-attr]


def test_creating_an_app_shows_its_secrets_once(
    operator: TestClient, settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = post_form(
        operator,
        "/console/apps/new",
        "/console/apps/new",
        name="Acme",
        appkey="acme",
        timezone="Europe/Berlin",
        language="zh",
        callback_url="https://acme.example/receipts",
    )
    assert answer.status_code == 200  # the answer itself, not a redirect to a URL
    assert answer.headers["cache-control"] == "no-store"
    secret, signing = shown(answer.text, "secretkey"), shown(answer.text, "signing")
    assert shown(answer.text, "appkey") == "acme"
    assert "shown this once" in answer.text
    created = AppStore(db).get("acme")
    assert created is not None
    assert (created.name, created.timezone, created.language.value) == (
        "Acme",
        "Europe/Berlin",
        "zh",
    )
    assert created.callback_url == "https://acme.example/receipts"
    assert created.signing_secret == signing
    assert verify_secret(secret, created.secret_hash)
    assert can_sign_in(settings, db, "acme", secret)
    # Never again: no page shows it, and no log line carries it.
    for path in (
        "/console/apps",
        "/console/apps/rotate?app=acme",
        "/console/apps/callback?app=acme",
        "/console/overview?app=acme",
    ):
        page = operator.get(path).text
        assert secret not in page
        assert signing not in page
    assert secret not in caplog.text
    assert signing not in caplog.text


def test_an_app_created_with_defaults_gets_a_random_appkey(
    operator: TestClient, db: Database
) -> None:
    answer = post_form(operator, "/console/apps/new", "/console/apps/new", name="Plain")
    appkey = shown(answer.text, "appkey")
    assert re.fullmatch(r"[0-9a-f]{32}", appkey)
    made = AppStore(db).get(appkey)
    assert made is not None
    assert (made.timezone, made.language.value, made.callback_url) == ("Asia/Shanghai", "en", None)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "x", "timezone": "Mars/Olympus"},
        {"name": "x", "appkey": "has space"},
        {"name": "x", "callback_url": "ftp://example.com/x"},
        {"name": "x", "callback_url": "https://user:pw@example.com/x"},
        {"name": "x", "language": "fr"},
    ],
)
def test_creating_refuses_what_the_cli_refuses_with_its_message(
    operator: TestClient, db: Database, fields: dict[str, str]
) -> None:
    with pytest.raises(ValidationError) as cli:
        apps.create_app(
            AppStore(db),
            default_timezone="Asia/Shanghai",
            check_callback=apps.CallbackCheck(allow_private=True),
            **{"name": "", **fields},
        )
    before = len(AppStore(db).list())
    answer = post_form(operator, "/console/apps/new", "/console/apps/new", **fields)
    assert answer.status_code == 400
    assert str(cli.value).replace("'", "&#39;") in answer.text
    assert len(AppStore(db).list()) == before


def test_a_taken_appkey_is_a_conflict(operator: TestClient, db: Database) -> None:
    answer = post_form(
        operator, "/console/apps/new", "/console/apps/new", name="Again", appkey="app1"
    )
    assert answer.status_code == 409
    assert "appkey &#39;app1&#39; is already taken" in answer.text
    assert AppStore(db).get("app1").name == "App app1"  # type: ignore[union-attr]


def test_private_callback_addresses_follow_the_setting(settings: Settings, db: Database) -> None:
    make_app(db, "app1", secretkey=SECRET)
    strict = tuned(settings, allow_private_callbacks=False)
    with signed_in(strict, db) as client:
        answer = post_form(
            client,
            "/console/apps/new",
            "/console/apps/new",
            name="x",
            callback_url="http://127.0.0.1:9/dr",
        )
        assert answer.status_code == 400
        assert "callback_url:" in answer.text
        refused = post_form(
            client,
            "/console/apps/callback?app=app1",
            "/console/apps/callback",
            app="app1",
            callback_url="http://10.1.2.3/dr",
        )
        assert refused.status_code == 400
    assert AppStore(db).get("app1").callback_url is None  # type: ignore[union-attr]


def test_rotating_the_secretkey_shows_the_new_one_once_and_the_old_stops(
    operator: TestClient, settings: Settings, db: Database
) -> None:
    confirm = operator.get("/console/apps/rotate?app=app1")
    assert confirm.status_code == 200
    assert can_sign_in(settings, db, "app1", SECRET)  # a GET changes nothing
    answer = operator.post(
        "/console/apps/rotate",
        data={"csrf": csrf_of(confirm.text), "app": "app1", "which": "secretkey"},
        follow_redirects=False,
    )
    assert answer.status_code == 200
    new = shown(answer.text, "secretkey")
    assert 'id="issued-signing"' not in answer.text
    assert not can_sign_in(settings, db, "app1", SECRET)
    assert can_sign_in(settings, db, "app1", new)
    assert new not in operator.get("/console/apps").text


def test_rotating_the_signing_secret(operator: TestClient, db: Database) -> None:
    before = AppStore(db).get("app2").signing_secret  # type: ignore[union-attr]
    answer = post_form(
        operator,
        "/console/apps/rotate?app=app2",
        "/console/apps/rotate",
        app="app2",
        which="signing",
    )
    signing = shown(answer.text, "signing")
    assert 'id="issued-secretkey"' not in answer.text
    assert signing != before
    assert AppStore(db).get("app2").signing_secret == signing  # type: ignore[union-attr]
    assert AppStore(db).get("app1").signing_secret != signing  # type: ignore[union-attr]


def test_setting_and_clearing_the_callback_url(operator: TestClient, db: Database) -> None:
    form = operator.get("/console/apps/callback?app=app1")
    assert 'value="https://example.com/dr"' in form.text
    answer = operator.post(
        "/console/apps/callback",
        data={
            "csrf": csrf_of(form.text),
            "app": "app1",
            "callback_url": "https://new.example/hook",
        },
    )
    assert answer.status_code == 200
    assert "Saved: receipts go to this URL." in answer.text
    assert AppStore(db).get("app1").callback_url == "https://new.example/hook"  # type: ignore[union-attr]
    cleared = operator.post(
        "/console/apps/callback",
        data={"csrf": csrf_of(form.text), "app": "app1", "callback_url": ""},
    )
    assert "Cleared" in cleared.text
    assert AppStore(db).get("app1").callback_url is None  # type: ignore[union-attr]
    assert AppStore(db).get("app2").callback_url is None  # type: ignore[union-attr]


def test_a_bad_callback_url_gets_the_cli_s_message(operator: TestClient, db: Database) -> None:
    bad = "https://" + "a" * 2050
    with pytest.raises(ValidationError) as cli:
        apps.update_app(AppStore(db), "app1", callback_url=bad)
    answer = post_form(
        operator,
        "/console/apps/callback?app=app1",
        "/console/apps/callback",
        app="app1",
        callback_url=bad,
    )
    assert answer.status_code == 400
    assert str(cli.value) in answer.text
    assert AppStore(db).get("app1").callback_url == "https://example.com/dr"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("/console/apps/new", {"name": "Sneaky"}),
        ("/console/apps/rotate", {"app": "app1", "which": "secretkey"}),
        ("/console/apps/callback", {"app": "app1", "callback_url": "https://evil.example/"}),
    ],
)
def test_every_apps_post_checks_the_csrf_token(
    operator: TestClient, settings: Settings, db: Database, action: str, fields: dict[str, str]
) -> None:
    for token in (None, "forged"):
        data = dict(fields, **({"csrf": token} if token else {}))
        assert operator.post(action, data=data).status_code == 403
    assert [a.appkey for a in AppStore(db).list()] == ["app1", "app2"]
    assert AppStore(db).get("app1").callback_url == "https://example.com/dr"  # type: ignore[union-attr]
    assert can_sign_in(settings, db, "app1", SECRET)


def test_a_customer_gets_404_for_every_apps_page_and_changes_nothing(
    settings: Settings, db: Database, operator: TestClient
) -> None:
    with signed_in(tuned(settings), db, "app1", SECRET) as client:
        page = client.get("/console/overview")
        assert "/console/apps" not in page.text  # not in its navigation
        for path in (
            "/console/apps",
            "/console/apps/new",
            "/console/apps/rotate",
            "/console/apps/rotate?app=app1",
            "/console/apps/callback",
            "/console/apps/callback?app=app2",
        ):
            assert client.get(path).status_code == 404, path
        token = csrf_of(page.text)
        posts = [
            ("/console/apps/new", {"name": "Mine now"}),
            ("/console/apps/rotate", {"which": "secretkey"}),
            ("/console/apps/rotate", {"app": "app1", "which": "signing"}),
            ("/console/apps/rotate", {"app": "app2", "which": "secretkey"}),
            ("/console/apps/callback", {"app": "app1", "callback_url": "https://evil.example/"}),
            ("/console/apps/callback", {"app": "app2", "callback_url": "https://evil.example/"}),
        ]
        for action, fields in posts:
            answer = client.post(action, data={"csrf": token, **fields})
            assert answer.status_code == 404, (action, fields)
            assert "secretkey" not in answer.text.lower().split("<main")[1]
    assert [a.appkey for a in AppStore(db).list()] == ["app1", "app2"]
    assert AppStore(db).get("app1").callback_url == "https://example.com/dr"  # type: ignore[union-attr]
    assert AppStore(db).get("app2").callback_url is None  # type: ignore[union-attr]
    assert can_sign_in(settings, db, "app1", SECRET)
    assert can_sign_in(settings, db, "app2", "secret-two-2")


def test_the_apps_pages_speak_chinese(operator: TestClient) -> None:
    page = operator.get("/console/apps")
    switched = operator.post(
        "/console/lang", data={"csrf": csrf_of(page.text), "lang": "zh", "next": "/console/apps"}
    )
    assert "新建应用" in switched.text
    assert "回调地址" in switched.text
    assert "新建应用" in operator.get("/console/apps/new").text


def test_the_operator_creates_the_first_app_of_an_empty_database(
    settings: Settings, db: Database
) -> None:
    with signed_in(tuned(settings), db) as client:
        # Every page that shows an app leads to the create form, the Apps list works.
        for path in ("/console", "/console/overview", "/console/receipts", "/console/rates"):
            answer = client.get(path, follow_redirects=True)
            assert answer.url.path == "/console/apps/new", path
            assert answer.status_code == 200
            assert 'id="first-app"' in answer.text
        listing = client.get("/console/apps")
        assert listing.status_code == 200
        assert "data-appkey=" not in listing.text
        assert 'id="app-switch"' in listing.text  # the switcher, with nothing to choose
        assert (
            client.get("/console/apps/rotate", follow_redirects=False).headers["location"]
            == "/console/apps/new"
        )
        created = post_form(
            client, "/console/apps/new", "/console/apps/new", name="First", appkey="first"
        )
        assert created.status_code == 200, created.text
        secret = shown(created.text, "secretkey")
        assert shown(created.text, "appkey") == "first"
        overview = client.get("/console/overview", follow_redirects=False)
        assert overview.status_code == 200
        assert "First</small>" in overview.text
        assert 'value="first" selected' in overview.text
        assert secret not in overview.text
        assert 'id="first-app"' not in client.get("/console/apps/new").text
    assert can_sign_in(settings, db, "first", secret)
