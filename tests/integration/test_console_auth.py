"""The console's sign-in, sessions and CSRF checks, against the real app and database:
who may sign in, what the cookie carries, and that a customer sees its own app only."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.support.client import load, price_everything, recent_records
from tests.support.console import csrf_of, customer, operator
from tests.support.data import make_app
from voicecdr import apps
from voicecdr.api import create_app
from voicecdr.config import Settings
from voicecdr.console.session import COOKIE
from voicecdr.models import Language
from voicecdr.storage import AppStore, Database

OPERATOR = "operator-Token-0123456789"
SECRETS = {"app1": "secret-one-1", "app2": "secret-two-2"}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def data(db: Database) -> None:
    make_app(db, "app1", secretkey=SECRETS["app1"])
    make_app(db, "app2", secretkey=SECRETS["app2"], timezone="Asia/Kolkata")
    load(db, recent_records("app1", 40, days=1, seed=1))
    price_everything(db, "app1")
    load(db, recent_records("app2", 30, days=1, seed=2))


def tuned(settings: Settings, **changes: Any) -> Settings:
    update = {
        "operator_token": Settings(operator_token=OPERATOR).operator_token,
        "app_cache_seconds": 0,
        "auth_failures_per_client_appkey": 3,
        "auth_failures_per_client": 6,
        "auth_failure_window": 60,
        **changes,
    }
    return settings.model_copy(update=update)


@pytest.fixture
def client(settings: Settings, db: Database, data: None, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(tuned(settings), db, clock)) as c:
        yield c


def cookie_attributes(response: Any) -> dict[str, str]:
    (header,) = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    parsed = SimpleCookie()
    parsed.load(header)
    morsel = parsed[COOKIE]
    flags = {k: str(v) for k, v in morsel.items() if v}
    return {"value": morsel.value, "header": header, **flags}


def test_a_customer_signs_in_and_sees_its_own_app(client: TestClient) -> None:
    answer = customer(client, "app1", SECRETS["app1"])
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/overview"
    page = client.get("/console/overview")
    assert page.status_code == 200
    assert "App app1" in page.text
    assert "app2" not in page.text  # no switcher, no other app
    assert 'id="app-switch"' not in page.text


def test_the_session_cookie_is_httponly_samesite_scoped_and_holds_no_secret(
    client: TestClient, db: Database
) -> None:
    cookie = cookie_attributes(customer(client, "app1", SECRETS["app1"]))
    assert cookie["httponly"] is not None
    assert "HttpOnly" in cookie["header"]
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/console"
    assert int(cookie["max-age"]) == 12 * 3600
    assert "secure" not in cookie  # plain http here: a Secure cookie would never come back
    payload = cookie["value"].split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert SECRETS["app1"] not in decoded
    assert "secret" not in decoded
    assert set(re.findall(r'"(\w)":', decoded)) == {"r", "a", "c", "l", "e", "k"}
    # "k" binds the session to the secret: a keyed fingerprint, not the stored hash.
    stored = AppStore(db).get("app1")
    assert stored is not None
    assert not any(part in decoded for part in stored.secret_hash.split("$") if len(part) > 3)
    assert len(orjson.loads(decoded)["k"]) == 22


def test_the_cookie_is_secure_on_https(settings: Settings, db: Database, data: None) -> None:
    app = create_app(tuned(settings), db)
    with TestClient(app, base_url="https://testserver") as client:
        cookie = cookie_attributes(customer(client, "app1", SECRETS["app1"]))
    assert "Secure" in cookie["header"]


def test_a_wrong_secret_is_refused_and_counted_until_the_address_is_locked_out(
    client: TestClient,
) -> None:
    for _ in range(3):  # auth_failures_per_client_appkey
        wrong = customer(client, "app1", "not-the-secret")
        assert wrong.status_code == 401
        assert "The appkey or secretkey is incorrect." in wrong.text
        assert COOKIE + "=" in wrong.headers["set-cookie"]  # still a pre-session for the form
    locked = customer(client, "app1", SECRETS["app1"])  # the right secret, too late
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert int(locked.headers["retry-after"]) > 0
    assert client.get("/console/overview", follow_redirects=False).status_code == 303
    # The same limits as the API: its analytics refuses this address the same way.
    pair = base64.b64encode(f"app1:{SECRETS['app1']}".encode()).decode()
    api = client.get(
        "/v1/analytics",
        params={"from": "2026-01-01", "to": "2026-01-02"},
        headers={"Authorization": f"Basic {pair}"},
    )
    assert api.status_code == 429, api.text


def test_failed_api_authentications_lock_the_console_out_too(client: TestClient) -> None:
    for _ in range(3):
        pair = base64.b64encode(b"app1:wrong").decode()
        client.get("/v1/analytics", headers={"Authorization": f"Basic {pair}"})
    assert customer(client, "app1", SECRETS["app1"]).status_code == 429


def test_an_unknown_appkey_and_a_disabled_app_get_the_wrong_secret_answer(
    client: TestClient, db: Database
) -> None:
    assert customer(client, "nobody", "x").status_code == 401
    AppStore(db).update("app2", {"disabled_at": int(time.time())}, now=int(time.time()))
    assert customer(client, "app2", SECRETS["app2"]).status_code == 401


def test_the_operator_signs_in_with_the_operator_token_and_switches_apps(
    client: TestClient,
) -> None:
    assert operator(client, "wrong-token-0123456789").status_code == 401
    answer = operator(client, OPERATOR)
    assert answer.status_code == 303
    page = client.get("/console/overview")
    assert 'id="app-switch"' in page.text
    assert 'value="app1" selected' in page.text
    assert 'value="app2"' in page.text
    switched = client.post(
        "/console/switch",
        data={"csrf": csrf_of(page.text), "app": "app2", "next": "/console/overview"},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    assert 'value="app2" selected' in client.get("/console/overview").text
    # An app named in the URL, and an unknown one.
    assert "App app1</small>" in client.get("/console/overview?app=app1").text
    assert client.get("/console/overview?app=nope").status_code == 404
    assert "/console/apps" in page.text  # the operator's Apps entry


def test_operator_sign_in_is_refused_clearly_when_no_token_is_set(
    settings: Settings, db: Database, data: None
) -> None:
    app = create_app(tuned(settings, operator_token=None), db)
    with TestClient(app) as client:
        assert "Operator sign-in is off" in client.get("/console/signin").text
        answer = operator(client, OPERATOR)
    assert answer.status_code == 503
    assert "VOICECDR_OPERATOR_TOKEN" in answer.text


@pytest.mark.parametrize("token", [None, "", "forged-token", "tökén"])
def test_a_sign_in_without_its_csrf_token_is_refused(client: TestClient, token: str | None) -> None:
    client.get("/console/signin")
    data = {"kind": "customer", "appkey": "app1", "secretkey": SECRETS["app1"]}
    if token is not None:
        data["csrf"] = token
    answer = client.post("/console/signin", data=data, follow_redirects=False)
    assert answer.status_code == 403
    assert "did not come from this console" in answer.text
    assert client.get("/console/overview", follow_redirects=False).status_code == 303


def test_a_sign_in_with_no_session_cookie_is_refused(client: TestClient) -> None:
    page = client.get("/console/signin")
    token = csrf_of(page.text)
    client.cookies.clear()
    data = {"csrf": token, "kind": "customer", "appkey": "app1", "secretkey": SECRETS["app1"]}
    assert client.post("/console/signin", data=data).status_code == 403


@pytest.mark.parametrize("path", ["/console/signout", "/console/lang", "/console/switch"])
def test_every_post_checks_the_csrf_token(client: TestClient, path: str) -> None:
    operator(client, OPERATOR)
    answer = client.post(path, data={"csrf": "x", "app": "app2", "lang": "zh"})
    assert answer.status_code == 403
    assert client.get("/console/overview").status_code == 200  # still signed in


def test_htmx_requests_carry_the_token_in_a_header(client: TestClient) -> None:
    customer(client, "app1", SECRETS["app1"])
    page = client.get("/console/overview")
    token = csrf_of(page.text)
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in page.text
    data = {"lang": "zh", "next": "/console/overview"}
    refused = client.post("/console/lang", data=data, headers={"X-CSRF-Token": "x" + token})
    assert refused.status_code == 403
    answer = client.post("/console/lang", data=data, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200
    assert '<html lang="zh-Hans">' in answer.text


def test_the_token_seen_before_sign_in_is_not_the_session_s(client: TestClient) -> None:
    before = csrf_of(client.get("/console/signin").text)
    customer(client, "app1", SECRETS["app1"])
    assert csrf_of(client.get("/console/overview").text) != before


def test_a_customer_cannot_reach_another_app_by_url_or_form(client: TestClient) -> None:
    customer(client, "app1", SECRETS["app1"])
    page = client.get("/console/overview")
    named = client.get("/console/overview?app=app2")
    assert named.status_code == 404
    assert "App app2" not in named.text
    assert "Asia/Kolkata" not in named.text
    switched = client.post(
        "/console/switch", data={"csrf": csrf_of(page.text), "app": "app2"}, follow_redirects=False
    )
    assert switched.status_code in (403, 404)
    assert "App app1" in client.get("/console/overview").text


def test_a_forged_or_expired_cookie_is_no_session(client: TestClient, clock: Clock) -> None:
    customer(client, "app1", SECRETS["app1"])
    value = client.cookies[COOKIE]
    for junk in ("", ".", "x.y", "!!.??", value + "x", "e30." + value.split(".")[1]):
        client.cookies.set(COOKIE, junk, path="/console")
        assert client.get("/console/overview", follow_redirects=False).status_code == 303
    payload, signature = value.split(".")
    body = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged = base64.urlsafe_b64encode(body.replace(b'"app1"', b'"app2"')).rstrip(b"=").decode()
    client.cookies.set(COOKIE, f"{forged}.{signature}", path="/console")
    assert client.get("/console/overview", follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, value, path="/console")
    assert client.get("/console/overview", follow_redirects=False).status_code == 200
    clock.now += 12 * 3600 + 1
    expired = client.get("/console/overview", follow_redirects=False)
    assert expired.status_code == 303
    assert expired.headers["location"] == "/console/signin"


def signed_out(client: TestClient) -> None:
    """The session has ended: pages lead to the sign-in page, which shows its form (the
    ended session was replaced, so it does not send the reader back)."""
    answer = client.get("/console/overview", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/signin"
    form = client.get("/console/signin", follow_redirects=False)
    assert form.status_code == 200
    assert 'id="appkey"' in form.text or 'name="appkey"' in form.text


def test_rotating_the_secret_ends_the_customer_s_sessions(client: TestClient, db: Database) -> None:
    customer(client, "app1", SECRETS["app1"])
    assert client.get("/console/overview", follow_redirects=False).status_code == 200
    issued = apps.rotate_secret(AppStore(db), "app1", signing=False)  # `apps rotate-secret`
    signed_out(client)
    assert customer(client, "app1", SECRETS["app1"]).status_code == 401
    assert customer(client, "app1", issued.secretkey or "").status_code == 303
    assert client.get("/console/overview", follow_redirects=False).status_code == 200


def test_rotating_the_receipt_signing_secret_keeps_the_session(
    client: TestClient, db: Database
) -> None:
    customer(client, "app1", SECRETS["app1"])
    apps.rotate_secret(AppStore(db), "app1", signing=True)
    assert client.get("/console/overview", follow_redirects=False).status_code == 200


def test_the_console_s_rotation_ends_the_customer_s_session_too(
    client: TestClient, settings: Settings, db: Database, clock: Clock
) -> None:
    customer(client, "app1", SECRETS["app1"])
    with TestClient(create_app(tuned(settings), db, clock)) as op:
        operator(op, OPERATOR)
        form = op.get("/console/apps/rotate?app=app1")
        rotated = op.post(
            "/console/apps/rotate",
            data={"csrf": csrf_of(form.text), "app": "app1", "which": "secretkey"},
        )
        assert rotated.status_code == 200, rotated.text
    signed_out(client)


def test_disabling_the_app_ends_the_customer_s_session(client: TestClient, db: Database) -> None:
    customer(client, "app1", SECRETS["app1"])
    AppStore(db).update("app1", {"disabled_at": int(time.time())}, now=int(time.time()))
    signed_out(client)


def test_the_operator_s_sessions_end_when_the_operator_token_changes(
    settings: Settings, db: Database, data: None
) -> None:
    with TestClient(create_app(tuned(settings), db)) as first:
        assert operator(first, OPERATOR).status_code == 303
        cookie = first.cookies[COOKIE]
    decoded = base64.urlsafe_b64decode(cookie.split(".")[0] + "==").decode()
    assert OPERATOR not in decoded
    changed = Settings(operator_token="another-Operator-Token-987654").operator_token
    for token, status in ((tuned(settings).operator_token, 200), (changed, 303), (None, 303)):
        with TestClient(create_app(tuned(settings, operator_token=token), db)) as later:
            later.cookies.set(COOKIE, cookie, path="/console")
            answer = later.get("/console/overview", follow_redirects=False)
            assert answer.status_code == status, token
            if status == 303:
                assert answer.headers["location"] == "/console/signin"


def test_sign_out_ends_the_session(client: TestClient) -> None:
    customer(client, "app1", SECRETS["app1"])
    page = client.get("/console/overview")
    answer = client.post("/console/signout", data={"csrf": csrf_of(page.text)})
    assert answer.url.path == "/console/signin"
    assert client.get("/console/overview", follow_redirects=False).status_code == 303


def test_every_server_process_signs_with_the_same_stored_key(
    settings: Settings, db: Database, data: None
) -> None:
    """Two apps on one database (two ``serve`` workers) accept each other's cookies."""
    with TestClient(create_app(tuned(settings), db)) as first:
        customer(first, "app1", SECRETS["app1"])
        cookie = first.cookies[COOKIE]
    with TestClient(create_app(tuned(settings), db)) as second:
        second.cookies.set(COOKIE, cookie, path="/console")
        assert second.get("/console/overview", follow_redirects=False).status_code == 200
    key = Settings(console_secret_key="k" * 40).console_secret_key
    with TestClient(create_app(tuned(settings, console_secret_key=key), db)) as third:
        third.cookies.set(COOKIE, cookie, path="/console")
        assert third.get("/console/overview", follow_redirects=False).status_code == 303


def test_the_page_speaks_the_app_s_language_until_switched(
    client: TestClient, db: Database
) -> None:
    AppStore(db).update("app1", {"language": Language.ZH.value}, now=int(time.time()))
    customer(client, "app1", SECRETS["app1"])
    page = client.get("/console/overview")
    assert '<html lang="zh-Hans">' in page.text
    assert "概览" in page.text
    assert "时间按 Asia/Shanghai 显示" in page.text
    switched = client.post(
        "/console/lang",
        data={"csrf": csrf_of(page.text), "lang": "en", "next": "/console/overview"},
    )
    assert '<html lang="en">' in switched.text
    assert "Times in Asia/Shanghai" in switched.text
    # An outside address as `next` goes to the overview, not away.
    away = client.post(
        "/console/lang",
        data={"csrf": csrf_of(switched.text), "lang": "en", "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert away.headers["location"] == "/console/overview"


def test_pages_forbid_framing_and_foreign_scripts(client: TestClient) -> None:
    page = client.get("/console/signin")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "https://" not in page.text  # every asset is ours


def test_sign_in_is_the_start_page(client: TestClient) -> None:
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/signin"
    customer(client, "app1", SECRETS["app1"])
    home = client.get("/console/", follow_redirects=False)
    assert home.headers["location"] == "/console/overview"
