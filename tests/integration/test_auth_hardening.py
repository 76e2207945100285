"""Authentication hardening: guessing is capped, secrets are hashed at rest, and every
secret comparison is constant-time."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from tests.support.data import make_app
from voicecdr import apps, credentials
from voicecdr.api import QUERY_PATH, create_app, ingest
from voicecdr.api.query import QueryService
from voicecdr.client import _webhooks
from voicecdr.config import Settings
from voicecdr.storage import Admission, AppStore, Database, PageReader, SharedRateLimiter

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


ATTACKER = ("198.51.100.66", 40000)
OWNER = ("203.0.113.10", 40000)


def _client(
    settings: Settings, db: Database, clock: Clock, address: tuple[str, int] = ATTACKER
) -> TestClient:
    """A client at ``address`` (the peer address the server sees)."""
    tuned = settings.model_copy(
        update={
            "max_age_days": 0,
            "auth_failures_per_client_appkey": 3,
            "auth_failures_per_client": 6,
            "auth_failure_window": 60,
        }
    )
    app = create_app(tuned, db, clock)
    return TestClient(app, raise_server_exceptions=False, client=address)


@pytest.fixture
def client(settings: Settings, db: Database, clock: Clock) -> Iterator[TestClient]:
    make_app(db, "app1", secretkey="right-secret")
    with _client(settings, db, clock) as client:
        yield client


def _post(client: TestClient, secretkey: str, appkey: str = "app1") -> httpx.Response:
    return client.post(QUERY_PATH, data={**FORM, "appkey": appkey, "secretkey": secretkey})


def _ask(client: TestClient, secretkey: str, appkey: str = "app1") -> str:
    body = _post(client, secretkey, appkey).json()
    if "locked out" in body.get("info", ""):
        assert body["error"] == "auth_failed"
        return "locked_out"
    return str(body.get("error", "ok"))


def test_after_n_failures_the_client_is_locked_out_until_the_window_refills(
    client: TestClient, clock: Clock
) -> None:
    assert _ask(client, "right-secret") == "ok"
    assert [_ask(client, f"guess-{i}") for i in range(3)] == ["auth_failed"] * 3
    assert _ask(client, "right-secret") == "locked_out"  # the secret is not checked
    assert _ask(client, "guess-3") == "locked_out"
    clock.now += 19
    assert _ask(client, "right-secret") == "locked_out"
    clock.now += 2  # one failure's worth (60 s / 3) has aged out
    assert _ask(client, "right-secret") == "ok"


def test_others_failures_never_lock_out_a_client_that_never_failed(
    settings: Settings, db: Database, clock: Clock, client: TestClient
) -> None:
    for i in range(20):  # from two addresses, far past every cap
        assert _ask(client, f"guess-{i}") in ("auth_failed", "locked_out")
    with _client(settings, db, clock, ("198.51.100.67", 1)) as other:
        for i in range(20):
            assert _ask(other, f"guess-{i}") in ("auth_failed", "locked_out")
    with _client(settings, db, clock, OWNER) as owner:
        assert [_ask(owner, "right-secret") for _ in range(3)] == ["ok"] * 3
        # A failure of the owner's own counts against the owner only (one of three).
        assert _ask(owner, "typo") == "auth_failed"
        assert _ask(owner, "right-secret") == "ok"


def test_a_locked_out_client_is_told_so_the_same_way_whether_the_appkey_exists(
    client: TestClient, clock: Clock
) -> None:
    for appkey in ("app1", "ghost"):
        for i in range(3):
            assert _ask(client, f"guess-{i}", appkey=appkey) == "auth_failed"
    answers = [
        _post(client, "right-secret"),
        _post(client, "guess-9"),
        _post(client, "right-secret", appkey="ghost"),
    ]
    first = answers[0]
    assert first.json() == {
        "code": "0",
        "info": "locked out after too many failed attempts from this address; "
        "retry after 20 seconds",
        "error": "auth_failed",
    }
    assert first.headers["retry-after"] == "20"
    for answer in answers[1:]:
        assert answer.content == first.content
        assert dict(answer.headers) == dict(first.headers)
    clock.now += 15
    assert _post(client, "guess-9").headers["retry-after"] == "5"


def test_a_locked_out_address_hears_the_same_from_a_disabled_app(
    client: TestClient, db: Database
) -> None:
    make_app(db, "app3", secretkey="secret3")
    apps.set_enabled(AppStore(db), "app3", enabled=False)
    for i in range(3):
        assert _ask(client, f"guess-{i}", appkey="app3") == "auth_failed"
    right, wrong = _post(client, "secret3", appkey="app3"), _post(client, "guess", appkey="app3")
    assert "locked out" in right.json()["info"]
    assert (right.content, dict(right.headers)) == (wrong.content, dict(wrong.headers))


class CountingLimiter(SharedRateLimiter):
    """The real limiter, noting which of its statements each request runs (a token is
    taken by the limiter or by the page read: counted where its statement runs)."""

    calls: list[str] = []  # replaced per request by the test

    def admission(self, *args: Any, **kwargs: Any) -> Admission:
        made = super().admission(*args, **kwargs)
        counted = CountingAdmission(**{f.name: getattr(made, f.name) for f in fields(made)})
        object.__setattr__(counted, "limiter", self)  # frozen: set as its constructor would
        return counted

    def acquire(self, key: str, quota: Any, now: float) -> Any:
        self.calls.append("acquire")
        return super().acquire(key, quota, now)

    def lockout(self, checks: Any, now: float) -> Any:
        self.calls.append("lockout")
        return super().lockout(checks, now)


class CountingAdmission(Admission):
    limiter: CountingLimiter

    def take(self) -> bool:
        self.limiter.calls.append("take")
        return super().take()


def test_a_locked_out_address_runs_the_same_statements_whatever_it_sends(
    sqlite_url: str, tmp_path: Path, clock: Clock
) -> None:
    # Timing must not tell a locked-out guesser whether its secret (or appkey) was right:
    # the same statements on the shared state (on SQLite, where none rides a page read).
    db = Database(sqlite_url)
    make_app(db, "app1", secretkey="right-secret")
    limiter = CountingLimiter(db, str(tmp_path / "ratelimit.sqlite"))
    settings = Settings(database_url=sqlite_url, max_age_days=0, auth_failures_per_client_appkey=1)
    service = QueryService(PageReader(db), AppStore(db), limiter, settings, clock)
    try:
        for appkey in ("app1", "ghost"):
            service.answer({**FORM, "appkey": appkey, "secretkey": "guess"}, "198.51.100.66")
        seen = {}
        for appkey, secretkey in (("app1", "right-secret"), ("app1", "guess"), ("ghost", "x")):
            limiter.calls = []
            answer = service.answer(
                {**FORM, "appkey": appkey, "secretkey": secretkey}, "198.51.100.66"
            )
            assert "locked out" in answer.body["info"]
            seen[appkey, secretkey] = limiter.calls
        assert list(seen.values()) == [["take", "lockout"]] * 3, seen
    finally:
        limiter.close()
        db.close()


def test_one_address_guessing_many_appkeys_is_locked_out(
    client: TestClient, db: Database, settings: Settings, clock: Clock
) -> None:
    make_app(db, "app2", secretkey="other-secret")
    for i in range(6):
        assert _ask(client, "guess", appkey=f"nope{i}") == "auth_failed"
    assert _ask(client, "other-secret", appkey="app2") == "locked_out"
    with _client(settings, db, clock, OWNER) as owner:
        assert _ask(owner, "other-secret", appkey="app2") == "ok"
    clock.now += 11
    assert _ask(client, "other-secret", appkey="app2") == "ok"


def test_the_lockout_holds_across_server_processes(
    settings: Settings, db: Database, clock: Clock, client: TestClient
) -> None:
    # A second app object over the same shared state, as a second `serve` worker holds.
    with _client(settings, db, clock) as second:
        assert _ask(client, "guess") == "auth_failed"
        assert _ask(second, "guess") == "auth_failed"
        assert _ask(client, "guess") == "auth_failed"
        assert _ask(second, "right-secret") == "locked_out"
        assert _ask(client, "right-secret") == "locked_out"


def test_no_plaintext_secretkey_in_the_database(database_url: str, db: Database) -> None:
    issued = make_app(db, "app1", secretkey="plain-Secret-Marker-1234567890")
    generated = make_app(db, "app2")  # a generated secretkey too
    secrets = [issued.secretkey, generated.secretkey]
    assert all(len(s) > 10 for s in secrets)
    if db.dialect == "sqlite":
        path = Path(sa.make_url(database_url).database or "")
        dump = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for secret in secrets:
            assert secret.encode() not in dump
    with db.reader.connect() as conn:
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
