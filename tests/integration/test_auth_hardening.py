"""Authentication hardening: guessing is capped, secrets are hashed at rest, and every
secret comparison is constant-time."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from tests.support.data import make_app
from voicecdr import credentials
from voicecdr.api import QUERY_PATH, create_app, ingest
from voicecdr.client import _webhooks
from voicecdr.config import Settings
from voicecdr.storage.store import Store

FORM = {
    "voiceType": "0",
    "start_time": "2019-09-09 00:00:00",
    "end_time": "2019-09-09 12:00:00",
    "page": "1",
    "page_size": "10",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_568_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _client(settings: Settings, store: Store, clock: Clock) -> TestClient:
    tuned = settings.model_copy(
        update={
            "max_age_days": 0,
            "auth_failures_per_appkey": 3,
            "auth_failures_per_client": 6,
            "auth_failure_window": 60,
        }
    )
    return TestClient(create_app(tuned, store, clock), raise_server_exceptions=False)


@pytest.fixture
def client(settings: Settings, store: Store, clock: Clock) -> Iterator[TestClient]:
    make_app(store, "app1", secretkey="right-secret")
    with _client(settings, store, clock) as client:
        yield client


def _ask(client: TestClient, secretkey: str, appkey: str = "app1") -> str:
    body = client.post(QUERY_PATH, data={**FORM, "appkey": appkey, "secretkey": secretkey}).json()
    return str(body.get("error", "ok"))


def test_after_n_failures_even_the_right_secret_fails_until_the_window_refills(
    client: TestClient, clock: Clock
) -> None:
    assert _ask(client, "right-secret") == "ok"
    assert [_ask(client, f"guess-{i}") for i in range(3)] == ["auth_failed"] * 3
    assert _ask(client, "right-secret") == "auth_failed"  # locked: the secret is not checked
    clock.now += 19
    assert _ask(client, "right-secret") == "auth_failed"
    clock.now += 2  # one failure's worth (60 s / 3) has aged out
    assert _ask(client, "right-secret") == "ok"


def test_one_address_guessing_many_appkeys_is_locked_out(
    client: TestClient, store: Store, clock: Clock
) -> None:
    make_app(store, "app2", secretkey="other-secret")
    for i in range(6):
        assert _ask(client, "guess", appkey=f"nope{i}") == "auth_failed"
    assert _ask(client, "other-secret", appkey="app2") == "auth_failed"
    clock.now += 11
    assert _ask(client, "other-secret", appkey="app2") == "ok"


def test_the_lockout_holds_across_server_processes(
    settings: Settings, store: Store, clock: Clock, client: TestClient
) -> None:
    # A second app object over the same shared state, as a second `serve` worker holds.
    with _client(settings, store, clock) as second:
        assert _ask(client, "guess") == "auth_failed"
        assert _ask(second, "guess") == "auth_failed"
        assert _ask(client, "guess") == "auth_failed"
        assert _ask(second, "right-secret") == "auth_failed"
        assert _ask(client, "right-secret") == "auth_failed"


def test_no_plaintext_secretkey_in_the_database(database_url: str, store: Store) -> None:
    issued = make_app(store, "app1", secretkey="plain-Secret-Marker-1234567890")
    generated = make_app(store, "app2")  # a generated secretkey too
    secrets = [issued.secretkey, generated.secretkey]
    assert all(len(s) > 10 for s in secrets)
    if store.dialect == "sqlite":
        path = Path(sa.make_url(database_url).database or "")
        dump = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for secret in secrets:
            assert secret.encode() not in dump
    with store.reader.connect() as conn:
        texts: list[str] = []
        inspector = sa.inspect(conn)
        for table in inspector.get_table_names():
            for column in inspector.get_columns(table):
                name = column["name"]
                rows = conn.execute(sa.text(f'SELECT CAST("{name}" AS TEXT) FROM "{table}"'))
                texts.extend(str(value) for (value,) in rows)
    assert texts  # the scan read something
    for secret in secrets:
        assert not any(secret in text for text in texts)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (credentials, "verify_secret"),
        (ingest, "_check_bearer"),
        (ingest, "_check_basic"),
        (_webhooks, "verify"),  # WebhookVerifier.verify, receivers' side
    ],
)
def test_secret_comparisons_are_constant_time(module: ModuleType, name: str) -> None:
    tree = ast.parse(inspect.getsource(module))
    (function,) = (
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == name
    )
    calls = {ast.unparse(node.func) for node in ast.walk(function) if isinstance(node, ast.Call)}
    assert "hmac.compare_digest" in calls
    # ... and no plain equality on anything secret-looking.
    for node in ast.walk(function):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
        ):
            text = ast.unparse(node)
            assert not any(w in text for w in ("secret", "digest", "expected", "token")), text
